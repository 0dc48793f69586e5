// The event loop (described in simulator.h). Per event it does work in the number of
// running and pending jobs only where the engine's interface needs it (the Planner reads
// every running job each pass); the rest is kept incrementally.
#include "sim/simulator.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <memory>
#include <queue>
#include <unordered_map>

#include "policies/limits.h"
#include "policies/planner.h"
#include "policies/priority.h"

namespace corral::sim {
namespace {

constexpr TimeMs kMsPerS = 1000;
constexpr TimeMs kNoEvent = std::numeric_limits<TimeMs>::max();
constexpr size_t kStuckReported = 5;
constexpr int64_t kMaxSeconds = 1'000'000'000'000;  // times in ms stay far from overflow

bool HasQueuedLimit(const LimitsPolicy& l) {
  if (l.default_user.max_queued_jobs) return true;
  for (const auto& [_, x] : l.users) {
    if (x.max_queued_jobs) return true;
  }
  for (const auto& [_, x] : l.groups) {
    if (x.max_queued_jobs) return true;
  }
  return false;
}

std::string NodeName(int i, int nodes) {
  const int digits = static_cast<int>(std::to_string(nodes).size());
  char buf[32];
  std::snprintf(buf, sizeof buf, "n%0*d", digits, i + 1);  // name order is index order
  return buf;
}

class Run {
 public:
  Run(const std::vector<SimJob>& jobs, const Machine& machine, const Policy& policy,
      const SimOptions& options)
      : jobs_(jobs),
        machine_(machine),
        policy_(policy),
        options_(options),
        prioritizer_(MakePrioritizer(policy)),
        planner_(MakePlanner(policy)),
        dynamic_(policy.priority.fairshare != 0 || policy.priority.age != 0),
        queued_limit_(HasQueuedLimit(policy.limits)) {
    result_.jobs.resize(jobs.size());
    result_.accounts.resize(jobs.size());
    priority_.resize(jobs.size(), 0);
    running_at_.resize(jobs.size(), 0);
    started_.resize(jobs.size(), false);
    for (int i = 0; i < machine.nodes; ++i) {
      NodeView n;
      n.name = NodeName(i, machine.nodes);
      n.total = Resources(machine.cores_per_node, 0, 0);
      n.free = n.total;
      node_index_[n.name] = i;
      plan_.nodes.push_back(std::move(n));
    }
    free_count_.assign(static_cast<size_t>(machine.cores_per_node) + 1, 0);
    free_count_[static_cast<size_t>(machine.cores_per_node)] = machine.nodes;
    max_free_ = machine.cores_per_node;
    prio_.cluster_total = Resources(
        static_cast<int>(std::min<int64_t>(machine.Procs(), std::numeric_limits<int>::max())), 0,
        0);
    std::map<std::pair<std::string, std::string>, std::string> group_of;
    for (size_t i = 0; i < jobs.size(); ++i) {
      auto [it, fresh] = group_of.try_emplace({jobs[i].user, jobs[i].group});
      if (fresh) it->second = AccountGroup(policy.fairshare, jobs[i].user, jobs[i].group);
      result_.accounts[i] = it->second;
    }
  }

  Result<SimResult> Go() {
    for (size_t i = 0; i < jobs_.size(); ++i) {
      if (i > 0 && jobs_[i].submit_s < jobs_[i - 1].submit_s) {
        return Error(Code::kInvalidArgument, "jobs are not sorted by submit time (job " +
                                                 std::to_string(jobs_[i].swf_id) + ")");
      }
      const SimJob& j = jobs_[i];
      if (j.size <= 0 || j.size > machine_.cores_per_node || j.run_s <= 0 || j.estimate_s <= 0) {
        return Error(Code::kInvalidArgument,
                     "job " + std::to_string(j.swf_id) +
                         ": size, run time and estimate must be positive and the size at most " +
                         std::to_string(machine_.cores_per_node));
      }
      if (j.submit_s > kMaxSeconds || j.run_s > kMaxSeconds || j.estimate_s > kMaxSeconds) {
        return Error(Code::kInvalidArgument,
                     "job " + std::to_string(j.swf_id) + ": a time beyond 10^12 seconds");
      }
    }
    size_t next = 0;
    while (next < jobs_.size() || !ends_.empty()) {
      const TimeMs arrival = next < jobs_.size() ? jobs_[next].submit_s * kMsPerS : kNoEvent;
      const TimeMs end = ends_.empty() ? kNoEvent : ends_.top().first;
      const TimeMs now = std::min(arrival, end);
      ++result_.stats.events;
      last_event_ = now;
      bool arrived = false;
      for (; next < jobs_.size() && jobs_[next].submit_s * kMsPerS == now; ++next) {
        Arrive(next, now);
        arrived = true;
      }
      if (arrived && options_.arrivals_first) Pass(now);
      bool completed = false;
      while (!ends_.empty() && ends_.top().first == now) {
        Complete(ends_.top().second);
        ends_.pop();
        completed = true;
      }
      if (completed || (arrived && !options_.arrivals_first)) Pass(now);
      Record(now);
    }
    if (!plan_.pending.empty()) Stuck();
    return std::move(result_);
  }

