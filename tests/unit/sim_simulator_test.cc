// corral-sim's event loop on tiny traces with hand-computed start times: FCFS, EASY and
// conservative backfilling, estimates against run times, nodes, the same-time conventions;
// fair-share, limits and refusals through the same policy objects the scheduler uses.
// (sim_textbook_test.cc checks the loop against an independent simulator.)
#include <doctest/doctest.h>

#include "sim/metrics.h"
#include "sim/simulator.h"
#include "sim/workload.h"

using namespace corral;
using namespace corral::sim;

namespace {

SimJob MakeJob(int64_t submit, int64_t run, int64_t estimate, int size, std::string user = "u1") {
  static int64_t next_id = 1;
  SimJob j;
  j.swf_id = next_id++;
  j.submit_s = submit;
  j.run_s = run;
  j.estimate_s = estimate;
  j.size = size;
  j.user = std::move(user);
  j.group = "g1";
  return j;
}

std::vector<int64_t> Starts(const std::vector<SimJob>& jobs, Machine machine, const Policy& policy,
                            SimOptions options = {}) {
  Result<SimResult> r = Simulate(jobs, machine, policy, options);
  REQUIRE(r.has_value());
  std::vector<int64_t> out;
  for (const JobOutcome& o : r->jobs) out.push_back(o.start_s);
  return out;
}

std::vector<int64_t> Starts(const std::vector<SimJob>& jobs, int procs, PlannerKind kind) {
  return Starts(jobs, Machine{1, procs}, ReferencePolicy(kind));
}

}  // namespace

TEST_CASE("sim loop: FCFS, EASY and conservative on the backfill textbook case") {
  // 4 processors. J1 2 procs for 10 s at t=0; J2 all 4 for 5 s at t=1; J3 1 proc for 3 s at
  // t=2. FCFS: J2 waits for J1 (start 10), J3 for J2 (start 15). EASY: J2 is reserved at 10,
  // J3 ends by 5 <= 10 on a free processor: backfilled at once. Conservative: the same.
  const std::vector<SimJob> jobs = {MakeJob(0, 10, 10, 2), MakeJob(1, 5, 5, 4),
                                    MakeJob(2, 3, 3, 1)};
  CHECK(Starts(jobs, 4, PlannerKind::kFcfs) == std::vector<int64_t>{0, 10, 15});
  CHECK(Starts(jobs, 4, PlannerKind::kEasy) == std::vector<int64_t>{0, 10, 2});
  CHECK(Starts(jobs, 4, PlannerKind::kConservative) == std::vector<int64_t>{0, 10, 2});
  // Waits 0, 9, 13 under FCFS; 0, 9, 0 under EASY.
  Result<SimResult> r = Simulate(jobs, {1, 4}, ReferencePolicy(PlannerKind::kFcfs));
  REQUIRE(r.has_value());
  CHECK(ComputeMetrics(jobs, r->jobs, 4).mean_wait_s == doctest::Approx((0 + 9 + 13) / 3.0));
}

TEST_CASE("sim loop: EASY protects only the first blocked job, conservative all of them") {
  // 4 processors. J1 3 procs 10 s (t=0). J2 2 procs 10 s (t=1): reserved at 10, leaving 2
  // spare then. J3 4 procs 10 s (t=2): conservative reserves it at 20. J4 1 proc 25 s (t=3)
  // fits now: EASY starts it (1 <= the 2 spare at J2's reservation), which pushes J3 to 28
  // (J4's end); conservative refuses (J4 would overlap J3's [20, 30)) and reserves J4 at 30.
  const std::vector<SimJob> jobs = {MakeJob(0, 10, 10, 3), MakeJob(1, 10, 10, 2),
                                    MakeJob(2, 10, 10, 4), MakeJob(3, 25, 25, 1)};
  CHECK(Starts(jobs, 4, PlannerKind::kFcfs) == std::vector<int64_t>{0, 10, 20, 30});
  CHECK(Starts(jobs, 4, PlannerKind::kEasy) == std::vector<int64_t>{0, 10, 28, 3});
  CHECK(Starts(jobs, 4, PlannerKind::kConservative) == std::vector<int64_t>{0, 10, 20, 30});
}

