// Array task ids as ranges: parsing Grid Engine's -t syntax, counting, popping the next
// task, removing ranges (qdel -t) and putting requeued tasks back.
#include <doctest/doctest.h>

#include "common/task_ranges.h"

using namespace corral;

TEST_CASE("task ranges: -t syntax") {
  CHECK(ParseTaskRange("1-1000:2").value() == TaskRange{1, 1000, 2});
  CHECK(ParseTaskRange("5").value() == TaskRange{5, 5, 1});
  CHECK(ParseTaskRange("3-9").value() == TaskRange{3, 9, 1});
  CHECK_FALSE(ParseTaskRange("0-3").has_value());
  CHECK_FALSE(ParseTaskRange("5-3").has_value());
  CHECK_FALSE(ParseTaskRange("1-3:0").has_value());
  CHECK_FALSE(ParseTaskRange("1-x").has_value());
  CHECK_FALSE(ParseTaskRange("1-200000000").has_value());
  CHECK(ParseTaskRange("a").error().message() == "'a' is not a task range (N, N-M or N-M:S)");
  CHECK(FormatTaskRange({1, 1000, 1}) == "1-1000:1");
  CHECK(FormatTaskRange({4, 4, 1}) == "4");
  CHECK(TaskRange{1, 10, 4}.Count() == 3);  // 1, 5, 9
  CHECK(TaskRange{1, 10, 4}.Last() == 9);
}

TEST_CASE("task ranges: a million tasks are one range; popping walks them in order") {
  TaskRanges r = {{1, 1'000'000, 1}};
  CHECK(CountTasks(r) == 1'000'000);
  CHECK(PopFirstTask(r) == 1);
  CHECK(PopFirstTask(r) == 2);
  CHECK(r == TaskRanges{{3, 1'000'000, 1}});
  TaskRanges odd = {{1, 5, 2}};
  CHECK(PopFirstTask(odd) == 1);
  CHECK(PopFirstTask(odd) == 3);
  CHECK(PopFirstTask(odd) == 5);
  CHECK(odd.empty());
}

TEST_CASE("task ranges: removing a range splits what is left, on its own step") {
  TaskRanges r = {{1, 20, 1}};
  CHECK(RemoveTasks(r, {5, 10, 1}) == 6);
  CHECK(FormatTaskRanges(r) == "1-4:1,11-20:1");
  CHECK(RemoveTasks(r, {12, 20, 2}) == 5);  // 12, 14, 16, 18, 20
  CHECK(FormatTaskRanges(r) == "1-4:1,11-19:2");
  CHECK(CountTasks(r) == 9);
  TaskRanges stepped = {{1, 99, 2}};
  CHECK(RemoveTasks(stepped, {10, 20, 1}) == 5);  // 11..19 odd
  CHECK(FormatTaskRanges(stepped) == "1-9:2,21-99:2");
  CHECK(RemoveTasks(stepped, {1000, 2000, 1}) == 0);
  TaskRanges all = {{1, 5, 1}};
  CHECK(RemoveTasks(all, {1, kMaxTaskId, 1}) == 5);
  CHECK(all.empty());
}

TEST_CASE("task ranges: a requeued task goes back in order and merges") {
  TaskRanges r = {{4, 10, 1}};
  InsertTask(r, 2);
  CHECK(FormatTaskRanges(r) == "2,4-10:1");
  InsertTask(r, 3);
  CHECK(FormatTaskRanges(r) == "2-10:1");
  InsertTask(r, 5);  // already pending: no change
  CHECK(CountTasks(r) == 9);
  CHECK(ContainsTask(r, 7));
  CHECK_FALSE(ContainsTask(r, 11));
}
