// Backfill guarantees, checked by simulating in virtual time on many small random clusters
// (fixed seeds) and on a crafted case:
//  - every plan is feasible: running jobs (to their limits), starts and reservations never
//    hold more than a node (or the license pool) has, at any time;
//  - with jobs running to their wall-time limits, no reserved job starts later than its
//    first reservation, and no job starts later than it would if no lower-priority job
//    existed (backfill never delays it);
//  - with jobs ending early, the head job's reservation still never slips;
//  - FCFS starts jobs in priority order; EASY beats FCFS's utilization on a crafted case.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "policies/planner.h"

using namespace corral;

namespace {

constexpr TimeMs kMin = 60 * 1000;

// splitmix64: a tiny deterministic generator, the same on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int64_t In(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(Next() % (hi - lo + 1)); }
  bool Chance(int percent) { return In(1, 100) <= percent; }

 private:
  uint64_t state_;
};

struct SimJob {
  PendingJob job;
  int64_t runtime_ms = 0;  // how long it really runs (<= its limit)
};

struct Running {
  SimJob sim;
  std::string node;
  TimeMs start = 0;
  TimeMs End() const { return start + sim.runtime_ms; }
};

struct Case {
  std::vector<NodeView> nodes;  // free == total; the simulator subtracts running jobs
  int64_t licenses = 0;
  std::vector<Running> running;  // at time 0
  std::vector<SimJob> pending;   // in priority order
};

struct Outcome {
  std::map<JobId, TimeMs> start;
  std::map<JobId, TimeMs> first_reservation;
  std::vector<Placement> head_reservations;  // the first reservation of each pass
  std::vector<JobId> first_pass_reserved;
  TimeMs makespan = 0;
  std::string error;  // first violated property, empty if none
};

RunningJob AsRunning(const Running& r) {
  RunningJob out;
  out.id = r.sim.job.id;
  out.user = r.sim.job.user;
  out.group = r.sim.job.group;
  out.node = r.node;
  out.alloc = r.sim.job.request;
  out.cluster_alloc = r.sim.job.cluster_request;
  out.start_time = r.start;
  out.h_rt_s = r.sim.job.h_rt_s;
  return out;
}

// Checks that running jobs, starts and reservations, each held for its wall-time limit,
// fit every node and the license pool at every instant.
std::string CheckFeasible(const Case& c, const PlanSnapshot& snap, const PlanResult& plan,
                          TimeMs now) {
  struct Hold {
    std::string node;
    TimeMs from, to;
    Resources r;
    int64_t lic;
  };
  std::vector<Hold> holds;
  for (const RunningJob& r : snap.running) {
    holds.push_back({r.node, r.start_time, r.start_time + r.h_rt_s * 1000, r.alloc,
                     r.cluster_alloc.count("lic") ? r.cluster_alloc.at("lic") : 0});
  }
  std::map<JobId, const PendingJob*> pending;
  for (const PendingJob& p : snap.pending) pending[p.id] = &p;
  auto add = [&](const Placement& pl) {
    const PendingJob& p = *pending.at(pl.job);
    holds.push_back({pl.node, pl.start, pl.start + p.h_rt_s * 1000, p.request,
                     p.cluster_request.count("lic") ? p.cluster_request.at("lic") : 0});
  };
  for (const Placement& s : plan.starts) add(s);
  for (const Placement& r : plan.reservations) {
    if (r.start <= now) return "reservation not in the future";
    add(r);
  }
  for (const Hold& at : holds) {  // usage peaks where some hold begins
    const TimeMs t = std::max(at.from, now);
    int64_t lic = 0;
    std::map<std::string, Resources> used;
    for (const Hold& h : holds) {
      if (h.from <= t && t < h.to) {
        used[h.node] += h.r;
        lic += h.lic;
      }
    }
    if (lic > c.licenses) return "licenses over-committed at " + std::to_string(t);
    for (const NodeView& n : c.nodes) {
      if (!used[n.name].Fits(n.total)) {
        return "node " + n.name + " over-committed at " + std::to_string(t);
      }
    }
  }
  return "";
}