TEST_CASE("sim loop: backfilling plans with the estimate, the job runs its run time") {
  // As the textbook case, but J3 estimates 20 s: it could end after J2's reservation at 10,
  // so EASY does not backfill it although it would really end at 5.
  const std::vector<SimJob> jobs = {MakeJob(0, 10, 10, 2), MakeJob(1, 5, 5, 4),
                                    MakeJob(2, 3, 20, 1)};
  CHECK(Starts(jobs, 4, PlannerKind::kEasy) == std::vector<int64_t>{0, 10, 15});
  // J1 estimates 30 s but ends at 10: J2 starts at 10 all the same (the completion event),
  // and nothing was backfilled against the later estimate.
  const std::vector<SimJob> early = {MakeJob(0, 10, 30, 2), MakeJob(1, 5, 5, 4),
                                     MakeJob(2, 3, 20, 1)};
  Result<SimResult> r = Simulate(early, {1, 4}, ReferencePolicy(PlannerKind::kEasy));
  REQUIRE(r.has_value());
  CHECK(r->jobs[1].start_s == 10);
  CHECK(r->jobs[1].end_s == 15);
  CHECK(r->jobs[2].start_s == 2);  // 2 + 20 <= 30: ends before J2's reservation at 30
}

TEST_CASE("sim loop: jobs run on one node; free cores split over nodes do not add up") {
  // 2 nodes x 2 cores. J1 (1 core, 10 s) and J2 (1 core, 20 s) fill n1 (first fit by name),
  // J3 (1 core, 30 s) goes to n2. At 10 one core is free on each node: J4 (2 cores) waits
  // until J2 ends at 20. On one node of 4 it would start at 10.
  const std::vector<SimJob> jobs = {MakeJob(0, 10, 10, 1), MakeJob(0, 20, 20, 1),
                                    MakeJob(0, 30, 30, 1), MakeJob(1, 5, 5, 2)};
  Result<SimResult> r = Simulate(jobs, {2, 2}, ReferencePolicy(PlannerKind::kEasy));
  REQUIRE(r.has_value());
  CHECK(r->jobs[0].node == 0);
  CHECK(r->jobs[1].node == 0);
  CHECK(r->jobs[2].node == 1);
  CHECK(r->jobs[3].start_s == 20);
  CHECK(r->jobs[3].node == 0);
  CHECK(Starts(jobs, 4, PlannerKind::kEasy)[3] == 10);
}

TEST_CASE("sim loop: both same-time conventions, unsorted input, timeline") {
  const std::vector<SimJob> jobs = {MakeJob(0, 10, 10, 2), MakeJob(1, 5, 5, 4), MakeJob(2, 3, 3, 1),
                                    MakeJob(10, 1, 1, 2), MakeJob(15, 2, 2, 4)};
  SimOptions together;
  together.arrivals_first = false;
  together.record_timeline = true;
  const Policy easy = ReferencePolicy(PlannerKind::kEasy);
  CHECK(Starts(jobs, {1, 4}, easy) == std::vector<int64_t>{0, 10, 2, 15, 16});
  CHECK(Starts(jobs, {1, 4}, easy, together) == std::vector<int64_t>{0, 10, 2, 15, 16});

  Result<SimResult> r = Simulate(jobs, {1, 4}, easy, together);
  REQUIRE(r.has_value());
  REQUIRE(r->timeline.size() >= 5);
  CHECK(r->timeline.front().t_s == 0);
  CHECK(r->timeline.front().busy == 2);
  CHECK(r->timeline.back().busy == 0);
  CHECK(r->timeline.back().queued == 0);
  for (const TimelinePoint& p : r->timeline) {
    if (p.t_s == 10) {
      CHECK(p.busy == 4);  // J2 started, J4 (arrived at 10) waits
      CHECK(p.queued == 1);
    }
  }
  CHECK(r->stats.max_queued == 1);  // queue lengths are taken after each time's passes

  std::vector<SimJob> unsorted = {MakeJob(5, 1, 1, 1), MakeJob(0, 1, 1, 1)};
  CHECK_FALSE(Simulate(unsorted, {1, 4}, easy).has_value());
  std::vector<SimJob> too_big = {MakeJob(0, 1, 1, 5)};
  CHECK_FALSE(Simulate(too_big, {1, 4}, easy).has_value());
}

