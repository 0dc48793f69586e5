// Task id ranges (task_ranges.h).
#include "common/task_ranges.h"

#include <algorithm>
#include <charconv>

namespace corral {
namespace {

bool ParseId(std::string_view text, TaskId& out) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size();
}

void Normalize(TaskRanges& ranges) {
  std::erase_if(ranges, [](const TaskRange& r) { return r.Count() == 0; });
  for (TaskRange& r : ranges) {
    r.last = r.Last();
    if (r.first == r.last) r.step = 1;
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const TaskRange& a, const TaskRange& b) { return a.first < b.first; });
  // Merge neighbours that continue each other with the same step (5, 6-9:1 -> 5-9:1).
  TaskRanges merged;
  for (const TaskRange& r : ranges) {
    if (!merged.empty()) {
      TaskRange& back = merged.back();
      const TaskId step = back.first == back.last ? r.first - back.last : back.step;
      if ((r.first == r.last || r.step == step) && r.first - back.last == step && step > 0) {
        back.step = step;
        back.last = r.last;
        continue;
      }
    }
    merged.push_back(r);
  }
  ranges = std::move(merged);
}

}  // namespace

Result<TaskRange> ParseTaskRange(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Error(Code::kInvalidArgument, "'" + std::string(text) + "' is not a task range (N, N-M or N-M:S" + why + ")");
  };
  TaskRange r;
  std::string_view ids = text;
  if (const size_t colon = text.find(':'); colon != std::string_view::npos) {
    ids = text.substr(0, colon);
    if (!ParseId(text.substr(colon + 1), r.step) || r.step < 1) return bad("; S >= 1");
  }
  if (const size_t dash = ids.find('-'); dash != std::string_view::npos) {
    if (!ParseId(ids.substr(0, dash), r.first) || !ParseId(ids.substr(dash + 1), r.last)) {
      return bad("");
    }
  } else {
    if (!ParseId(ids, r.first)) return bad("");
    r.last = r.first;
  }
  if (r.first < 1 || r.last < r.first || r.last > kMaxTaskId) {
    return bad("; 1 <= N <= M <= " + std::to_string(kMaxTaskId));
  }
  return r;
}

std::string FormatTaskRange(const TaskRange& r) {
  if (r.first == r.last) return std::to_string(r.first);
  return std::to_string(r.first) + "-" + std::to_string(r.last) + ":" + std::to_string(r.step);
}

std::string FormatTaskRanges(const TaskRanges& ranges) {
  std::string out;
  for (const TaskRange& r : ranges) out += (out.empty() ? "" : ",") + FormatTaskRange(r);
  return out;
}

int64_t CountTasks(const TaskRanges& ranges) {
  int64_t n = 0;
  for (const TaskRange& r : ranges) n += r.Count();
  return n;
}

bool ContainsTask(const TaskRanges& ranges, TaskId t) {
  return std::any_of(ranges.begin(), ranges.end(), [&](const TaskRange& r) { return r.Contains(t); });
}

TaskId PopFirstTask(TaskRanges& ranges) {
  TaskRange& r = ranges.front();
  const TaskId t = r.first;
  if (r.Count() <= 1) {
    ranges.erase(ranges.begin());
  } else {
    r.first += r.step;
    if (r.first == r.last) r.step = 1;
  }
  return t;
}

int64_t RemoveTasks(TaskRanges& ranges, const TaskRange& remove) {
  TaskRanges out;
  int64_t removed = 0;
  for (const TaskRange& r : ranges) {
    const TaskId lo = std::max(r.first, remove.first);
    const TaskId hi = std::min(r.last, remove.last);
    if (lo > hi) {
      out.push_back(r);
      continue;
    }
    if (remove.step == 1) {
      // Cut [lo, hi] out: what is left below and above it, on r's own step.
      const TaskId below_last = lo - 1;
      const TaskId above_first = r.first + ((hi - r.first) / r.step + 1) * r.step;
      const TaskRange below{r.first, below_last, r.step};
      const TaskRange above{above_first, r.last, r.step};
      removed += r.Count() - below.Count() - above.Count();
      if (below.Count() > 0) out.push_back(below);
      if (above.Count() > 0) out.push_back(above);
      continue;
    }
    // A stepped removal: walk the removal's ids within [lo, hi] once, cutting each one r
    // holds out of r in order. Linear in the ids named (removing them one by one, each
    // time re-normalizing, was quadratic: qdel -t 1-100000:5 took seconds, a larger one
    // hung the scheduler; found by fuzz/task_ranges_fuzzer.cc).
    TaskId next = r.first;  // r's lowest id not yet placed or removed
    const TaskId skip = lo > remove.first ? (lo - remove.first + remove.step - 1) / remove.step : 0;
    for (TaskId t = remove.first + skip * remove.step; t <= hi; t += remove.step) {
      if (!r.Contains(t)) continue;
      if (t > next) out.push_back({next, t - r.step, r.step});
      next = t + r.step;
      ++removed;
    }
    if (next <= r.last) out.push_back({next, r.last, r.step});
  }
  Normalize(out);
  ranges = std::move(out);
  return removed;
}

void InsertTask(TaskRanges& ranges, TaskId t) {
  if (ContainsTask(ranges, t)) return;
  // A range that spans t without holding it (1-9:8 and t = 5) is split around t; else the
  // ranges would interleave and PopFirstTask would no longer return the lowest id.
  for (TaskRange& r : ranges) {
    if (t < r.first || t > r.Last()) continue;
    const TaskId below_last = r.first + (t - r.first) / r.step * r.step;
    const TaskRange above{below_last + r.step, r.last, r.step};
    r.last = below_last;
    ranges.push_back(above);
    break;
  }
  ranges.push_back({t, t, 1});
  Normalize(ranges);
}

}  // namespace corral
