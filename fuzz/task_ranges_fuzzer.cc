// Fuzzes task ranges (common/task_ranges.h), the text of qsub -t / qdel -t and of an
// array's pending ids. Line 1 is a comma-separated list of ranges (as Decode reads
// pending_tasks); each further line is an operation on them: "-RANGE" removes (qdel -t,
// refused above kMaxSteppedRemoval ids with a step, as the core does),
// "+N" inserts (a requeued task), "p" pops the lowest id (a dispatch). After each step
// the ranges must stay ordered, disjoint and non-empty, their text must parse back, and
// while they are small they must hold exactly the ids of a std::set doing the same.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "common/task_ranges.h"

namespace {

using namespace corral;

constexpr int64_t kModelLimit = 20000;  // ids the std::set model may hold

void Check(bool ok, const char* what, const TaskRanges& r) {
  if (ok) return;
  std::fprintf(stderr, "task_ranges_fuzzer: %s: %s\n", what, FormatTaskRanges(r).c_str());
  std::abort();
}

void CheckShape(const TaskRanges& ranges) {
  for (size_t i = 0; i < ranges.size(); ++i) {
    const TaskRange& r = ranges[i];
    Check(r.step >= 1 && r.first >= 1 && r.first <= r.last && r.Last() <= r.last,
          "malformed range", ranges);
    Check(i == 0 || ranges[i - 1].Last() < r.first, "ranges overlap or are out of order",
          ranges);
    Result<TaskRange> back = ParseTaskRange(FormatTaskRange(r));
    Check(back.has_value() && back->first == r.first && back->Last() == r.Last() &&
              (r.first == r.last || back->step == r.step),
          "a range does not parse back", ranges);
  }
}

bool Matches(const TaskRanges& ranges, const std::set<TaskId>& model) {
  if (CountTasks(ranges) != static_cast<int64_t>(model.size())) return false;
  auto it = model.begin();
  for (const TaskRange& r : ranges) {
    for (TaskId t = r.first; t <= r.last; t += r.step, ++it) {
      if (*it != t) return false;
    }
  }
  return true;
}

void AddToModel(std::set<TaskId>& model, const TaskRange& r, bool& tracked) {
  if (!tracked || r.Count() + static_cast<int64_t>(model.size()) > kModelLimit) {
    tracked = false;
    return;
  }
  for (TaskId t = r.first; t <= r.last; t += r.step) model.insert(t);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t at = 0;
  auto next_line = [&]() {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    return line;
  };
  // Line 1: the ranges. The first is taken as it is, as the core takes an array's -t
  // range for its pending ids; ids of the others are inserted one by one (when few).
  TaskRanges ranges;
  std::set<TaskId> model;
  bool tracked = true;
  const std::string_view first = next_line();
  for (size_t pos = 0; pos <= first.size();) {
    size_t comma = first.find(',', pos);
    if (comma == std::string_view::npos) comma = first.size();
    Result<TaskRange> r = ParseTaskRange(first.substr(pos, comma - pos));
    if (!r) return 0;
    if (pos == 0) {
      ranges.push_back(*r);
    } else if (r->Count() <= 1000) {
      for (TaskId t = r->first; t <= r->last; t += r->step) InsertTask(ranges, t);
    } else {
      return 0;
    }
    AddToModel(model, *r, tracked);
    pos = comma + 1;
  }
  CheckShape(ranges);
  Check(!tracked || Matches(ranges, model), "InsertTask disagrees with the model", ranges);
  for (int ops = 0; at < text.size() && ops < 64; ++ops) {
    const std::string_view line = next_line();
    if (line.empty()) continue;
    if (line[0] == '-') {
      Result<TaskRange> r = ParseTaskRange(line.substr(1));
      if (!r || (r->step > 1 && r->Count() > kMaxSteppedRemoval)) continue;  // as the core
      const int64_t before = CountTasks(ranges);
      const int64_t removed = RemoveTasks(ranges, *r);
      Check(removed >= 0 && CountTasks(ranges) == before - removed, "RemoveTasks miscounts",
            ranges);
      if (tracked) {
        int64_t n = 0;
        for (auto it = model.begin(); it != model.end();) {
          if (r->Contains(*it)) {
            it = model.erase(it);
            ++n;
          } else {
            ++it;
          }
        }
        Check(n == removed, "RemoveTasks removed the wrong number", ranges);
      }
    } else if (line[0] == '+') {
      Result<TaskRange> r = ParseTaskRange(line.substr(1));
      if (!r) continue;
      InsertTask(ranges, r->first);
      AddToModel(model, TaskRange{r->first, r->first, 1}, tracked);
    } else if (line[0] == 'p') {
      if (ranges.empty()) continue;
      const TaskId t = PopFirstTask(ranges);
      if (tracked) {
        Check(!model.empty() && *model.begin() == t, "PopFirstTask popped the wrong id", ranges);
        model.erase(model.begin());
      }
    }
    CheckShape(ranges);
    Check(!tracked || Matches(ranges, model), "ranges disagree with the model", ranges);
    for (TaskId probe : {TaskId{1}, TaskId{2}, TaskId{7}, kMaxTaskId}) {
      Check(!tracked || ContainsTask(ranges, probe) == (model.count(probe) == 1),
            "ContainsTask disagrees with the model", ranges);
    }
  }
  return 0;
}