Outcome Simulate(const Policy& policy, const Case& c) {
  const auto planner = MakePlanner(policy);
  Outcome out;
  std::vector<Running> running = c.running;
  std::vector<SimJob> pending = c.pending;
  TimeMs now = 0;
  for (int pass = 0; pass < 500 && !pending.empty(); ++pass) {
    PlanSnapshot snap;
    snap.nodes = c.nodes;
    for (const Running& r : running) {
      for (NodeView& n : snap.nodes) {
        if (n.name == r.node) n.free -= r.sim.job.request;
      }
      snap.running.push_back(AsRunning(r));
    }
    for (const SimJob& s : pending) snap.pending.push_back(s.job);
    if (c.licenses > 0) {
      snap.pool_total = {{"lic", c.licenses}};
      int64_t held = 0;
      for (const Running& r : running) held += r.sim.job.cluster_request.count("lic");
      snap.pool_free = {{"lic", c.licenses - held}};
    }
    const PlanResult plan = planner->Plan(snap, now);
    if (std::string e = CheckFeasible(c, snap, plan, now); !e.empty()) {
      out.error = "pass at " + std::to_string(now) + ": " + e;
      return out;
    }
    for (const Placement& r : plan.reservations) {
      out.first_reservation.try_emplace(r.job, r.start);
      if (pass == 0) out.first_pass_reserved.push_back(r.job);
    }
    if (!plan.reservations.empty()) out.head_reservations.push_back(plan.reservations.front());
    for (const Placement& s : plan.starts) {
      auto it = std::find_if(pending.begin(), pending.end(),
                             [&](const SimJob& j) { return j.job.id == s.job; });
      running.push_back({*it, s.node, now});
      out.start[s.job] = now;
      out.makespan = std::max(out.makespan, running.back().End());
      pending.erase(it);
    }
    if (running.empty()) {
      if (!pending.empty()) out.error = "stuck with nothing running";
      break;
    }
    TimeMs next = running.front().End();
    for (const Running& r : running) next = std::min(next, r.End());
    now = next;
    std::erase_if(running, [&](const Running& r) { return r.End() <= now; });
  }
  if (!pending.empty() && out.error.empty()) out.error = "jobs never started";
  return out;
}

Case RandomCase(uint64_t seed, bool run_to_limit) {
  Rng rng(seed);
  Case c;
  const int n_nodes = static_cast<int>(rng.In(1, 4));
  for (int i = 0; i < n_nodes; ++i) {
    NodeView n;
    n.name = "n" + std::to_string(i);
    n.total = {static_cast<int>(1 << rng.In(1, 3)), 0, rng.Chance(30) ? 2 : 0};
    if (rng.Chance(30)) n.features = {"fast"};
    n.free = n.total;
    c.nodes.push_back(n);
  }
  c.licenses = rng.Chance(30) ? rng.In(1, 2) : 0;
  JobId next_id = 1;
  auto make_job = [&](const NodeView& target) {
    SimJob s;
    s.job.id = next_id++;
    s.job.user = "u";
    s.job.group = "g";
    s.job.request = {static_cast<int>(rng.In(1, target.total.cores)), 0, 0};
    if (target.total.gpus > 0 && rng.Chance(40))
      s.job.request.gpus = static_cast<int>(rng.In(1, 2));
    if (!target.features.empty() && rng.Chance(30)) s.job.features = {"fast"};
    if (c.licenses > 0 && rng.Chance(20)) s.job.cluster_request = {{"lic", 1}};
    s.job.h_rt_s = rng.In(1, 24) * 5 * 60;  // multiples of 5 min: plenty of ties
    s.runtime_ms = run_to_limit ? s.job.h_rt_s * 1000 : rng.In(1, s.job.h_rt_s) * 1000;
    return s;
  };
  int64_t licenses_held = 0;
  for (const NodeView& n : c.nodes) {
    Resources free = n.total;
    for (int k = rng.In(0, 2); k > 0; --k) {
      SimJob s = make_job(n);
      if (!s.job.request.Fits(free)) continue;
      const int64_t lic = s.job.cluster_request.count("lic");
      if (licenses_held + lic > c.licenses) continue;
      licenses_held += lic;
      free -= s.job.request;
      const TimeMs start = -rng.In(0, 6) * 5 * kMin;
      // Still running at 0: make its limit reach past 0.
      s.job.h_rt_s = std::max<int64_t>(s.job.h_rt_s, -start / 1000 + 300);
      s.runtime_ms = std::max<int64_t>(s.runtime_ms, -start + 60 * 1000);
      if (run_to_limit) s.runtime_ms = s.job.h_rt_s * 1000;
      c.running.push_back({s, n.name, start});
    }
  }
  const int n_pending = static_cast<int>(rng.In(1, 12));
  for (int i = 0; i < n_pending; ++i) {
    c.pending.push_back(make_job(c.nodes[rng.In(0, n_nodes - 1)]));
  }
  // Priority order is not id order.
  for (size_t i = c.pending.size(); i > 1; --i) {
    std::swap(c.pending[i - 1], c.pending[rng.In(0, static_cast<int64_t>(i) - 1)]);
  }
  return c;
}

Policy WithDepth(PlannerKind kind, int depth) {
  Policy p;
  p.planner.kind = kind;
  p.planner.reservation_depth = depth;
  return p;
}

Case Truncated(const Case& c, JobId last) {
  Case t = c;
  auto it = std::find_if(t.pending.begin(), t.pending.end(),
                         [&](const SimJob& s) { return s.job.id == last; });
  t.pending.erase(it + 1, t.pending.end());
  return t;
}

}  // namespace

