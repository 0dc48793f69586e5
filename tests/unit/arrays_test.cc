// Arrays and dependencies in the pure core: tasks start from the pending ranges up to
// -tc, requeue after node loss, qdel -t, the array's own state following its tasks, and
// -hold_jid / --after-ok / -hold_jid_ad.
#include <doctest/doctest.h>

#include "unit/core_driver.h"

using namespace corral;
using namespace corral::testing;

namespace {

JobSpec Array(TaskId first, TaskId last, TaskId step = 1, int tc = 0) {
  JobSpec spec = Spec();
  spec.array = TaskRange{first, last, step};
  spec.max_running_tasks = tc;
  return spec;
}

// The node reports the end of every running unit, with `code` (0 = success).
void FinishAll(Cluster& c, int code = 0) {
  std::vector<Job> running;
  for (const UnitKey& key : c.state.running) running.push_back(*FindUnit(c.state, key));
  for (const Job& j : running) {
    JobExit exit{j.node, j.id, j.attempt, code, 0, c.now, c.now + 1};
    exit.task = j.task;
    c.FromNode(exit);
  }
  ++c.now;
}

}  // namespace

TEST_CASE("arrays: pending tasks are one range; tasks start lowest first, up to -tc") {
  Cluster c;
  c.AddNode("n1", 4);
  JobId id = c.Submit(Array(1, 1'000'000, 1, 3));
  CHECK(c.job(id).pending == TaskRanges{{1, 1'000'000, 1}});
  c.Tick();
  CHECK(c.state.running.size() == 3);  // -tc 3, though 4 cores are free
  CHECK(c.state.running.count({id, 1}));
  CHECK(c.state.running.count({id, 3}));
  CHECK(c.job(id).pending == TaskRanges{{4, 1'000'000, 1}});
  CHECK(c.job(id).state == JobState::kQueued);  // ids still pending
  // Each start order carries the array's spec and the task id.
  std::vector<Order> orders = c.TakeOrders();
  REQUIRE(orders.size() == 3);
  const Job& started = std::get<StartJob>(orders[0].message).job;
  CHECK(started.task == 1);
  CHECK(started.spec.array == TaskRange{1, 1'000'000, 1});
  CHECK(started.spec.script == c.job(id).spec.script);
  CHECK(c.state.task_counts.at(id).running == 3);
}

TEST_CASE("arrays: the array completes when its last task does; a failure fails it") {
  Cluster c;
  c.AddNode("n1", 2);
  JobId ok = c.Submit(Array(1, 3));
  c.Tick();
  CHECK(c.job(ok).state == JobState::kQueued);  // task 3 still pending
  FinishAll(c);
  c.Tick();
  CHECK(c.job(ok).pending.empty());
  CHECK(c.job(ok).state == JobState::kRunning);  // only task 3 left, running
  FinishAll(c);
  CHECK(c.job(ok).state == JobState::kCompleted);
  CHECK(IsFinished(c.state, ok));

  JobId bad = c.Submit(Array(1, 2));
  c.Tick();
  const Job& one = *FindUnit(c.state, {bad, 1});
  JobExit exit{one.node, bad, one.attempt, 3, 0, c.now, c.now + 1};
  exit.task = 1;
  c.FromNode(exit);
  FinishAll(c);
  CHECK(c.job(bad).state == JobState::kFailed);
  CHECK(c.job(bad).reason == "1 of 2 tasks failed");
  CHECK(c.state.task_counts.at(bad).failed == 1);
  CHECK(c.state.task_counts.at(bad).completed == 1);
}

TEST_CASE("arrays: a task lost with its node goes back to pending and keeps its attempts") {
  Cluster c;
  c.AddNode("a", 1);
  c.AddNode("b", 1);
  JobId id = c.Submit(Array(1, 2));
  c.Tick();
  const Job& on_a = *FindUnit(c.state, {id, 1});
  CHECK(on_a.node == "a");
  c.now += 5000;  // both nodes silent past the timeout
  c.FromNode(Heartbeat{"b", {{id, 1, 2}}});
  c.Tick();
  CHECK(c.job(id).pending == TaskRanges{{1, 1, 1}});  // task 1 requeued
  CHECK(FindUnit(c.state, {id, 1})->state == JobState::kQueued);
  CHECK(c.job(id).state == JobState::kQueued);
  c.FromNode(RegisterNode{"a", {1, 4096}, {}, {}});
  c.Tick();
  const Job& again = *FindUnit(c.state, {id, 1});
  CHECK(again.state == JobState::kRunning);
  CHECK(again.attempt == 2);
  CHECK(again.attempts.size() == 2);
  CHECK(again.attempts[0].exit_reason == "node failed: a became unreachable");
}

TEST_CASE("arrays: qdel -t removes pending ids and kills running tasks in the range") {
  Cluster c;
  c.AddNode("n", 2);
  JobId id = c.Submit(Array(1, 10));
  c.Tick();  // tasks 1 and 2 run
  c.TakeOrders();
  CancelRequest some{{id}, ""};
  some.tasks = TaskRange{2, 5, 1};
  Message reply = c.Client(some);
  CHECK(std::get<OutcomeReply>(reply).outcomes[0].outcome == "registered");
  CHECK(c.job(id).pending == TaskRanges{{6, 10, 1}});
  std::vector<Order> kills = c.TakeOrders();
  REQUIRE(kills.size() == 1);
  CHECK(std::get<KillJob>(kills[0].message).task == 2);
  CHECK(FindUnit(c.state, {id, 1})->cancel_requested == false);

  Message all = c.Client(CancelRequest{{id}, ""});
  CHECK(std::get<OutcomeReply>(all).outcomes[0].outcome == "registered");
  CHECK(c.job(id).pending.empty());
  FinishAll(c, 137);  // the killed tasks end
  CHECK(c.job(id).state == JobState::kCancelled);
  CHECK(c.job(id).reason == "cancelled by alice");
  CHECK(c.state.running.empty());
  // qdel -t of a plain job is refused.
  JobId plain = c.Submit(Spec());
  CancelRequest wrong{{plain}, ""};
  wrong.tasks = TaskRange{1, 1, 1};
  CHECK(std::get<OutcomeReply>(c.Client(wrong)).outcomes[0].outcome == "not_array");
}