 private:
  void Arrive(size_t i, TimeMs now) {
    const SimJob& job = jobs_[i];
    PendingJob p;
    p.id = static_cast<JobId>(i) + 1;
    p.user = job.user;
    p.group = result_.accounts[i];
    p.submit_time = now;
    p.request = Resources(job.size, 0, 0);
    p.h_rt_s = job.estimate_s;
    if (queued_limit_) {
      LimitCounts& u = queued_user_[p.user];
      LimitCounts& g = queued_group_[p.group];
      if (!CheckQueuedLimit(policy_.limits, p.user, p.group, u, g).ok()) {
        result_.jobs[i].refused = true;
        ++result_.stats.refused;
        return;
      }
      ++u.queued_jobs;
      ++g.queued_jobs;
    }
    ++pending_sizes_[job.size];
    if (dynamic_) {
      plan_.pending.push_back(std::move(p));  // ranked at the next pass
      return;
    }
    // Static priority: rank the newcomer alone and merge it in (priority desc, id asc).
    prio_.pending.clear();
    prio_.pending.push_back(std::move(p));
    const std::vector<RankedJob> ranked = prioritizer_->Rank(prio_, now);
    priority_[i] = ranked.front().priority;
    auto before = [this](const PendingJob& a, const PendingJob& b) {
      const double pa = priority_[static_cast<size_t>(a.id - 1)];
      const double pb = priority_[static_cast<size_t>(b.id - 1)];
      return pa != pb ? pa > pb : a.id < b.id;
    };
    auto at =
        std::upper_bound(plan_.pending.begin(), plan_.pending.end(), prio_.pending.front(), before);
    plan_.pending.insert(at, std::move(prio_.pending.front()));
    prio_.pending.clear();
  }

  void Complete(size_t i) {
    const SimJob& job = jobs_[i];
    const size_t at = running_at_[i];
    if (at + 1 != plan_.running.size()) {
      plan_.running[at] = std::move(plan_.running.back());
      running_at_[static_cast<size_t>(plan_.running[at].id - 1)] = at;
    }
    plan_.running.pop_back();
    const int node = result_.jobs[i].node;
    SetFree(node, plan_.nodes[static_cast<size_t>(node)].free.cores + job.size);
    busy_ -= job.size;
    if (dynamic_) {  // as the scheduler core does: a run is charged when it ends
      const Account account = EffectiveAccount(policy_.fairshare, {result_.accounts[i], job.user});
      const JobOutcome& o = result_.jobs[i];
      DecayedUsage& u = prio_.usage[account];
      u = ChargeRun(u, UsageRate(Resources(job.size, 0, 0), policy_.fairshare), o.start_s * kMsPerS,
                    o.end_s * kMsPerS, policy_.fairshare.half_life_s);
    }
  }

  void Pass(TimeMs now) {
    if (plan_.pending.empty()) return;
    if (max_free_ < pending_sizes_.begin()->first) {
      ++result_.stats.passes_skipped;
      return;
    }
    if (dynamic_) {
      prio_.pending = std::move(plan_.pending);
      const std::vector<RankedJob> ranked = prioritizer_->Rank(prio_, now);
      plan_.pending = InPriorityOrder(std::move(prio_.pending), ranked);
      prio_.pending.clear();
    }
    const PlanResult plan = planner_->Plan(plan_, now);
    ++result_.stats.passes;
    result_.stats.examined += plan.examined;
    if (plan.starts.empty()) return;
    for (const Placement& s : plan.starts) Start(s, now);
    std::erase_if(plan_.pending,
                  [this](const PendingJob& p) { return started_[static_cast<size_t>(p.id - 1)]; });
  }

