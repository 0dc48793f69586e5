// The scheduler's core under an admin's policy (CoreConfig::policy): fair-share decides
// who starts first, EASY backfill starts a short job around a blocked big one, user
// limits hold, and a waiting job says why.
#include <doctest/doctest.h>

#include "unit/core_driver.h"

using namespace corral;
using namespace corral::testing;

namespace {

JobSpec Timed(int cores, int64_t h_rt_s) {
  JobSpec spec = Spec(cores);
  spec.h_rt_s = h_rt_s;
  return spec;
}

void Finish(Cluster& c, JobId id, TimeMs at) {
  const Job& j = c.job(id);
  c.FromNode(JobExit{j.node, id, j.attempt, 0, 0, j.start_time, at});
}

}  // namespace

TEST_CASE("policy dispatch: fair-share starts the user with less usage first") {
  Cluster c;
  c.config.policy = Engine("priority: {fairshare: 1000, age: 0, user: 0}\nplanner: {algorithm: fcfs}\n");
  c.AddNode("n", 1);
  // alice used the node for an hour; bob never did.
  JobId used = c.Submit(Timed(1, 0));
  c.Tick();
  c.now += 3600 * 1000;
  Finish(c, used, c.now);
  c.FromNode(Heartbeat{"n", {}});  // the node is still there an hour later
  CHECK(c.state.usage.size() == 1);
  JobId alice = c.Submit(Spec());
  JobId bob = c.Submit(Spec(), User(1001, "bob"));
  c.Tick();
  CHECK(c.job(bob).state == JobState::kRunning);  // submitted later, started first
  CHECK(c.job(alice).state == JobState::kQueued);
  // The same usage is rebuilt from the job records after a restart.
  UsageTable before = c.state.usage;
  RebuildUsage(c.state, c.config);
  REQUIRE(c.state.usage.size() == before.size());
  CHECK(c.state.usage.begin()->second.value ==
        doctest::Approx(before.begin()->second.value));
}

TEST_CASE("policy dispatch: EASY backfills a short job that does not delay the blocked one") {
  const std::string easy = "planner: {algorithm: easy}\n";
  for (bool with_policy : {false, true}) {
    Cluster c;
    if (with_policy) c.config.policy = Engine(easy);
    c.AddNode("n", 4);
    JobId wide_running = c.Submit(Timed(3, 100));
    c.Tick();
    JobId big = c.Submit(Timed(4, 100));      // blocked until wide_running ends
    JobId short_one = c.Submit(Timed(1, 50));  // ends before that: may backfill
    JobId long_one = c.Submit(Timed(1, 500));  // would delay big: may not
    c.Tick();
    CHECK(c.job(wide_running).state == JobState::kRunning);
    CHECK(c.job(big).state == JobState::kQueued);
    // FCFS waits behind the big job; EASY starts the short one in the hole.
    CHECK(c.job(short_one).state == (with_policy ? JobState::kRunning : JobState::kQueued));
    CHECK(c.job(long_one).state == JobState::kQueued);
    if (with_policy) {
      Message reply = c.Client(QueryRequest{{big}, "", false});
      const std::string reason = std::get<QueryReply>(reply).jobs.at(0).reason;
      CHECK_MESSAGE(reason.find("4 cores") != std::string::npos, reason);
    }
  }
}

TEST_CASE("policy dispatch: a user limit holds and array tasks count against it") {
  Cluster c;
  c.config.policy = Engine("limits:\n  default_user: {max_running_jobs: 2}\n");
  c.AddNode("n", 8);
  JobSpec array = Spec();
  array.array = TaskRange{1, 10, 1};
  JobId id = c.Submit(array);
  JobId other = c.Submit(Spec(), User(1001, "bob"));
  c.Tick();
  CHECK(c.state.task_counts.at(id).running == 2);
  CHECK(c.job(other).state == JobState::kRunning);
  CHECK(c.job(id).pending == TaskRanges{{3, 10, 1}});
  Message reply = c.Client(QueryRequest{{id}, "", false});
  CHECK(std::get<QueryReply>(reply).jobs.at(0).reason.find("limit") != std::string::npos);
}

TEST_CASE("policy dispatch: submit applies the queue's defaults and max_queued_jobs") {
  Cluster c;
  c.config.policy = Engine(
      "queues:\n  batch: {max_h_rt: 1h, default_h_rt: 10m}\ndefault_queue: batch\n"
      "limits:\n  default_user: {max_queued_jobs: 3}\n");
  JobId plain = c.Submit(Spec());
  CHECK(c.job(plain).spec.queue == "batch");
  CHECK(c.job(plain).spec.h_rt_s == 600);
  JobSpec too_long = Spec();
  too_long.h_rt_s = 7200;
  CHECK(ErrorOf(c.Client(SubmitRequest{too_long})).find("max_h_rt") != std::string::npos);
  JobSpec nowhere = Spec();
  nowhere.queue = "gpu";
  CHECK(ErrorOf(c.Client(SubmitRequest{nowhere})).find("gpu") != std::string::npos);
  c.Submit(Spec());
  JobSpec array = Spec();
  array.array = TaskRange{1, 2, 1};  // 2 queued + 2 more would be 4 > 3
  CHECK(ErrorOf(c.Client(SubmitRequest{array})) ==
        "user limit: max_queued_jobs=3 reached (3 queued)");
  c.Submit(Spec());  // the third
  CHECK(ErrorOf(c.Client(SubmitRequest{Spec()})).find("max_queued_jobs=3") != std::string::npos);
  JobId bobs = c.Submit(Spec(), User(1001, "bob"));  // limits are per user
  CHECK(c.job(bobs).state == JobState::kQueued);
}
