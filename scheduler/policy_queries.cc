#include "scheduler/policy_queries.h"

#include <algorithm>
#include <set>

#include "policies/plan_text.h"
#include "scheduler/authz.h"
#include "scheduler/ranked_queue.h"

namespace corral {

PriorityReply Priorities(const ClusterState& state, const PriorityRequest& req,
                         const Caller& caller, const CoreConfig& config) {
  PriorityReply reply;
  if (!config.policy) {
    reply.policy = "none (first come, first served: jobs start in submission order)";
    return reply;
  }
  reply.policy = config.policy->policy.origin;
  const std::shared_ptr<const PolicyPass> pass = state.last_pass;
  if (!pass) return reply;
  reply.ranked_at = pass->at;
  // A pass sorts only the jobs its planner visits (RankBest): the rest are sorted here, in
  // rank order (ties by queue order: job id, then task, as the pass's planner ids).
  struct Row {
    RankedJob r;
    UnitKey key;
  };
  std::vector<Row> ranked;
  ranked.reserve(pass->ranked.size());
  for (const RankedJob& r : pass->ranked) {
    ranked.push_back({r, pass->units.at(static_cast<size_t>(r.id - 1))});
  }
  if (pass->scorer) {
    // The pass ranked only the queued jobs that could be among the best (ranked_queue.h):
    // the others waiting in rank classes are scored here with its scorer, as it would have.
    const std::set<UnitKey> scored(pass->units.begin(), pass->units.end());
    const FairSharePolicy& fs = config.policy->policy.fairshare;
    for (const auto& [cls, members] : state.queued_by_class) {
      const std::string group = AccountGroup(fs, cls.owner, cls.project);
      for (const auto& [submitted, id] : members) {
        if (scored.count({id, 0})) continue;
        const Job& job = state.jobs.at(id);
        ranked.push_back({pass->scorer->Score(PendingView(job, job.spec, group, config)), {id, 0}});
      }
    }
  }
  std::sort(ranked.begin(), ranked.end(), [](const Row& a, const Row& b) {
    return a.r.priority != b.r.priority ? a.r.priority > b.r.priority : a.key < b.key;
  });
  int rank = 0;
  for (const auto& [r, key] : ranked) {
    ++rank;
    auto it = state.jobs.find(key.job);
    if (it == state.jobs.end() || it->second.state != JobState::kQueued) continue;
    const Job& job = it->second;
    if (key.task != 0) {
      // An array task that has since started no longer waits.
      const Job* task = FindUnit(state, key);
      if (task != nullptr && task->state != JobState::kQueued) continue;
    }
    if (!req.user.empty() && job.owner != req.user) continue;
    if (!MaySee(caller, job, config)) continue;
    JobPriority p;
    p.id = key.job;
    p.task = key.task;
    p.owner = job.owner;
    p.name = job.spec.name;
    p.rank = rank;
    p.priority = r.priority;
    p.fairshare = r.factors.fairshare;
    p.age = r.factors.age;
    p.job_size = r.factors.job_size;
    p.user = r.factors.user;
    p.queue = r.factors.queue;
    p.explanation = DescribePriority(r, config.policy->policy.priority);
    reply.jobs.push_back(std::move(p));
  }
  return reply;
}

ShareReply Shares(const ClusterState& state, const CoreConfig& config, TimeMs now) {
  ShareReply reply;
  if (!config.policy) return reply;
  const FairSharePolicy& fs = config.policy->policy.fairshare;
  reply.policy = config.policy->policy.origin;
  reply.half_life_s = fs.half_life_s;
  // Users with work waiting or running appear even before they have used anything.
  std::set<Account> active;
  auto add = [&](const Job& job) {
    active.insert(EffectiveAccount(fs, {AccountGroup(fs, job.owner, job.spec.project), job.owner}));
  };
  for (JobId id : state.queued) add(state.jobs.at(id));
  for (const UnitKey& key : state.running) add(state.jobs.at(key.job));
  for (const FairShareRow& row : FairTree(fs, UsageNow(state, config, now), active, now)) {
    ShareRow s;
    s.group = row.account.group;
    s.user = row.account.user;
    s.shares = row.shares;
    s.usage = row.usage;
    s.group_share = row.group_share;
    s.group_usage = row.group_usage;
    s.group_level = row.group_level;
    s.user_share = row.user_share;
    s.user_usage = row.user_usage;
    s.user_level = row.user_level;
    s.rank = row.rank;
    s.user_count = row.user_count;
    s.factor = row.factor;
    s.explanation = DescribeFairShare(row);
    reply.rows.push_back(std::move(s));
  }
  return reply;
}

std::string Forecast(const ClusterState& state, const CoreConfig& config, JobId job, TimeMs now) {
  const std::shared_ptr<const PolicyPass> pass = state.last_pass;
  if (!config.policy || !pass) return "";
  auto unit = std::find_if(pass->units.begin(), pass->units.end(),
                           [&](const UnitKey& k) { return k.job == job; });
  if (unit == pass->units.end()) return "";
  const JobId planner_id = static_cast<JobId>(unit - pass->units.begin()) + 1;
  const PlanResult plan = MakeWillRunPlanner(config.policy->policy)->Plan(pass->plan, now);
  auto find = [&](const std::vector<Placement>& in) {
    return std::find_if(in.begin(), in.end(), [&](const Placement& p) { return p.job == planner_id; });
  };
  if (auto s = find(plan.starts); s != plan.starts.end()) {
    return "expected to start at the next scheduling pass, on " + s->node;
  }
  if (auto r = find(plan.reservations); r != plan.reservations.end()) {
    return "expected to start in " + planning::InText(r->start - now) + " on " + r->node +
           " (forecast: running jobs end by their h_rt)";
  }
  return "";
}

}  // namespace corral
