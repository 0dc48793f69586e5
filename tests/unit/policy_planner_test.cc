// The planner on small hand-built clusters: fcfs / easy / conservative on the example of
// planner.h, features, queues, sizes, licenses, limits, run-time assumptions and the
// reasons users read; and the availability profile underneath.
#include <doctest/doctest.h>

#include "policies/availability.h"
#include "policies/plan_text.h"
#include "policies/planner.h"

using namespace corral;
using planning::Amounts;
using planning::Availability;
using planning::kNever;

namespace {

constexpr TimeMs kMin = 60 * 1000;
constexpr TimeMs kNow = 1000 * kMin;

NodeView View(std::string name, int cores, int gpus = 0, std::vector<std::string> features = {}) {
  NodeView n;
  n.name = std::move(name);
  n.total = {cores, 64 * 1024, gpus};
  n.free = n.total;
  n.features = std::move(features);
  return n;
}

PendingJob Pending(JobId id, int cores, int64_t h_rt_min, std::string user = "u") {
  PendingJob j;
  j.id = id;
  j.user = std::move(user);
  j.group = "g";
  j.request = {cores, 0};
  j.h_rt_s = h_rt_min * 60;
  return j;
}

// Adds a running job to `snap`, taking its resources from the node's free counts.
void Run(PlanSnapshot& snap, JobId id, const std::string& node, Resources alloc, TimeMs start,
         int64_t h_rt_min, std::string user = "other") {
  RunningJob r;
  r.id = id;
  r.user = std::move(user);
  r.group = "g";
  r.node = node;
  r.alloc = alloc;
  r.start_time = start;
  r.h_rt_s = h_rt_min * 60;
  for (NodeView& n : snap.nodes) {
    if (n.name == node) n.free -= alloc;
  }
  snap.running.push_back(r);
}

Policy WithPlanner(PlannerKind kind) {
  Policy p;
  p.planner.kind = kind;
  p.planner.reservation_depth = kind == PlannerKind::kFcfs   ? 0
                                : kind == PlannerKind::kEasy ? 1
                                                             : kUnlimitedDepth;
  return p;
}

// The example of planner.h: a 4-core node, R holds 2 cores for another 60 min; A 4 cores
// 30 min, B 2 cores 90 min, C 2 cores 30 min.
PlanSnapshot EasyExample() {
  PlanSnapshot snap;
  snap.nodes = {View("n1", 4)};
  Run(snap, 100, "n1", {2, 0}, kNow - 30 * kMin, 90);
  snap.pending = {Pending(1, 4, 30), Pending(2, 2, 90), Pending(3, 2, 30)};
  return snap;
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("policy planner: the EASY example - reserve the head, backfill what does not delay it") {
  const PlanResult r = MakePlanner(WithPlanner(PlannerKind::kEasy))->Plan(EasyExample(), kNow);
  CHECK(r.starts == std::vector<Placement>{{3, "n1", kNow}});
  CHECK(r.reservations == std::vector<Placement>{{1, "n1", kNow + 60 * kMin}});
  CHECK(r.examined == 3);
  CHECK_FALSE(r.stopped_at.has_value());
  CHECK(r.reasons.at(1) ==
        "waiting for 4 cores (n1 does not have that free now); expected to start in "
        "1h00m on n1");
  CHECK(Has(r.reasons.at(2), "free now on n1, but starting it would delay a reserved"));
  CHECK(Has(r.reasons.at(2), "not reserved (reservation depth 1 reached)"));
  CHECK_FALSE(r.reasons.count(3));
}

TEST_CASE("policy planner: FCFS stops at the first blocked job; conservative reserves every one") {
  const PlanResult fcfs = MakePlanner(WithPlanner(PlannerKind::kFcfs))->Plan(EasyExample(), kNow);
  CHECK(fcfs.starts.empty());
  CHECK(fcfs.reservations.empty());
  CHECK(fcfs.stopped_at == 1);
  CHECK(fcfs.examined == 1);
  CHECK(Has(fcfs.reasons.at(1), "expected to start in 1h00m on n1"));  // a forecast only

  const PlanResult cons =
      MakePlanner(WithPlanner(PlannerKind::kConservative))->Plan(EasyExample(), kNow);
  CHECK(cons.starts == std::vector<Placement>{{3, "n1", kNow}});
  CHECK(cons.reservations ==
        std::vector<Placement>{{1, "n1", kNow + 60 * kMin}, {2, "n1", kNow + 90 * kMin}});
  CHECK(Has(cons.reasons.at(2), "expected to start in 1h30m on n1"));
}

TEST_CASE("policy planner: jobs that can never run, or are over a limit, do not block FCFS") {
  Policy p = WithPlanner(PlannerKind::kFcfs);
  p.limits.users["greedy"].max_running_jobs = 1;
  p.queues["gpu"].features = {"gpu"};
  PlanSnapshot snap;
  snap.nodes = {View("a", 8, 0, {"avx512"}), View("b", 4, 2, {"gpu"}), View("c", 16)};
  snap.nodes[2].available = false;
  Run(snap, 100, "a", {1, 0}, kNow, 60, "greedy");
  PendingJob feature = Pending(1, 1, 10);
  feature.features = {"sse9"};
  PendingJob huge = Pending(2, 12, 10);  // only c is that large, and c is down
  PendingJob limited = Pending(3, 1, 10, "greedy");
  PendingJob queued = Pending(4, 1, 10);
  queued.queue = "gpu";
  PendingJob license = Pending(5, 1, 10);
  license.cluster_request = {{"matlab", 1}};
  PendingJob scratch = Pending(6, 1, 10);
  scratch.request.consumables = {{"scratch_gb", 10}};
  PendingJob bigger = Pending(7, 9, 10);  // a has 8 cores, b 4
  bigger.features = {"avx512"};
  PendingJob plain = Pending(8, 2, 10);
  snap.pending = {feature, huge, limited, queued, license, scratch, bigger, plain};
  const PlanResult r = MakePlanner(p)->Plan(snap, kNow);
  CHECK(r.reasons.at(1) == "no node has feature sse9");
  CHECK(r.reasons.at(2) ==
        "the 1 eligible node(s) with 12 cores are unavailable (down or disabled)");
  CHECK(r.reasons.at(3) == "user limit: max_running_jobs=1 reached (1 running)");
  CHECK(r.reasons.at(5) == "no cluster-wide consumable matlab is configured");
  CHECK(r.reasons.at(6) == "no node offers scratch_gb");
  CHECK(Has(r.reasons.at(7), "no eligible node has 9 cores (largest: 8 cores"));
  // The queued job goes to the gpu queue's node; the plain job prefers the node without GPUs.
  CHECK(r.starts == std::vector<Placement>{{4, "b", kNow}, {8, "a", kNow}});
  CHECK_FALSE(r.stopped_at.has_value());
  CHECK(r.examined == 8);
}

TEST_CASE("policy planner: user and group limits count the jobs started in the same pass") {
  Policy p = WithPlanner(PlannerKind::kEasy);
  p.limits.default_user.max_cores = 4;
  p.limits.groups["g"].max_running_jobs = 3;
  PlanSnapshot snap;
  snap.nodes = {View("n1", 16)};
  snap.pending = {Pending(1, 2, 10, "ann"), Pending(2, 2, 10, "ann"), Pending(3, 2, 10, "ann"),
                  Pending(4, 1, 10, "ben"), Pending(5, 1, 10, "cat")};
  const PlanResult r = MakePlanner(p)->Plan(snap, kNow);
  REQUIRE(r.starts.size() == 3);
  CHECK(r.starts[2].job == 4);
  CHECK(r.reasons.at(3) == "user limit: max_cores=4 (4 in use, job needs 2)");
  CHECK(r.reasons.at(5) == "group g limit: max_running_jobs=3 reached (3 running)");
  CHECK(r.reservations.empty());  // limits are not resources: nothing to reserve
}

TEST_CASE("policy planner: cluster-wide licenses are planned over time like node resources") {
  PlanSnapshot snap;
  snap.nodes = {View("n1", 8), View("n2", 8)};
  snap.pool_total = {{"matlab", 2}};
  snap.pool_free = {{"matlab", 0}};
  RunningJob holder;
  holder.id = 100;
  holder.node = "n1";
  holder.alloc = {1, 0};
  holder.cluster_alloc = {{"matlab", 2}};
  holder.start_time = kNow;
  holder.h_rt_s = 20 * 60;
  snap.running = {holder};
  snap.nodes[0].free -= holder.alloc;
  PendingJob needs = Pending(1, 1, 30);
  needs.cluster_request = {{"matlab", 2}};
  PendingJob too_many = Pending(2, 1, 30);
  too_many.cluster_request = {{"matlab", 3}};
  PendingJob cpu = Pending(3, 4, 30);
  snap.pending = {needs, too_many, cpu};
  const PlanResult r = MakePlanner(WithPlanner(PlannerKind::kEasy))->Plan(snap, kNow);
  CHECK(r.reservations == std::vector<Placement>{{1, "n1", kNow + 20 * kMin}});
  CHECK(r.reasons.at(1) ==
        "waiting for 1 core, matlab=2 (cluster-wide: matlab 0 of 2 free); expected to start "
        "in 20m on n1");
  CHECK(r.reasons.at(2) == "needs matlab=3 but the cluster-wide pool is smaller");
  CHECK(r.starts == std::vector<Placement>{{3, "n1", kNow}});  // needs no license
}

TEST_CASE("policy planner: runs without a limit, default_runtime, and overdue jobs") {
  PlanSnapshot snap;
  snap.nodes = {View("n1", 4)};
  Run(snap, 100, "n1", {4, 0}, kNow - 10 * kMin, 0);  // no h_rt
  snap.pending = {Pending(1, 4, 30), Pending(2, 1, 10)};
  Policy p = WithPlanner(PlannerKind::kEasy);
  PlanResult r = MakePlanner(p)->Plan(snap, kNow);
  CHECK(r.reservations.empty());
  CHECK(Has(r.reasons.at(1), "no expected start: the nodes it could use are held indefinitely"));
  CHECK(Has(r.reasons.at(2), "no expected start"));  // an unplaceable job uses no depth

  p.planner.default_runtime_s = 60 * 60;  // assume an hour: ends 50 min from now
  r = MakePlanner(p)->Plan(snap, kNow);
  CHECK(r.reservations == std::vector<Placement>{{1, "n1", kNow + 50 * kMin}});

  snap.running[0].h_rt_s = 5 * 60;  // started 10 min ago with 5 min: overdue, ends any moment
  r = MakePlanner(p)->Plan(snap, kNow);
  CHECK(r.reservations == std::vector<Placement>{{1, "n1", kNow + 1}});
  CHECK(Has(r.reasons.at(1), "expected to start in 1m on n1"));
}

TEST_CASE("policy planner: backfill uses another node when the reserved one is spoken for") {
  PlanSnapshot snap;
  snap.nodes = {View("n1", 4), View("n2", 4)};
  Run(snap, 100, "n1", {4, 0}, kNow, 60);
  Run(snap, 101, "n2", {2, 0}, kNow, 120);
  // A needs 4 cores: n1 frees at 60 min, n2 only at 120. B (2 cores, 6 h) fits now on n2
  // without touching A's window on n1.
  snap.pending = {Pending(1, 4, 30), Pending(2, 2, 360), Pending(3, 4, 10)};
  const PlanResult r = MakePlanner(WithPlanner(PlannerKind::kEasy))->Plan(snap, kNow);
  CHECK(r.reservations == std::vector<Placement>{{1, "n1", kNow + 60 * kMin}});
  CHECK(r.starts == std::vector<Placement>{{2, "n2", kNow}});
  CHECK(Has(r.reasons.at(3), "none of the 2 eligible nodes has that free now"));
}

TEST_CASE("policy planner: max_jobs_per_pass caps the pass; will-run mode forecasts every job") {
  Policy p = WithPlanner(PlannerKind::kEasy);
  p.planner.max_jobs_per_pass = 2;
  PlanResult r = MakePlanner(p)->Plan(EasyExample(), kNow);
  CHECK(r.examined == 2);
  CHECK(r.starts.empty());  // C, the backfill candidate, was not examined
  CHECK_FALSE(r.reasons.count(3));

  p.planner.max_jobs_per_pass = 1000;
  r = MakeWillRunPlanner(p)->Plan(EasyExample(), kNow);
  CHECK(r.reservations.size() == 2);
  CHECK(Has(r.reasons.at(2), "expected to start in 1h30m on n1"));
}

TEST_CASE("policy planner: many identical blocked jobs are answered from the shape cache") {
  PlanSnapshot snap;
  for (int i = 0; i < 50; ++i) snap.nodes.push_back(View("n" + std::to_string(100 + i), 8));
  for (int i = 0; i < 50; ++i) {
    Run(snap, 1000 + i, "n" + std::to_string(100 + i), {8, 0}, kNow, 60 + i);
  }
  for (int i = 0; i < 20000; ++i) snap.pending.push_back(Pending(i + 1, 8, 60));
  Policy p = WithPlanner(PlannerKind::kEasy);
  p.planner.max_jobs_per_pass = 20000;
  const PlanResult r = MakePlanner(p)->Plan(snap, kNow);
  CHECK(r.examined == 20000);
  CHECK(r.starts.empty());
  CHECK(r.reservations == std::vector<Placement>{{1, "n100", kNow + 60 * kMin}});
  CHECK(r.reasons.size() == 20000);
}

TEST_CASE("policy availability: earliest fit, windows, takes and releases") {
  Availability a(0, Amounts{2, 0, 0, {}});
  a.Release(10, Amounts{2, 0, 0, {}});  // 4 free from 10
  a.Release(30, Amounts{4, 0, 0, {}});  // 8 free from 30
  CHECK(a.StepCount() == 3);
  CHECK(a.EarliestFit({4, 0, 0, {}}, 5, 0, kNever) == 10);
  CHECK(a.EarliestFit({1, 0, 0, {}}, 5, 0, kNever) == 0);
  CHECK(a.EarliestFit({9, 0, 0, {}}, 5, 0, kNever) == kNever);
  CHECK(a.EarliestFit({4, 0, 0, {}}, 5, 0, 10) == kNever);  // bounded search
  a.Take({4, 0, 0, {}}, 15, 35);  // a reservation: 0 free on [15, 30), 4 on [30, 35)
  CHECK(a.At(20).cores == 0);
  CHECK(a.At(32).cores == 4);
  CHECK(a.EarliestFit({4, 0, 0, {}}, 5, 0, kNever) == 10);  // fits [10, 15) exactly
  CHECK(a.EarliestFit({4, 0, 0, {}}, 6, 0, kNever) == 30);  // no longer: next gap
  CHECK(a.EarliestFit({5, 0, 0, {}}, 1, 0, kNever) == 35);
  CHECK(a.EarliestFit({1, 0, 0, {}}, kNever, 0, kNever) == 30);  // forever: after the dip
  CHECK(a.FitsDuring({2, 0, 0, {}}, 0, 15));
  CHECK_FALSE(a.FitsDuring({2, 0, 0, {}}, 0, 16));
  Amounts lic{0, 0, 0, {0, 3}};
  CHECK(lic.Covers(Amounts{0, 0, 0, {0, 2}}));
  CHECK_FALSE(lic.Covers(Amounts{0, 0, 0, {0, 0, 1}}));  // a missing index counts as 0
  CHECK(planning::EndOf(kNever - 5, 10) == kNever);
  CHECK(planning::InText(65 * kMin) == "1h05m");
  CHECK(planning::InText(50 * 60 * kMin) == "2d02h");
  CHECK(planning::RequestText({4, 8192, 2}, {{"matlab", 1}}) ==
        "4 cores, 8G memory, 2 GPUs, matlab=1");
}
