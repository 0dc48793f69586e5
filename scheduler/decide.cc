// The scheduling pass: Decide() (core.h) marks silent nodes unreachable, requeues their
// jobs, then starts queued jobs first come, first served or under the admin's policy
// (policies/). Pure like the rest of the core: state + config + now -> Actions.
#include <algorithm>
#include <deque>
#include <unordered_map>

#include "policies/limits.h"
#include "scheduler/arrays.h"
#include "scheduler/core.h"
#include "scheduler/core_internal.h"
#include "scheduler/ranked_queue.h"
#include "scheduler/requests.h"

namespace corral {
namespace {

Result<Job> Move(const Job& job, JobEvent event) { return MoveJob(job, event); }

// What is still free on one node during a Decide pass: counts, and how many jobs use
// each core index (at most `per_core`, the oversubscription factor) and which GPU ids
// are taken. GPUs are never shared.
class NodeRoom {
 public:
  NodeRoom(const Node& node, const CoreConfig& config)
      : free(Capacity(node, config)), per_core_(std::max(1, config.oversubscribe)),
        core_users_(node.total.cores, 0), gpus_free_(node.gpu_ids.begin(), node.gpu_ids.end()) {}

  // Marks what the node's running units hold (ClusterState::use_on) as taken.
  void Take(const NodeUse& use, const CoreConfig& config) {
    free -= NodePart(use.held, config);
    const size_t n = std::min(use.core_users.size(), core_users_.size());
    for (size_t c = 0; c < n; ++c) core_users_[c] += use.core_users[c];
    for (const auto& [g, users] : use.gpu_users) gpus_free_.erase(g);
  }

  // Whether `part` fits: counts, and with oversubscription enough distinct cores that
  // still have room (a job never gets one core twice).
  bool Holds(const Resources& part) const {
    if (!part.Fits(free)) return false;
    if (per_core_ == 1) return true;
    const auto open = std::count_if(core_users_.begin(), core_users_.end(),
                                    [&](int users) { return users < per_core_; });
    return open >= part.cores;
  }

  // Gives `part` the least used core indices (lowest first) and the lowest free GPU ids.
  // The caller checked that it fits.
  void Allocate(const Resources& part, std::vector<int>& cores, std::vector<int>& gpus) {
    free -= part;
    cores.clear();
    gpus.clear();
    for (int users = 0; users < per_core_ && static_cast<int>(cores.size()) < part.cores;
         ++users) {
      for (int c = 0; c < static_cast<int>(core_users_.size()) &&
                      static_cast<int>(cores.size()) < part.cores;
           ++c) {
        if (core_users_[c] == users) {
          ++core_users_[c];
          cores.push_back(c);
        }
      }
    }
    std::sort(cores.begin(), cores.end());
    while (static_cast<int>(gpus.size()) < part.gpus && !gpus_free_.empty()) {
      gpus.push_back(*gpus_free_.begin());
      gpus_free_.erase(gpus_free_.begin());
    }
  }

  Resources free;

