// Fair-share end to end through the pure engine, in virtual time: two users with shares 3:1
// submitting continuously converge to 3:1 of the running cores; a user at a limit gets
// nothing more while the other uses the rest. Usage is charged, jobs ranked and planned
// every simulated minute, exactly as the scheduler's tick will do it.
#include <doctest/doctest.h>

#include <map>

#include "policies/fairshare.h"
#include "policies/planner.h"
#include "policies/priority.h"

using namespace corral;

namespace {

constexpr TimeMs kMin = 60 * 1000;

struct SimRunning {
  PendingJob job;
  std::string node;
  TimeMs start = 0;
  TimeMs end = 0;
};

// Per user, the running core-minutes summed over [measure_from, until).
std::map<std::string, double> RunTwoUsers(const Policy& policy, TimeMs until, TimeMs measure_from,
                                          int* max_heavy_cores) {
  const auto prioritizer = MakePrioritizer(policy);
  const auto planner = MakePlanner(policy);
  std::vector<NodeView> nodes;
  for (int i = 0; i < 4; ++i) {
    NodeView n;
    n.name = "node" + std::to_string(i);
    n.total = {8, 32 * 1024};
    nodes.push_back(n);
  }
  std::map<JobId, PendingJob> pending;
  std::vector<SimRunning> running;
  UsageTable usage;
  std::map<std::string, double> core_minutes;
  JobId next_id = 1;
  uint64_t lcg = 12345;  // deterministic run times of 10..30 min
  auto runtime = [&lcg] {
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int64_t>(10 + (lcg >> 33) % 21) * kMin;
  };
  for (TimeMs now = 0; now < until; now += kMin) {
    std::erase_if(running, [&](const SimRunning& r) { return r.end <= now; });
    for (const SimRunning& r : running) {  // charge the minute just past
      Account a{r.job.group, r.job.user};
      usage[a] = ChargeRun(usage[a], UsageRate(r.job.request, policy.fairshare),
                           std::max(r.start, now - kMin), now, policy.fairshare.half_life_s);
    }
    std::map<std::string, int> queued;
    for (const auto& [id, j] : pending) ++queued[j.user];
    for (const char* user : {"heavy", "light"}) {  // both keep 40 jobs waiting
      while (queued[user] < 40) {
        PendingJob j;
        j.id = next_id++;
        j.user = user;
        j.group = AccountGroup(policy.fairshare, user, "");
        j.submit_time = now;
        j.request = {1, 1024};
        j.h_rt_s = 30 * 60;
        pending[j.id] = j;
        ++queued[user];
      }
    }
    PrioritySnapshot ps;
    for (const auto& [id, j] : pending) ps.pending.push_back(j);
    ps.usage = usage;
    for (const NodeView& n : nodes) ps.cluster_total += n.total;
    const std::vector<RankedJob> ranked = prioritizer->Rank(ps, now);

    PlanSnapshot snap;
    snap.nodes = nodes;
    for (NodeView& n : snap.nodes) n.free = n.total;
    for (const SimRunning& r : running) {
      RunningJob rj;
      rj.id = r.job.id;
      rj.user = r.job.user;
      rj.group = r.job.group;
      rj.node = r.node;
      rj.alloc = r.job.request;
      rj.start_time = r.start;
      rj.h_rt_s = r.job.h_rt_s;
      snap.running.push_back(rj);
      for (NodeView& n : snap.nodes) {
        if (n.name == r.node) n.free -= r.job.request;
      }
    }
    snap.pending = InPriorityOrder(ps.pending, ranked);
    for (const Placement& s : planner->Plan(snap, now).starts) {
      running.push_back({pending.at(s.job), s.node, now, now + runtime()});
      pending.erase(s.job);
    }
    int heavy = 0;
    for (const SimRunning& r : running) {
      if (now >= measure_from) core_minutes[r.job.user] += r.job.request.cores;
      if (r.job.user == "heavy") heavy += r.job.request.cores;
    }
    if (max_heavy_cores) *max_heavy_cores = std::max(*max_heavy_cores, heavy);
    if (now >= measure_from) core_minutes["total"] += 32;
  }
  return core_minutes;
}

Policy ThreeToOne() {
  Policy p;
  p.fairshare.groups["lab"] = {1, {{"heavy", 3}, {"light", 1}}};
  p.fairshare.half_life_s = 24 * 3600;
  p.priority.fairshare = 10000;
  p.priority.age = 100;
  p.priority.age_cap_s = 24 * 3600;
  p.planner.kind = PlannerKind::kEasy;
  p.planner.reservation_depth = 1;
  return p;
}

}  // namespace

TEST_CASE("policy convergence: shares 3:1 give running cores 3:1 within 5%") {
  const auto minutes = RunTwoUsers(ThreeToOne(), 12 * 60 * kMin, 2 * 60 * kMin, nullptr);
  const double ratio = minutes.at("heavy") / minutes.at("light");
  MESSAGE("heavy:light running core-minutes over hours 2-12 = " << ratio);
  CHECK(ratio == doctest::Approx(3.0).epsilon(0.05));
  // The cluster stays full all along.
  CHECK(minutes.at("heavy") + minutes.at("light") == minutes.at("total"));
}

TEST_CASE("policy convergence: a user at a limit gets nothing more while others run") {
  Policy p = ThreeToOne();
  p.limits.users["heavy"].max_cores = 4;
  int max_heavy = 0;
  const auto minutes = RunTwoUsers(p, 4 * 60 * kMin, 60 * kMin, &max_heavy);
  CHECK(max_heavy == 4);
  CHECK(minutes.at("heavy") == 4 * 3 * 60);                        // 4 cores, hours 1-4
  CHECK(minutes.at("light") == minutes.at("total") - 4 * 3 * 60);  // the rest of the cluster
}