TEST_CASE("sim loop: fair-share through the policy's prioritizer gives 3:1 shares") {
  // One processor; alice (3 shares) and bob (1 share) each queue 80 jobs of 10 s at t=0.
  // Every pass charges usage and re-ranks: in the contended period alice gets ~3/4.
  Result<Policy> policy = ParsePolicy(R"(
fairshare:
  half_life: 30d
  tree:
    lab: {shares: 1, users: {alice: 3, bob: 1}}
priority:
  fairshare: 1000
  user: 0
planner:
  algorithm: fcfs
)",
                                      "fs.yaml");
  REQUIRE(policy.has_value());
  std::vector<SimJob> jobs;
  for (int i = 0; i < 80; ++i) {
    jobs.push_back(MakeJob(0, 10, 10, 1, "alice"));
    jobs.push_back(MakeJob(0, 10, 10, 1, "bob"));
  }
  Result<SimResult> r = Simulate(jobs, {1, 1}, *policy);
  REQUIRE(r.has_value());
  int alice_first_80 = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (jobs[i].user == "alice" && r->jobs[i].start_s < 800) ++alice_first_80;
  }
  CHECK(alice_first_80 >= 58);
  CHECK(alice_first_80 <= 62);
  CHECK(r->accounts[0] == "lab");
  const std::vector<UserShare> shares = UserShares(jobs, *r, *policy);
  REQUIRE(shares.size() == 2);
  CHECK(shares[0].target + shares[1].target == doctest::Approx(1.0));
  for (const UserShare& s : shares) {
    CHECK(s.target == doctest::Approx(s.user == "alice" ? 0.75 : 0.25));
    CHECK(s.share == doctest::Approx(0.5));  // everyone's jobs ran in the end
  }
}

TEST_CASE("sim loop: limits hold jobs, max_queued_jobs refuses them, stuck jobs say why") {
  Result<Policy> policy = ParsePolicy(R"(
limits:
  default_user: {max_running_jobs: 1, max_queued_jobs: 3, max_cores: 3}
planner:
  algorithm: easy
)",
                                      "limits.yaml");
  REQUIRE(policy.has_value());
  // 8 processors. alice queues 4 jobs at t=0: the 4th is refused (3 already queued); they
  // run one at a time. bob's 4-core job can never start (max_cores 3). carol is unaffected.
  const std::vector<SimJob> jobs = {MakeJob(0, 10, 10, 1, "alice"), MakeJob(0, 10, 10, 1, "alice"),
                                    MakeJob(0, 10, 10, 1, "alice"), MakeJob(0, 10, 10, 1, "alice"),
                                    MakeJob(1, 5, 5, 4, "bob"),     MakeJob(2, 5, 5, 2, "carol")};
  Result<SimResult> r = Simulate(jobs, {1, 8}, *policy);
  REQUIRE(r.has_value());
  CHECK(r->jobs[0].start_s == 0);
  CHECK(r->jobs[1].start_s == 10);
  CHECK(r->jobs[2].start_s == 20);
  CHECK(r->jobs[3].refused);
  CHECK_FALSE(r->jobs[3].Ran());
  CHECK_FALSE(r->jobs[4].Ran());
  CHECK(r->jobs[5].start_s == 2);
  CHECK(r->stats.refused == 1);
  CHECK(r->stats.never_started == 1);
  REQUIRE(r->stuck.count(jobs[4].swf_id) == 1);
  CHECK(r->stuck.at(jobs[4].swf_id).find("max_cores=3") != std::string::npos);
}