 private:
  int per_core_;
  std::vector<int> core_users_;
  std::set<int> gpus_free_;
};

// The cluster-wide consumables not held by running jobs.
std::map<std::string, int64_t> ClusterFree(const ClusterState& state, const CoreConfig& config) {
  std::map<std::string, int64_t> free = config.consumables;
  if (free.empty()) return free;
  for (const UnitKey& key : state.running) {
    for (const auto& [name, n] : ClusterPart(SpecOf(state, *FindUnit(state, key)).request, config)) {
      free[name] -= n;
    }
  }
  return free;
}

bool PoolHas(const std::map<std::string, int64_t>& pool,
             const std::map<std::string, int64_t>& need) {
  for (const auto& [name, n] : need) {
    auto it = pool.find(name);
    if (it == pool.end() || it->second < n) return false;
  }
  return true;
}

// Under a policy a settled pass is redone after this long even when nothing changed: its
// waiting reasons and ranking (qstat -j, qstat -pri) depend on the clock.
constexpr TimeMs kPolicyRefreshMs = 15 * 1000;

// Whether this pass would find nothing to do, as the last one did (ClusterState::settled):
// nothing a pass reads has changed since (the state's generation, the policy, the room
// settings) and no node has fallen silent since. First come, first served depends on the
// clock through node timeouts only. Under a policy the clock also moves the ranking and
// the reservations, so a pass is marked settled only when no node had a free core: then
// no order of the queue could start anything (every job needs a core).
bool Settled(const ClusterState& state, const CoreConfig& config, TimeMs now) {
  if (!state.settled) return false;
  const SettledPass& last = *state.settled;
  if (last.generation != state.generation || last.policy != config.policy ||
      last.oversubscribe != config.oversubscribe || last.consumables != config.consumables) {
    return false;
  }
  if (config.policy && (now < last.at || now - last.at >= kPolicyRefreshMs)) return false;
  for (const auto& [name, node] : state.nodes) {
    if (node.state == NodeState::kUp && now - node.last_seen > config.node_timeout_ms) {
      return false;
    }
  }
  return true;
}

}  // namespace

Actions Decide(const ClusterState& state, const CoreConfig& config, TimeMs now) {
  if (Settled(state, config, now)) return {};
  Actions out;
  // 1. Nodes silent past the timeout are unreachable; their attempts are lost.
  std::set<std::string> lost;
  for (const auto& [name, node] : state.nodes) {
    if (node.state == NodeState::kUp && now - node.last_seen > config.node_timeout_ms) {
      Node changed = node;
      changed.state = NodeState::kUnreachable;
      out.put_nodes.push_back(changed);
      lost.insert(name);
    }
  }
  for (const std::string& name : lost) {
    auto on_node = state.running_on.find(name);
    if (on_node == state.running_on.end()) continue;
    for (const UnitKey& key : on_node->second) {
      const Job& job = *FindUnit(state, key);
      if (job.cancel_requested) {
        Result<Job> moved = Move(job, JobEvent::kCancel);
        if (moved) {
          EndAttempt(*moved, now, job.reason);
          moved->end_time = now;
          out.put_jobs.push_back(*moved);
        }
        continue;
      }
      Lose(state, job, config, now, "node failed: " + job.node + " became unreachable", out);
    }
  }
  // Requeued tasks are pending again; the arrays' latest records hold their ids.
  SettleArrays(state, out, now);
  std::map<JobId, Job> changed_arrays;  // copies: out.put_jobs grows below
  for (const Job& job : out.put_jobs) {
    if (job.task == 0 && job.IsArray()) changed_arrays[job.id] = job;
  }

  // 2. First come, first served: the oldest queued job starts on the first node (by
  // name) where it fits; when it fits nowhere it waits and so does everything behind it.
  // An array is one job in this order: its pending tasks start lowest id first, up to
  // its -tc cap. Jobs waiting for dependencies are passed over, not waited behind.
  // (Backfill and priorities replace this order in policies/.) A start is given specific
  // core indices and GPU ids, the lowest free ones, never shared between running jobs.
  std::map<std::string, NodeRoom> room;
  for (const auto& [name, node] : state.nodes) {
    if (node.state == NodeState::kUp && node.enabled && !lost.count(name)) {
      room.emplace_hint(room.end(), name, NodeRoom(node, config));  // in name order: O(1)
    }
  }
  // What running units hold, summed per node by Install: O(nodes), not O(running units).
  // Both maps are by node name: one walk.
  auto use = state.use_on.begin();
  for (auto& [name, r] : room) {
    while (use != state.use_on.end() && use->first < name) ++use;
    if (use == state.use_on.end()) break;
    if (use->first == name) r.Take(use->second, config);
  }
  std::map<std::string, int64_t> pool = ClusterFree(state, config);
  std::map<JobId, Job> arrays_now;  // arrays whose pending ids change in this pass
  std::map<JobId, std::string> waiting;
  auto current = [&](JobId id) -> const Job& {
    if (auto a = arrays_now.find(id); a != arrays_now.end()) return a->second;
    if (auto c = changed_arrays.find(id); c != changed_arrays.end()) return c->second;
    return state.jobs.at(id);
  };
  // Whether a node (by its room) can take a unit of `spec` now.
  auto fits = [&](const JobSpec& spec, const std::string& name, const NodeRoom& r) {
    return PoolHas(pool, ClusterPart(spec.request, config)) &&
           r.Holds(NodePart(spec.request, config)) &&
           HasFeatures(state.nodes.at(name), spec.features);
  };
  // Room only shrinks during a pass, so a node that could not take a unit of some request
  // and features cannot take the next one either: the search for the same shape resumes
  // where the last one stopped (a pass costs O(starts + nodes), not O(starts x nodes)).
  const JobSpec* last_shape = nullptr;
  auto last_fit = room.begin();
  auto first_fit = [&](const JobSpec& spec) {
    const bool same = last_shape != nullptr && last_shape->request == spec.request &&
                      last_shape->features == spec.features;
    last_fit = std::find_if(same ? last_fit : room.begin(), room.end(),
                            [&](const auto& r) { return fits(spec, r.first, r.second); });
    last_shape = &spec;
    return last_fit;
  };
  // Starts `unit` (the job, or a task of the array `job`) on the node of `at`, giving it
  // specific cores and GPUs; an array task's id leaves the array's pending ids.
  auto start_on = [&](const Job& job, const Job& unit, std::map<std::string, NodeRoom>::iterator at) {
    Result<Job> moved = Move(unit, JobEvent::kStart);
    if (!moved) return;
    for (const auto& [name, n] : ClusterPart(job.spec.request, config)) pool[name] -= n;
    moved->attempt = unit.attempt + 1;
    moved->node = at->first;
    moved->start_time = now;
    moved->end_time = 0;
    moved->exit_code.reset();
    moved->exit_signal = 0;
    moved->reason.clear();
    at->second.Allocate(NodePart(job.spec.request, config), moved->alloc_cores, moved->alloc_gpus);
    moved->attempts.push_back({moved->attempt, at->first, now, 0, ""});
    Job record = StartRecord(state, *moved);
    moved->params = record.params;  // a sweep task keeps its point beside its results
    out.orders.push_back({at->first, StartJob{std::move(record)}});
    out.put_jobs.push_back(std::move(*moved));
    if (unit.task != 0) {
      auto [it, fresh] = arrays_now.try_emplace(job.id, current(job.id));
      RemoveTasks(it->second.pending, {unit.task, unit.task, 1});
    }
  };
  // Whether a queued job's dependencies let it start; cancels it when they never will.
  auto ready = [&](const Job& job) {
    std::string why;
    const DependencyVerdict verdict = CheckDependencies(state, job, 0, why);
    if (verdict == DependencyVerdict::kNever) {
      if (job.IsArray()) {
        CancelArray(state, job, std::nullopt, why, now, out);
      } else if (Result<Job> moved = Move(job, JobEvent::kCancel)) {
        moved->end_time = now;
        moved->reason = why;
        out.put_jobs.push_back(*moved);
      }
    } else if (verdict == DependencyVerdict::kWait) {
      waiting[job.id] = why;
    }
    return verdict == DependencyVerdict::kGo;
  };
  // Task `task` of `job` as a unit to start: its record if it ran before, else a new one.
  auto task_unit = [&](const Job& job, TaskId task) {
    if (auto old = state.tasks.find({job.id, task}); old != state.tasks.end()) return old->second;
    Job unit;
    unit.id = job.id;
    unit.task = task;
    unit.uid = job.uid;
    unit.gid = job.gid;
    unit.owner = job.owner;
    unit.submit_time = job.submit_time;
    unit.state = JobState::kQueued;
    return unit;
  };
  // The next tasks of an array that may start, lowest first: at most `cap`, within its
  // -tc, and stopping at one whose -hold_jid_ad partner has not ended.
  auto next_tasks = [&](const Job& job, int64_t cap) {
    std::vector<TaskId> tasks;
    auto counts = state.task_counts.find(job.id);
    const int64_t running = counts == state.task_counts.end() ? 0 : counts->second.running;
    if (job.spec.max_running_tasks > 0) {
      cap = std::min<int64_t>(cap, job.spec.max_running_tasks - running);
    }
    std::string why;
    for (const TaskRange& r : job.pending) {
      for (TaskId t = r.first; t <= r.last && static_cast<int64_t>(tasks.size()) < cap; t += r.step) {
        if (!job.spec.after_tasks.empty() &&
            CheckDependencies(state, job, t, why) != DependencyVerdict::kGo) {
          if (tasks.empty()) waiting[job.id] = why;
          return tasks;
        }
        tasks.push_back(t);
      }
    }
    return tasks;
  };

  if (!config.policy) {
    // First come, first served: the oldest queued job starts on the first node (by name)
    // where it fits; when it fits nowhere it waits and so does everything behind it. An
    // array is one job in this order, its tasks lowest id first up to its -tc cap. Jobs
    // waiting for dependencies are passed over, not waited behind.
    bool blocked = room.empty();
    for (JobId id : state.queued) {
      if (blocked) break;
      const Job& job = current(id);  // stays valid: only arrays_now grows below
      if (job.state != JobState::kQueued || !ready(job)) continue;
      if (!job.IsArray()) {
        auto at = first_fit(job.spec);
        if (at == room.end()) {
          blocked = true;
        } else {
          start_on(job, job, at);
        }
        continue;
      }
      // No more tasks can start than there are free cores (each needs one): a million
      // pending tasks cost this pass only as many as could start.
      int64_t free_cores = 0;
      for (const auto& [name, r] : room) free_cores += std::max(0, r.free.cores);
      for (TaskId task : next_tasks(job, free_cores)) {
        auto at = first_fit(job.spec);
        if (at == room.end()) {
          blocked = true;
          break;
        }
        start_on(job, task_unit(job, task), at);
      }
    }
  } else if (!room.empty()) {
    // The admin's policy: the prioritizer orders the units that could start (plain jobs,
    // and each array's next tasks), the planner places them with backfill around the
    // reservations of blocked ones (policies/), and each placement starts here.
    const PolicyEngine& engine = *config.policy;
    const FairSharePolicy& fs = engine.policy.fairshare;
    struct Candidate {
      JobId id;
      const Job* unit;  // the queued job itself, or one of `task_units`
    };
    std::vector<Candidate> candidates;
    std::deque<Job> task_units;  // array tasks as units (a deque keeps their addresses)
    const int64_t per_array = std::max(1, engine.policy.planner.max_jobs_per_pass);
    // The queued jobs every pass visits: arrays (their next tasks) and jobs with
    // dependencies (which may wait, or be cancelled when they never can run).
    for (JobId id : state.queued_walked) {
      const Job& job = current(id);  // stays valid: only arrays_now grows below
      if (job.state != JobState::kQueued || !ready(job)) continue;
      if (!job.IsArray()) {
        candidates.push_back({id, &job});
        continue;
      }
      for (TaskId t : next_tasks(job, per_array)) {
        candidates.push_back({id, &task_units.emplace_back(task_unit(job, t))});
      }
    }
    // Share-tree groups, resolved once per owner and project rather than once per job.
    std::unordered_map<std::string, std::unordered_map<std::string, std::string>> groups;
    auto group_of = [&](const std::string& owner, const std::string& project) -> const std::string& {
      auto& by_project = groups[owner];
      auto it = by_project.find(project);
      if (it == by_project.end()) it = by_project.emplace(project, AccountGroup(fs, owner, project)).first;
      return it->second;
    };
    auto view = [&](const Job& owner_job, const JobSpec& spec) {
      return PendingView(owner_job, spec, group_of(owner_job.owner, spec.project), config);
    };
    PrioritySnapshot priority;
    PlanSnapshot plan_in;
    for (const auto& [name, node] : state.nodes) {
      auto r = room.find(name);
      priority.cluster_total += node.total;
      plan_in.nodes.push_back({name, Capacity(node, config),
                               r == room.end() ? Resources{} : r->second.free, node.features,
                               r != room.end()});
    }
    // Usage so far and the running units' views, in one walk over them (ids set below).
    priority.usage = UsageAndRunning(state, config, now, &plan_in.running);
    // Every owner of a queued job that could start is active for fair-share, whether or
    // not its jobs are ranked below.
    for (const Candidate& c : candidates) {
      priority.also_active.insert(
          {group_of(c.unit->owner, state.jobs.at(c.id).spec.project), c.unit->owner});
    }
    for (const auto& [cls, members] : state.queued_by_class) {
      priority.also_active.insert({group_of(cls.owner, cls.project), cls.owner});
    }
    // The planner visits at most max_jobs_per_pass jobs in rank order (so does the
    // will-run planner of qstat -j's forecast). Plain jobs without dependencies are kept in
    // rank classes (ranked_queue.h): when the prioritizer ranks each class oldest first,
    // only those that can be among the best are candidates; else all are.
    const size_t max_visited = static_cast<size_t>(engine.policy.planner.max_jobs_per_pass);
    std::shared_ptr<const PassScorer> scorer = engine.prioritizer->ScorerByClass(priority, now);
    if (scorer) {
      for (JobId id : BestOfClasses(state, *scorer, max_visited,
                                    [&](const Job& job) { return view(job, job.spec); })) {
        candidates.push_back({id, &state.jobs.at(id)});
      }
    } else {
      for (const auto& [cls, members] : state.queued_by_class) {
        for (const auto& [submitted, id] : members) candidates.push_back({id, &state.jobs.at(id)});
      }
    }
    // In queue order (job id; an array's tasks as next_tasks gave them): ties in rank
    // break by it, as planner ids are index + 1.
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const Candidate& a, const Candidate& b) { return a.id < b.id; });
    priority.pending.reserve(candidates.size());
    for (size_t i = 0; i < candidates.size(); ++i) {
      PendingJob p = view(*candidates[i].unit, state.jobs.at(candidates[i].id).spec);
      p.id = static_cast<JobId>(i + 1);  // the planner's ids: index + 1
      priority.pending.push_back(std::move(p));
    }
    JobId running_id = static_cast<JobId>(candidates.size()) + 1;
    for (RunningJob& r : plan_in.running) r.id = running_id++;
    auto pass = std::make_shared<PolicyPass>();
    pass->at = now;
    // Only the jobs the planner visits are sorted and handed over.
    const size_t visited = std::min(priority.pending.size(), max_visited);
    pass->ranked = engine.prioritizer->RankBest(priority, now, visited);
    plan_in.pending.reserve(visited);
    for (size_t i = 0; i < visited; ++i) {
      plan_in.pending.push_back(priority.pending.at(static_cast<size_t>(pass->ranked[i].id - 1)));
    }
    plan_in.pool_total = config.consumables;
    plan_in.pool_free = pool;
    const PlanResult plan = engine.planner->Plan(plan_in, now);
    pass->units.reserve(candidates.size());
    for (const Candidate& c : candidates) pass->units.push_back(KeyOf(*c.unit));
    pass->plan = std::move(plan_in);
    pass->starts = plan.starts;
    pass->reservations = plan.reservations;
    pass->scorer = std::move(scorer);
    out.pass = std::move(pass);
    for (const Placement& placement : plan.starts) {
      const Candidate& c = candidates.at(static_cast<size_t>(placement.job - 1));
      const Job& job = state.jobs.at(c.id);
      auto at = room.find(placement.node);
      // The planner counts; the room also knows which cores are free. Should they ever
      // disagree, the unit waits for the next pass rather than share a core.
      if (at == room.end() || !fits(job.spec, at->first, at->second)) continue;
      start_on(job, *c.unit, at);
    }
    for (const auto& [index, reason] : plan.reasons) {
      waiting.try_emplace(candidates.at(static_cast<size_t>(index - 1)).id, reason);
    }
  }
  for (auto& [id, array] : arrays_now) out.put_jobs.push_back(std::move(array));
  out.waiting = std::move(waiting);
  SettleArrays(state, out, now);
  ChargeEndedRuns(state, config, now, out);
  const bool idle = out.put_jobs.empty() && out.put_nodes.empty() && out.orders.empty() &&
                    out.charges.empty();
  const bool full = std::none_of(room.begin(), room.end(),
                                 [](const auto& r) { return r.second.free.cores > 0; });
  if (idle && (!config.policy || full)) {
    out.settled = SettledPass{state.generation, now, config.policy, config.oversubscribe,
                              config.consumables};
  }
  return out;
}

}  // namespace corral