TEST_CASE("dependencies: -hold_jid waits, --after-ok cancels when its dependency fails") {
  Cluster c;
  c.AddNode("n", 4);
  JobId first = c.Submit(Spec());
  JobSpec then = Spec();
  then.after_any = {first};
  JobId waits = c.Submit(then);
  JobSpec only_ok = Spec();
  only_ok.after_ok = {first};
  JobId ok_dep = c.Submit(only_ok);
  JobSpec after_bad = Spec();
  after_bad.after_notok = {first};
  JobId notok_dep = c.Submit(after_bad);
  JobId free = c.Submit(Spec());
  c.Tick();
  // Waiting jobs are passed over, not waited behind.
  CHECK(c.job(first).state == JobState::kRunning);
  CHECK(c.job(waits).state == JobState::kQueued);
  CHECK(c.job(free).state == JobState::kRunning);
  const Job& f = c.job(first);
  c.FromNode(JobExit{f.node, first, f.attempt, 1, 0, c.now, c.now + 1});
  c.Tick();
  CHECK(c.job(waits).state == JobState::kRunning);
  CHECK(c.job(ok_dep).state == JobState::kCancelled);
  CHECK(c.job(ok_dep).reason == "dependency failed: job 1 failed (--after-ok)");
  CHECK(c.job(notok_dep).state == JobState::kRunning);
}

TEST_CASE("dependencies: unknown or future ids are refused at submit; no cycle can form") {
  Cluster c;
  JobSpec spec = Spec();
  spec.after_any = {1};
  CHECK(ErrorOf(c.Client(SubmitRequest{spec})) ==
        "job 1 does not exist yet: a job can only depend on jobs submitted before it, so "
        "dependencies never form a cycle");
  JobId a = c.Submit(Spec());
  spec.after_ok = {a, a + 5};
  spec.after_any.clear();
  CHECK(ErrorOf(c.Client(SubmitRequest{spec})).find("does not exist yet") != std::string::npos);
}

TEST_CASE("dependencies: -hold_jid_ad lets task i start after task i of the other array") {
  Cluster c;
  c.AddNode("n", 8);
  JobId map = c.Submit(Array(1, 3));
  JobSpec reduce = Array(1, 3);
  reduce.after_tasks = {map};
  JobId red = c.Submit(reduce);
  c.Tick();
  CHECK(c.state.running.count({map, 1}));
  CHECK_FALSE(c.state.running.count({red, 1}));
  // Task 1 of the map ends: task 1 of the reduce may start, but not task 2.
  const Job& m1 = *FindUnit(c.state, {map, 1});
  JobExit exit{m1.node, map, m1.attempt, 0, 0, c.now, c.now + 1};
  exit.task = 1;
  c.FromNode(exit);
  c.Tick();
  CHECK(c.state.running.count({red, 1}));
  CHECK_FALSE(c.state.running.count({red, 2}));
  FinishAll(c);
  c.Tick();
  FinishAll(c);
  c.Tick();
  FinishAll(c);
  CHECK(c.job(red).state == JobState::kCompleted);
}

TEST_CASE("arrays: qresub --failed makes a new array of exactly the failed tasks") {
  Cluster c;
  c.AddNode("n", 4);
  JobSpec spec = Array(1, 4);
  spec.sweep = {R"({"k":1})", R"({"k":2})", R"({"k":3})", R"({"k":4})"};
  JobId id = c.Submit(spec);
  c.Tick();
  std::vector<Job> running;
  for (const UnitKey& key : c.state.running) running.push_back(*FindUnit(c.state, key));
  for (const Job& j : running) {  // tasks 2 and 3 fail
    JobExit exit{j.node, j.id, j.attempt, (j.task == 2 || j.task == 3) ? 1 : 0, 0, c.now, c.now + 1};
    exit.task = j.task;
    c.FromNode(exit);
  }
  REQUIRE(c.job(id).state == JobState::kFailed);
  Message reply = c.Client(ResubmitRequest{id, true});
  REQUIRE(std::holds_alternative<SubmitReply>(reply));
  const JobId again = std::get<SubmitReply>(reply).id;
  CHECK(c.job(again).pending == TaskRanges{{2, 3, 1}});
  c.Tick();
  // The reruns keep their task ids and their sweep points.
  CHECK(FindUnit(c.state, {again, 2})->params == R"({"k":2})");
  CHECK(FindUnit(c.state, {again, 3})->params == R"({"k":3})");
  CHECK(FindUnit(c.state, {again, 1}) == nullptr);
  // Nothing failed: a clear refusal; and only the owner may resubmit.
  JobId fine = c.Submit(Array(1, 1));
  c.Tick();
  FinishAll(c);
  CHECK(ErrorOf(c.Client(ResubmitRequest{fine, true})) ==
        "job " + std::to_string(fine) + " has no failed tasks");
  CHECK(ErrorOf(c.Client(ResubmitRequest{id, true}, User(1001, "bob"))) ==
        "bob may not resubmit job " + std::to_string(id) + " of alice");
}