  void Start(const Placement& s, TimeMs now) {
    const size_t i = static_cast<size_t>(s.job - 1);
    const SimJob& job = jobs_[i];
    const int node = node_index_.at(s.node);
    started_[i] = true;
    JobOutcome& out = result_.jobs[i];
    out.start_s = now / kMsPerS;
    out.end_s = out.start_s + job.run_s;
    out.node = node;
    RunningJob r;
    r.id = s.job;
    r.user = job.user;
    r.group = result_.accounts[i];
    r.node = s.node;
    r.alloc = Resources(job.size, 0, 0);
    r.start_time = now;
    r.h_rt_s = job.estimate_s;
    running_at_[i] = plan_.running.size();
    plan_.running.push_back(std::move(r));
    SetFree(node, plan_.nodes[static_cast<size_t>(node)].free.cores - job.size);
    busy_ += job.size;
    ends_.push({out.end_s * kMsPerS, i});
    auto sizes = pending_sizes_.find(job.size);
    if (--sizes->second == 0) pending_sizes_.erase(sizes);
    if (queued_limit_) {
      --queued_user_[job.user].queued_jobs;
      --queued_group_[result_.accounts[i]].queued_jobs;
    }
  }

  // Sets a node's free cores, keeping the count of nodes per free-core value and the
  // largest free value (what the skip test reads).
  void SetFree(int node, int cores) {
    int& free = plan_.nodes[static_cast<size_t>(node)].free.cores;
    --free_count_[static_cast<size_t>(free)];
    free = cores;
    ++free_count_[static_cast<size_t>(free)];
    if (free > max_free_) max_free_ = free;
    while (max_free_ > 0 && free_count_[static_cast<size_t>(max_free_)] == 0) --max_free_;
  }

  void Record(TimeMs now) {
    const int64_t queued = static_cast<int64_t>(plan_.pending.size());
    result_.stats.max_queued = std::max(result_.stats.max_queued, queued);
    if (!options_.record_timeline) return;
    const TimelinePoint p{now / kMsPerS, busy_, queued};
    if (!result_.timeline.empty() && result_.timeline.back().t_s == p.t_s) {
      result_.timeline.back() = p;
    } else {
      result_.timeline.push_back(p);
    }
  }

  // No event is left but jobs wait (a limit no running job will release): ask the planner
  // why, for the report.
  void Stuck() {
    result_.stats.never_started = static_cast<int64_t>(plan_.pending.size());
    const PlanResult plan = planner_->Plan(plan_, last_event_);
    for (const PendingJob& p : plan_.pending) {
      if (result_.stuck.size() >= kStuckReported) break;
      auto it = plan.reasons.find(p.id);
      result_.stuck[jobs_[static_cast<size_t>(p.id - 1)].swf_id] =
          it == plan.reasons.end() ? "not examined (max_jobs_per_pass)" : it->second;
    }
  }

  const std::vector<SimJob>& jobs_;
  const Machine machine_;
  const Policy& policy_;
  const SimOptions options_;
  std::unique_ptr<Prioritizer> prioritizer_;
  std::unique_ptr<Planner> planner_;
  const bool dynamic_;       // priority changes with time: re-rank every pass
  const bool queued_limit_;  // the policy caps queued jobs: count them

  PlanSnapshot plan_;               // kept current: nodes, running, pending in priority order
  PrioritySnapshot prio_;           // usage (dynamic); pending only while ranking
  std::vector<double> priority_;    // static: each job's priority, by job index
  std::vector<size_t> running_at_;  // job index -> index in plan_.running
  std::vector<bool> started_;
  std::unordered_map<std::string, int> node_index_;
  std::vector<int> free_count_;  // free_count_[c]: nodes with c free cores
  int max_free_ = 0;
  std::map<int, int> pending_sizes_;  // size -> pending jobs of that size
  int64_t busy_ = 0;
  std::priority_queue<std::pair<TimeMs, size_t>, std::vector<std::pair<TimeMs, size_t>>,
                      std::greater<>>
      ends_;  // (end, job index), earliest first
  TimeMs last_event_ = 0;
  std::unordered_map<std::string, LimitCounts> queued_user_, queued_group_;
  SimResult result_;
};

}  // namespace

Result<SimResult> Simulate(const std::vector<SimJob>& jobs, const Machine& machine,
                           const Policy& policy, const SimOptions& options) {
  if (machine.nodes <= 0 || machine.cores_per_node <= 0) {
    return Error(Code::kInvalidArgument, "the machine needs at least one node and one core");
  }
  return Run(jobs, machine, policy, options).Go();
}

void SetPlanner(Policy& policy, PlannerKind kind) {
  policy.planner.kind = kind;
  policy.planner.reservation_depth = kind == PlannerKind::kFcfs   ? 0
                                     : kind == PlannerKind::kEasy ? 1
                                                                  : kUnlimitedDepth;
}

Policy ReferencePolicy(PlannerKind kind) {
  Policy p;
  SetPlanner(p, kind);
  p.planner.max_jobs_per_pass = std::numeric_limits<int>::max();
  return p;
}

}  // namespace corral::sim