TEST_CASE("policy backfill: random clusters, jobs run to their limits - no reservation slips") {
  const Policy fcfs = WithDepth(PlannerKind::kFcfs, 0);
  const Policy easy = WithDepth(PlannerKind::kEasy, 1);
  const Policy easy3 = WithDepth(PlannerKind::kEasy, 3);
  const Policy conservative = WithDepth(PlannerKind::kConservative, kUnlimitedDepth);
  int reserved_checked = 0, delay_checked = 0;
  for (uint64_t seed = 1; seed <= 400; ++seed) {
    const Case c = RandomCase(seed, true);
    CAPTURE(seed);

    const Outcome f = Simulate(fcfs, c);
    REQUIRE_MESSAGE(f.error.empty(), f.error);
    for (size_t i = 1; i < c.pending.size(); ++i) {  // FCFS: in priority order
      CHECK(f.start.at(c.pending[i - 1].job.id) <= f.start.at(c.pending[i].job.id));
    }

    for (const Policy* p : {&easy, &easy3, &conservative}) {
      CAPTURE(p->planner.reservation_depth);
      const Outcome o = Simulate(*p, c);
      REQUIRE_MESSAGE(o.error.empty(), o.error);
      for (const auto& [job, reserved] : o.first_reservation) {
        CHECK(o.start.at(job) <= reserved);
        ++reserved_checked;
      }
      // Jobs reserved in the first pass are never delayed by lower-priority jobs: they start
      // no later than with every lower job removed.
      for (JobId job : o.first_pass_reserved) {
        const Outcome alone = Simulate(*p, Truncated(c, job));
        REQUIRE(alone.error.empty());
        CHECK(o.start.at(job) <= alone.start.at(job));
        ++delay_checked;
      }
    }
  }
  MESSAGE("reservations checked: " << reserved_checked << ", delay comparisons: " << delay_checked);
  CHECK(reserved_checked > 500);
  CHECK(delay_checked > 200);
}

TEST_CASE("policy backfill: random clusters, jobs end early - the head reservation holds") {
  const Policy easy = WithDepth(PlannerKind::kEasy, 1);
  const Policy conservative = WithDepth(PlannerKind::kConservative, kUnlimitedDepth);
  int checked = 0;
  for (uint64_t seed = 1001; seed <= 1400; ++seed) {
    const Case c = RandomCase(seed, false);
    CAPTURE(seed);
    for (const Policy* p : {&easy, &conservative}) {
      const Outcome o = Simulate(*p, c);
      REQUIRE_MESSAGE(o.error.empty(), o.error);
      for (const Placement& head : o.head_reservations) {
        CHECK(o.start.at(head.job) <= head.start);
        ++checked;
      }
      if (p == &easy) {  // EASY reserves only the head, so every reservation holds
        for (const auto& [job, reserved] : o.first_reservation) CHECK(o.start.at(job) <= reserved);
      }
    }
  }
  MESSAGE("head reservations checked: " << checked);
  CHECK(checked > 300);
}

TEST_CASE("policy backfill: EASY beats FCFS on the crafted case without delaying the head") {
  // One 4-core node; R holds 2 cores for 60 min. A needs all 4 for 30 min; C1 and C2 need 2
  // for 30 min each. FCFS idles 2 cores for an hour; EASY runs C1 then C2 in that hole.
  Case c;
  NodeView n;
  n.name = "n1";
  n.total = n.free = {4, 0};
  c.nodes = {n};
  auto job = [](JobId id, int cores, int64_t minutes) {
    SimJob s;
    s.job.id = id;
    s.job.user = "u";
    s.job.request = {cores, 0};
    s.job.h_rt_s = minutes * 60;
    s.runtime_ms = minutes * kMin;
    return s;
  };
  c.running = {{job(100, 2, 60), "n1", 0}};
  c.pending = {job(1, 4, 30), job(2, 2, 30), job(3, 2, 30)};
  const Outcome fcfs = Simulate(WithDepth(PlannerKind::kFcfs, 0), c);
  const Outcome easy = Simulate(WithDepth(PlannerKind::kEasy, 1), c);
  REQUIRE(fcfs.error.empty());
  REQUIRE(easy.error.empty());
  CHECK(fcfs.start.at(1) == 60 * kMin);
  CHECK(easy.start.at(1) == 60 * kMin);  // the head is not delayed
  CHECK(easy.start.at(2) == 0);
  CHECK(easy.start.at(3) == 30 * kMin);
  CHECK(fcfs.makespan == 120 * kMin);
  CHECK(easy.makespan == 90 * kMin);
  // Busy core-minutes are the same (360); EASY packs them into 90 min instead of 120.
  const double work = 2 * 60 + 4 * 30 + 2 * 30 + 2 * 30;
  CHECK(work / (4 * 90.0) == doctest::Approx(1.0));
  CHECK(work / (4 * 120.0) == doctest::Approx(0.75));
}
