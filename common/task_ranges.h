// Array task ids as ranges ("1-1000:2"), so that an array's pending tasks cost a few
// bytes however many there are. A TaskRanges is a list of disjoint ranges in ascending
// order of first id; each range has its own step.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace corral {

using TaskId = int64_t;  // 1..kMaxTaskId for array tasks; 0 = not an array task

inline constexpr TaskId kMaxTaskId = 100'000'000;

struct TaskRange {
  TaskId first = 1;
  TaskId last = 1;
  TaskId step = 1;

  // Number of ids first, first+step, ... <= last.
  int64_t Count() const { return last < first ? 0 : (last - first) / step + 1; }
  bool Contains(TaskId t) const {
    return t >= first && t <= last && (t - first) % step == 0;
  }
  TaskId Last() const { return first + (Count() - 1) * step; }  // the last id really in it
  bool operator==(const TaskRange&) const = default;
};

using TaskRanges = std::vector<TaskRange>;

// Grid Engine's -t syntax: "N", "N-M" or "N-M:S" with 1 <= N <= M <= kMaxTaskId, S >= 1.
Result<TaskRange> ParseTaskRange(std::string_view text);
// "1-1000:1" (Grid Engine prints single tasks as "5-5:1" in some places; this prints "5").
std::string FormatTaskRange(const TaskRange& range);
// The ranges joined by ',' ("1-3:1,7,9-20:2"); "" when empty.
std::string FormatTaskRanges(const TaskRanges& ranges);

int64_t CountTasks(const TaskRanges& ranges);
bool ContainsTask(const TaskRanges& ranges, TaskId t);
// Removes and returns the lowest id; the ranges must not be empty.
TaskId PopFirstTask(TaskRanges& ranges);
// Removes the ids of `remove` from `ranges`; returns how many were removed. With a step
// above 1 the time, and the ranges left, grow with remove.Count(): callers that take the
// range from a user refuse one of more than kMaxSteppedRemoval ids (qdel -t).
int64_t RemoveTasks(TaskRanges& ranges, const TaskRange& remove);
inline constexpr int64_t kMaxSteppedRemoval = 100'000;
// Inserts one id (a requeued or resubmitted task), keeping the ranges ordered and disjoint.
void InsertTask(TaskRanges& ranges, TaskId t);

}  // namespace corral
