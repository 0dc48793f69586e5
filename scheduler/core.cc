// The pure core. Every state change goes through Move(), which asks the job state
// machine (common/job_state.h) for the next state; an illegal move is reported, never
// forced. Iteration is over ordered containers so that results are reproducible.
#include "scheduler/core.h"

#include <algorithm>
#include <unordered_map>

#include "common/config.h"
#include "policies/limits.h"
#include "policies/queues.h"
#include "scheduler/arrays.h"
#include "scheduler/authz.h"
#include "scheduler/core_internal.h"
#include "scheduler/policy_queries.h"
#include "scheduler/query.h"
#include "scheduler/ranked_queue.h"
#include "scheduler/requests.h"

namespace corral {
namespace {

Result<Job> Move(const Job& job, JobEvent event) { return MoveJob(job, event); }

Message Err(Code code, std::string message) { return ErrorReply{code, std::move(message)}; }

// Ids of the jobs not yet ended (an array once, however many tasks run), ascending.
std::vector<JobId> ActiveIds(const ClusterState& state) {
  std::vector<JobId> ids(state.queued.begin(), state.queued.end());
  ids.insert(ids.end(), state.held.begin(), state.held.end());
  for (const UnitKey& key : state.running) {
    if (ids.empty() || ids.back() != key.job) ids.push_back(key.job);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

// Puts task `task` of array `id` back among its pending ids, in this batch's latest
// version of the array.
void ReturnToPending(const ClusterState& state, JobId id, TaskId task, Actions& actions) {
  for (auto it = actions.put_jobs.rbegin(); it != actions.put_jobs.rend(); ++it) {
    if (it->id == id && it->task == 0) {
      InsertTask(it->pending, task);
      return;
    }
  }
  auto it = state.jobs.find(id);
  if (it == state.jobs.end()) return;
  Job array = it->second;
  InsertTask(array.pending, task);
  actions.put_jobs.push_back(std::move(array));
}

// The active job `id` if `caller` may change it; otherwise the reason goes into `reply`
// ("not_found": unknown or already finished, as Grid Engine says; "denied") and null.
const Job* Controllable(const ClusterState& state, JobId id, const Caller& caller,
                        const CoreConfig& config, OutcomeReply& reply) {
  auto it = state.jobs.find(id);
  if (it == state.jobs.end() || IsFinal(it->second.state)) {
    reply.outcomes.push_back({id, "not_found", ""});
    return nullptr;
  }
  if (!MayControl(caller, it->second, config)) {
    reply.outcomes.push_back({id, "denied", it->second.owner});
    return nullptr;
  }
  return &it->second;
}

Status ValidateSpec(const JobSpec& spec) {
  if (spec.name.empty()) return Error(Code::kInvalidArgument, "job name is empty");
  if (spec.cwd.empty() || spec.cwd[0] != '/') {
    return Error(Code::kInvalidArgument, "working directory must be an absolute path");
  }
  if (spec.request.cores < 1) return Error(Code::kInvalidArgument, "a job needs at least 1 core");
  if (spec.request.mem_mb < 0) return Error(Code::kInvalidArgument, "memory request is negative");
  if (spec.request.gpus < 0) return Error(Code::kInvalidArgument, "GPU request is negative");
  if (spec.h_rt_s < 0) return Error(Code::kInvalidArgument, "h_rt is negative");
  if (spec.binary && spec.args.empty()) {
    return Error(Code::kInvalidArgument, "a binary job (-b y) needs a command");
  }
  if (!spec.binary && spec.script.empty()) return Error(Code::kInvalidArgument, "the script is empty");
  if (spec.script.size() > kMaxScriptBytes) {
    return Error(Code::kInvalidArgument, "the script is larger than 4 MiB");
  }
  return OkStatus();
}

// max_queued_jobs at submit: what `user` and its group have waiting (queued or held; an
// array counts its pending tasks), plus the job `spec` would add. Counted from the
// per-owner index (ClusterState::queued_by_owner), and only when such a limit applies:
// a submit costs O(owners) at most, not O(queue).
Status CheckQueued(const ClusterState& state, const Policy& policy, const std::string& user,
                   const JobSpec& spec) {
  const FairSharePolicy& fs = policy.fairshare;
  const std::string group = AccountGroup(fs, user, spec.project);
  auto g = policy.limits.groups.find(group);
  const bool group_capped = g != policy.limits.groups.end() && g->second.max_queued_jobs;
  if (!UserLimits(policy.limits, user).max_queued_jobs && !group_capped) return OkStatus();
  LimitCounts user_now, group_now;
  for (const auto& [owner, by_project] : state.queued_by_owner) {
    for (const auto& [project, n] : by_project) {
      if (owner == user) user_now.queued_jobs += n;
      if (group_capped && AccountGroup(fs, owner, project) == group) group_now.queued_jobs += n;
    }
  }
  const int64_t adding = spec.array ? spec.array->Count() : 1;
  user_now.queued_jobs += adding - 1;
  group_now.queued_jobs += adding - 1;
  return CheckQueuedLimit(policy.limits, user, group, user_now, group_now);
}

Outcome Submit(const ClusterState& state, const SubmitRequest& req, const Caller& caller,
               const CoreConfig& config, TimeMs now) {
  Outcome out;
  if ((out.reply = RefuseUnlessAuthenticated(caller, "submitting"))) return out;
  if (Status s = ValidateSpec(req.spec); !s.ok()) {
    out.reply = Err(s.code(), s.message());
    return out;
  }
  // qsub -p: anyone may lower their jobs' priority; only admins and operators may raise it.
  const Role role = RoleOf(caller, config);
  if (req.spec.priority > 0 && role != Role::kAdmin && role != Role::kOperator) {
    out.reply = Err(Code::kPermissionDenied,
                    "-p " + std::to_string(req.spec.priority) +
                        ": only admins and operators may give a job a positive priority "
                        "(users may lower theirs, down to -1023)");
    return out;
  }
  JobSpec submitted = req.spec;
  if (config.policy) {
    // The policy's queue: default queue, its default h_rt and resources, its h_rt maximum.
    if (Status s = ApplyQueue(config.policy->policy, submitted); !s.ok()) {
      out.reply = Err(s.code(), s.message());
      return out;
    }
  }
  Result<Interpreted> request = InterpretRequest(submitted, state, config);
  if (!request) {
    out.reply = Err(request.error().code(), request.error().message());
    return out;
  }
  if (std::string why = NeverFits(state, request->spec, config); !why.empty()) {
    out.reply = Err(Code::kInvalidArgument, why);
    return out;
  }
  if (Status s = ValidateDependencies(state, request->spec); !s.ok()) {
    out.reply = Err(s.code(), s.message());
    return out;
  }
  if (config.policy) {
    if (Status s = CheckQueued(state, config.policy->policy, caller.user, request->spec); !s.ok()) {
      out.reply = Err(s.code(), s.message());
      return out;
    }
  }
  Job job;
  job.id = state.next_job_id;
  job.spec = std::move(request->spec);
  if (job.spec.array) job.pending = {*job.spec.array};
  job.uid = *caller.uid;
  job.gid = caller.gid;
  job.owner = caller.user;
  job.state = req.spec.hold ? JobState::kHeld : JobState::kQueued;
  job.submit_time = now;
  out.reply = SubmitReply{job.id, job.spec.name, std::move(request->warnings),
                          FormatTaskRanges(job.pending)};
  out.actions.next_job_id = job.id + 1;
  out.actions.put_jobs.push_back(std::move(job));
  return out;
}

Outcome Query(const ClusterState& state, const QueryRequest& req, const Caller& caller,
              const CoreConfig& config, TimeMs now) {
  Result<QueryReply> reply = ListJobs(state, req, caller, config, now);
  if (!reply) return Outcome{Err(reply.error().code(), reply.error().message()), {}};
  return Outcome{std::move(*reply), {}};
}

// The ids a qdel/qhold names: explicit ids, or every active job of `user`.
std::vector<JobId> Targets(const ClusterState& state, const std::vector<JobId>& ids,
                           const std::string& user) {
  if (!ids.empty() || user.empty()) return ids;
  std::vector<JobId> out;
  for (JobId id : ActiveIds(state)) {
    if (user == "*" || state.jobs.at(id).owner == user) out.push_back(id);
  }
  return out;
}

// Asks the node running `unit` to kill it; it stays running (holding its resources)
// until the node reports the exit.
void CancelRunning(const Job& unit, const std::string& reason, Actions& actions) {
  Job changed = unit;
  changed.cancel_requested = true;
  changed.reason = reason;
  actions.put_jobs.push_back(changed);
  actions.orders.push_back({unit.node, KillJob{unit.id, unit.attempt, unit.task}});
}

}  // namespace

// qdel of an array, or of some of its tasks (`tasks`): pending ids go, running tasks
// are killed, and the array settles once they have ended (SettleArrays).
std::string CancelArray(const ClusterState& state, const Job& array,
                        const std::optional<TaskRange>& tasks, const std::string& reason,
                        TimeMs now, Actions& actions) {
  Job changed = array;
  const TaskRange all{1, kMaxTaskId, 1};
  const TaskRange& which = tasks ? *tasks : all;
  const int64_t removed = RemoveTasks(changed.pending, which);
  int64_t killed = 0;
  for (auto it = state.tasks.lower_bound({array.id, 0});
       it != state.tasks.end() && it->first.job == array.id; ++it) {
    const Job& task = it->second;
    if (!which.Contains(task.task) || IsFinal(task.state)) continue;
    if (task.state == JobState::kRunning) {
      if (!task.cancel_requested) CancelRunning(task, reason, actions);
      ++killed;
    } else if (Result<Job> moved = Move(task, JobEvent::kCancel)) {
      moved->end_time = now;  // a requeued task: its id was pending and is gone now
      moved->reason = reason;
      actions.put_jobs.push_back(*moved);
    }
  }
  if (!tasks) {
    changed.cancel_requested = true;
    changed.reason = reason;
  }
  if (changed != array) actions.put_jobs.push_back(changed);
  if (removed + killed == 0) return "";
  return killed > 0 ? "registered" : "deleted";
}

namespace {

Outcome Cancel(const ClusterState& state, const CancelRequest& req, const Caller& caller,
               const CoreConfig& config, TimeMs now) {
  Outcome out;
  if ((out.reply = RefuseUnlessAuthenticated(caller, "cancelling"))) return out;
  if (req.tasks && req.tasks->step > 1 && req.tasks->Count() > kMaxSteppedRemoval) {
    // Such a removal may leave an array's pending ids as millions of ranges (task_ranges.h).
    out.reply = Err(Code::kInvalidArgument,
                    "-t " + FormatTaskRange(*req.tasks) + ": a range with a step may name at most " +
                        std::to_string(kMaxSteppedRemoval) + " tasks");
    return out;
  }
  OutcomeReply reply;
  for (JobId id : Targets(state, req.ids, req.user)) {
    const Job* found = Controllable(state, id, caller, config, reply);
    if (found == nullptr) continue;
    const Job& job = *found;
    if (job.uid != *caller.uid) {
      out.actions.audit.push_back(Audit(caller, now, "cancel",
                                        "job " + std::to_string(id) + " of " + job.owner));
    }
    if (job.IsArray()) {
      std::string done = CancelArray(state, job, req.tasks, "cancelled by " + caller.user, now,
                                     out.actions);
      reply.outcomes.push_back({id, done.empty() ? "no_tasks" : done, job.owner});
      continue;
    }
    if (req.tasks) {
      reply.outcomes.push_back({id, "not_array", job.owner});
      continue;
    }
    if (job.state == JobState::kRunning) {
      CancelRunning(job, "cancelled by " + caller.user, out.actions);
      reply.outcomes.push_back({id, "registered", job.owner});
      continue;
    }
    Result<Job> moved = Move(job, JobEvent::kCancel);
    if (!moved) {
      reply.outcomes.push_back({id, "invalid", job.owner});
      continue;
    }
    moved->end_time = now;
    moved->reason = "cancelled by " + caller.user;
    out.actions.put_jobs.push_back(std::move(*moved));
    reply.outcomes.push_back({id, "deleted", job.owner});
  }
  out.reply = std::move(reply);
  return out;
}

Outcome Hold(const ClusterState& state, const HoldRequest& req, const Caller& caller,
             const CoreConfig& config, TimeMs now) {
  Outcome out;
  if ((out.reply = RefuseUnlessAuthenticated(caller, "holding or releasing"))) return out;
  OutcomeReply reply;
  for (JobId id : req.ids) {
    const Job* found = Controllable(state, id, caller, config, reply);
    if (found == nullptr) continue;
    const Job& job = *found;
    if (job.uid != *caller.uid) {
      out.actions.audit.push_back(Audit(caller, now, req.hold ? "hold" : "release",
                                        "job " + std::to_string(id) + " of " + job.owner));
    }
    const JobState target = req.hold ? JobState::kHeld : JobState::kQueued;
    if (job.state == target) {
      reply.outcomes.push_back({id, "already", job.owner});
      continue;
    }
    Result<Job> moved = Move(job, req.hold ? JobEvent::kHold : JobEvent::kRelease);
    if (!moved) {
      reply.outcomes.push_back({id, "invalid", job.owner});
      continue;
    }
    out.actions.put_jobs.push_back(*moved);
    reply.outcomes.push_back({id, req.hold ? "held" : "released", job.owner});
  }
  out.reply = std::move(reply);
  return out;
}

// qresub: the job again, as a new job; for an array with failed_only, just its failed
// tasks (their ids and sweep points unchanged).
Outcome Resubmit(const ClusterState& state, const ResubmitRequest& req, const Caller& caller,
                 const CoreConfig& config, TimeMs now) {
  Outcome out;
  if ((out.reply = RefuseUnlessAuthenticated(caller, "resubmitting"))) return out;
  auto it = state.jobs.find(req.id);
  if (it == state.jobs.end()) {
    out.reply = Err(Code::kNotFound, "job " + std::to_string(req.id) + " does not exist");
    return out;
  }
  const Job& old = it->second;
  if (!MayControl(caller, old, config)) {
    out.reply = Err(Code::kPermissionDenied, caller.user + " may not resubmit job " +
                                                 std::to_string(req.id) + " of " + old.owner);
    return out;
  }
  Job job;
  job.id = state.next_job_id;
  job.spec = old.spec;
  job.spec.hold = false;
  job.uid = old.uid;
  job.gid = old.gid;
  job.owner = old.owner;
  job.state = JobState::kQueued;
  job.submit_time = now;
  if (req.failed_only) {
    if (!old.IsArray()) {
      out.reply = Err(Code::kInvalidArgument, "job " + std::to_string(req.id) +
                                                  " is not an array job: --failed needs tasks");
      return out;
    }
    // Failed task ids ascending (the tasks map is ordered), as runs of consecutive ids.
    for (auto t = state.tasks.lower_bound({old.id, 0}); t != state.tasks.end() && t->first.job == old.id;
         ++t) {
      if (t->second.state != JobState::kFailed) continue;
      TaskRanges& p = job.pending;
      if (!p.empty() && p.back().step == 1 && p.back().last + 1 == t->first.task) {
        p.back().last = t->first.task;
      } else {
        p.push_back({t->first.task, t->first.task, 1});
      }
    }
    if (job.pending.empty()) {
      out.reply = Err(Code::kFailedPrecondition,
                      "job " + std::to_string(req.id) + " has no failed tasks");
      return out;
    }
  } else if (old.IsArray()) {
    job.pending = {*old.spec.array};
  }
  out.reply = SubmitReply{job.id, job.spec.name, {}, FormatTaskRanges(job.pending)};
  out.actions.next_job_id = job.id + 1;
  out.actions.put_jobs.push_back(std::move(job));
  return out;
}

Outcome NodeAdmin(const ClusterState& state, const NodeAdminRequest& req, const Caller& caller,
                  const CoreConfig& config, TimeMs now) {
  Outcome out;
  const Role role = RoleOf(caller, config);
  if (role != Role::kAdmin && role != Role::kOperator) {
    out.reply = Err(Code::kPermissionDenied,
                    (caller.uid ? caller.user : std::string("an anonymous caller")) +
                        " may not change nodes (admins and operators may: see 'admins' and "
                        "'operators' in the scheduler config)");
    return out;
  }
  auto it = state.nodes.find(req.node);
  if (it == state.nodes.end()) {
    out.reply = Err(Code::kNotFound, "no node named '" + req.node + "'");
    return out;
  }
  Node changed = it->second;
  changed.enabled = req.enable;
  if (changed != it->second) {
    out.actions.put_nodes.push_back(changed);
    out.actions.audit.push_back(
        Audit(caller, now, req.enable ? "node_enable" : "node_disable", req.node));
  }
  out.reply = NodesReply{{changed}, {}};
  return out;
}

Outcome Nodes(const ClusterState& state) {
  NodesReply reply;
  const auto used = UsedByNode(state);
  for (const auto& [name, node] : state.nodes) {
    reply.nodes.push_back(node);
    auto it = used.find(name);
    reply.used.push_back(it == used.end() ? Resources{} : it->second);
  }
  return Outcome{std::move(reply), {}};
}

}  // namespace

// Closes the current attempt's record.
void EndAttempt(Job& job, TimeMs now, const std::string& reason) {
  if (job.attempts.empty() || job.attempts.back().end_time != 0) return;
  job.attempts.back().end_time = now;
  job.attempts.back().exit_reason = reason;
}

// A job whose attempt was lost with its node: back to the queue if it may run again
// (rerunnable and attempts left), otherwise failed with the reason. A requeued array
// task's id goes back among the array's pending ids.
Job Lost(const Job& job, const JobSpec& spec, const CoreConfig& config, TimeMs now,
         const std::string& why);

void Lose(const ClusterState& state, const Job& job, const CoreConfig& config, TimeMs now,
          const std::string& why, Actions& actions) {
  Job out = Lost(job, SpecOf(state, job), config, now, why);
  if (out.task != 0 && out.state == JobState::kQueued) {
    ReturnToPending(state, out.id, out.task, actions);
  }
  actions.put_jobs.push_back(std::move(out));
}

Job Lost(const Job& job, const JobSpec& spec, const CoreConfig& config, TimeMs now,
         const std::string& why) {
  Job base = job;
  EndAttempt(base, now, why);
  base.cancel_requested = false;
  base.alloc_cores.clear();  // the next attempt gets its own
  base.alloc_gpus.clear();
  const int allowed = spec.max_attempts > 0 ? spec.max_attempts : config.max_attempts;
  std::string final_reason;
  if (!spec.rerunnable) {
    final_reason = "node failed";
  } else if (job.attempt >= allowed) {
    final_reason = "node failed; " + std::to_string(job.attempt) + " of " +
                   std::to_string(allowed) + " attempts used";
  }
  const JobEvent event = final_reason.empty() ? JobEvent::kRequeue : JobEvent::kExitError;
  Result<Job> moved = Move(base, event);
  Job out = moved ? *moved : base;
  if (final_reason.empty()) {
    out.reason = why;  // shown while it waits to run again
  } else {
    out.reason = final_reason;
    out.end_time = now;
  }
  return out;
}

namespace {

// Brings the scheduler's view of `node` in line with the attempts the node reports.
// `authoritative` (a registration): attempts the node does not list are lost and
// requeued. Otherwise (a heartbeat) the start order may still be in flight, so it is
// sent again; the execd ignores an attempt it has already seen.
void Reconcile(const ClusterState& state, const CoreConfig& config, TimeMs now,
               const std::string& node, const std::vector<RunningAttempt>& reported,
               bool authoritative, Actions& out) {
  std::set<std::tuple<JobId, TaskId, int>> listed;
  for (const RunningAttempt& a : reported) listed.insert({a.job_id, a.task, a.attempt});
  // Only this node's jobs: a heartbeat costs O(jobs on the node), not O(cluster).
  auto on_node = state.running_on.find(node);
  const std::set<UnitKey> none;
  for (const UnitKey& key : on_node == state.running_on.end() ? none : on_node->second) {
    const Job& job = *FindUnit(state, key);
    if (listed.count({job.id, job.task, job.attempt})) continue;
    if (job.cancel_requested && authoritative) {
      // Cancelled while the node was away; its process is gone: finish the cancel.
      Result<Job> moved = Move(job, JobEvent::kCancel);
      if (moved) {
        EndAttempt(*moved, now, job.reason);
        moved->end_time = now;
        out.put_jobs.push_back(*moved);
      }
    } else if (authoritative) {
      Lose(state, job, config, now, "node failed: " + node + " restarted without the job", out);
    } else if (!job.cancel_requested) {
      out.orders.push_back({node, StartJob{StartRecord(state, job)}});
    }
  }
  // Fencing: an attempt the scheduler does not consider running there is stale.
  for (const RunningAttempt& a : reported) {
    const Job* unit = FindUnit(state, {a.job_id, a.task});
    const bool current = unit != nullptr && unit->state == JobState::kRunning &&
                         unit->node == node && unit->attempt == a.attempt;
    if (!current) out.orders.push_back({node, KillJob{a.job_id, a.attempt, a.task}});
  }
}

Outcome Register(const ClusterState& state, const RegisterNode& msg, const CoreConfig& config,
                 TimeMs now) {
  Outcome out;
  for (const std::string& f : msg.features) {
    if (!ValidResourceName(f)) {
      out.reply = Err(Code::kInvalidArgument, "node " + msg.node + ": '" + f +
                                                  "' is not a valid feature name");
      return out;
    }
  }
  for (const auto& [c, _] : msg.total.consumables) {
    if (!ValidResourceName(c)) {
      out.reply = Err(Code::kInvalidArgument, "node " + msg.node + ": '" + c +
                                                  "' is not a valid consumable name");
      return out;
    }
  }
  Node node;
  node.name = msg.node;
  node.total = msg.total;
  node.gpu_ids = msg.gpu_ids;
  node.features = msg.features;
  std::sort(node.features.begin(), node.features.end());
  node.features.erase(std::unique(node.features.begin(), node.features.end()),
                      node.features.end());
  node.state = NodeState::kUp;
  node.last_seen = now;
  auto it = state.nodes.find(msg.node);
  if (it != state.nodes.end()) node.enabled = it->second.enabled;  // qmod -d outlives restarts
  if (it == state.nodes.end() || it->second.total != node.total ||
      it->second.gpu_ids != node.gpu_ids || it->second.features != node.features ||
      it->second.state != node.state) {
    out.actions.put_nodes.push_back(node);
  }
  out.actions.seen_nodes.push_back({msg.node, now});
  Reconcile(state, config, now, msg.node, msg.running, /*authoritative=*/true, out.actions);
  out.reply = NodeRegistered{config.heartbeat_interval_ms};
  return out;
}

Outcome Beat(const ClusterState& state, const Heartbeat& msg, const CoreConfig& config,
             TimeMs now) {
  Outcome out;
  auto it = state.nodes.find(msg.node);
  if (it == state.nodes.end() || it->second.state != NodeState::kUp) {
    // Unknown, or declared unreachable (its jobs were requeued): it must register again.
    out.reply = Err(Code::kNotFound, "node " + msg.node + " is not registered");
    return out;
  }
  out.actions.seen_nodes.push_back({msg.node, now});
  out.actions.node_loads.push_back({msg.node, msg.load});
  Reconcile(state, config, now, msg.node, msg.running, /*authoritative=*/false, out.actions);
  return out;
}

Outcome Exit(const ClusterState& state, const JobExit& msg) {
  Outcome out;
  // Always acknowledged, so that the execd stops resending; only the attempt that owns
  // the job may finish it (a stale attempt's late result is ignored).
  out.reply = ExitAck{msg.job_id, msg.attempt, msg.task};
  const Job* unit = FindUnit(state, {msg.job_id, msg.task});
  if (unit == nullptr) return out;
  const Job& job = *unit;
  if (job.state != JobState::kRunning || job.attempt != msg.attempt || job.node != msg.node) {
    return out;
  }
  JobEvent event = JobEvent::kExitOk;
  if (job.cancel_requested) {
    event = JobEvent::kCancel;
  } else if (!msg.failure.empty() || msg.exit_code != 0 || msg.signal != 0) {
    event = JobEvent::kExitError;
  }
  Result<Job> moved = Move(job, event);
  if (!moved) return out;
  moved->exit_code = msg.exit_code;
  moved->exit_signal = msg.signal;
  moved->end_time = msg.end_time;
  moved->cpu_ms = msg.cpu_ms;
  moved->max_rss_kb = msg.max_rss_kb;
  moved->result = msg.result;
  moved->result_error = msg.result_error;
  // The distinct, visible reason of every end (qstat -j, qacct, --json exit_reason).
  std::string why;
  if (job.cancel_requested) {
    why = job.reason;  // "cancelled by USER"
  } else if (!msg.failure.empty()) {
    why = msg.failure;
  } else if (!msg.reason.empty()) {
    why = msg.reason;
  } else if (msg.signal != 0) {
    why = "killed by signal " + std::to_string(msg.signal);
  } else {
    why = "exited with code " + std::to_string(msg.exit_code);
  }
  moved->reason = event == JobEvent::kExitOk ? "" : why;
  EndAttempt(*moved, msg.end_time, why);
  out.actions.put_jobs.push_back(std::move(*moved));
  return out;
}

}  // namespace

namespace {
// Moves `from`'s elements to the end of `to`: the whole vector when `to` is empty (the
// first request of a batch, or a qdel of 10,000 jobs: no element moved at all), else
// after at most one reallocation.
template <typename T>
void MoveAppend(std::vector<T>& to, std::vector<T>& from) {
  if (to.empty()) {
    to = std::move(from);
    return;
  }
  if (to.capacity() < to.size() + from.size()) {
    to.reserve(std::max(2 * to.capacity(), to.size() + from.size()));  // geometric growth
  }
  for (T& x : from) to.push_back(std::move(x));
}
}  // namespace

void Actions::Append(Actions&& other) {
  MoveAppend(put_jobs, other.put_jobs);
  for (Node& n : other.put_nodes) put_nodes.push_back(std::move(n));
  if (other.next_job_id) next_job_id = other.next_job_id;
  for (auto& s : other.seen_nodes) seen_nodes.push_back(std::move(s));
  for (auto& l : other.node_loads) node_loads.push_back(std::move(l));
  for (auto& c : other.charges) charges.push_back(std::move(c));
  if (other.waiting) waiting = std::move(other.waiting);
  if (other.pass) pass = std::move(other.pass);
  if (other.settled) settled = std::move(other.settled);
  for (AuditEntry& e : other.audit) audit.push_back(std::move(e));
  MoveAppend(events, other.events);
  for (Order& o : other.orders) orders.push_back(std::move(o));
}

namespace {
Outcome Client(const ClusterState& state, const Message& request, const Caller& caller,
               const CoreConfig& config, TimeMs now) {
  if (const auto* m = std::get_if<SubmitRequest>(&request)) {
    return Submit(state, *m, caller, config, now);
  }
  if (const auto* m = std::get_if<QueryRequest>(&request)) {
    return Query(state, *m, caller, config, now);
  }
  if (const auto* m = std::get_if<CancelRequest>(&request)) {
    return Cancel(state, *m, caller, config, now);
  }
  if (const auto* m = std::get_if<HoldRequest>(&request)) {
    return Hold(state, *m, caller, config, now);
  }
  if (const auto* m = std::get_if<PriorityRequest>(&request)) {
    return Outcome{Priorities(state, *m, caller, config), {}};
  }
  if (std::holds_alternative<ShareRequest>(request)) return Outcome{Shares(state, config, now), {}};
  if (std::holds_alternative<NodesRequest>(request)) return Nodes(state);
  if (const auto* m = std::get_if<NodeAdminRequest>(&request)) {
    return NodeAdmin(state, *m, caller, config, now);
  }
  if (const auto* m = std::get_if<ResubmitRequest>(&request)) {
    return Resubmit(state, *m, caller, config, now);
  }
  return Outcome{Err(Code::kInvalidArgument,
                     "'" + std::string(TypeName(request)) + "' is not a request a client may send"),
                 {}};
}

Outcome FromNode(const ClusterState& state, const Message& message, const CoreConfig& config,
                 TimeMs now) {
  if (const auto* m = std::get_if<RegisterNode>(&message)) return Register(state, *m, config, now);
  if (const auto* m = std::get_if<Heartbeat>(&message)) return Beat(state, *m, config, now);
  if (const auto* m = std::get_if<JobExit>(&message)) return Exit(state, *m);
  return Outcome{Err(Code::kInvalidArgument,
                     "'" + std::string(TypeName(message)) + "' is not a message a node may send"),
                 {}};
}
}  // namespace

Outcome HandleClient(const ClusterState& state, const Message& request, const Caller& caller,
                     const CoreConfig& config, TimeMs now) {
  Outcome out = Client(state, request, caller, config, now);
  SettleArrays(state, out.actions, now);
  return out;
}

namespace {
// The account a unit's usage is charged to under `policy`, and its usage rate.
Actions::Charge ChargeFor(const ClusterState& state, const Job& unit, const PolicyEngine& engine,
                          TimeMs from, TimeMs to) {
  const FairSharePolicy& fs = engine.policy.fairshare;
  const JobSpec& spec = SpecOf(state, unit);
  return {EffectiveAccount(fs, {AccountGroup(fs, unit.owner, spec.project), unit.owner}),
          UsageRate(spec.request, fs), from, to, fs.half_life_s};
}
}  // namespace

// Under a policy: a charge for every run that ends in `actions` (a unit that was running
// and is not any more: ended, cancelled or lost).
void ChargeEndedRuns(const ClusterState& state, const CoreConfig& config, TimeMs now,
                     Actions& actions) {
  if (!config.policy) return;
  for (const Job& job : actions.put_jobs) {
    if (job.state == JobState::kRunning || job.attempts.empty()) continue;
    const Job* before = FindUnit(state, KeyOf(job));
    if (before == nullptr || before->state != JobState::kRunning) continue;
    const Attempt& run = job.attempts.back();
    const TimeMs end = run.end_time != 0 ? run.end_time : now;
    actions.charges.push_back(ChargeFor(state, job, *config.policy, run.start_time, end));
  }
}

UsageTable UsageNow(const ClusterState& state, const CoreConfig& config, TimeMs now) {
  return UsageAndRunning(state, config, now, nullptr);
}

UsageTable UsageAndRunning(const ClusterState& state, const CoreConfig& config, TimeMs now,
                           std::vector<RunningJob>* running) {
  UsageTable usage = state.usage;
  if (!config.policy) return usage;
  // The same charges as ChargeFor's, in the same order (each account's sum is the same
  // number), but each owner and project's group and account entry are found once, not per
  // unit; and the unit is looked up once for both its charge and its view.
  const FairSharePolicy& fs = config.policy->policy.fairshare;
  struct Charged {
    std::string group;
    DecayedUsage* usage = nullptr;
  };
  std::unordered_map<std::string, std::unordered_map<std::string, Charged>> account;
  if (running) running->reserve(running->size() + state.running.size());
  // `running`, `jobs` and `tasks` are all in UnitKey order: each unit is found by stepping
  // on from the last one found when it is a few records further (the records are laid out
  // in id order: a walk along memory), else by a search. Same records as FindUnit's.
  auto job_at = state.jobs.begin();
  auto task_at = state.tasks.begin();
  auto near = [](const auto& map, auto& at, const auto& key) -> const Job& {
    for (int step = 0; step < 8 && at != map.end() && at->first < key; ++step) ++at;
    if (at == map.end() || !(at->first == key)) at = map.find(key);
    return at->second;
  };
  for (const UnitKey& key : state.running) {
    const Job& unit =
        key.task == 0 ? near(state.jobs, job_at, key.job) : near(state.tasks, task_at, key);
    const JobSpec& spec = SpecOf(state, unit);
    Charged& a = account[unit.owner][spec.project];
    if (a.usage == nullptr) {
      a.group = AccountGroup(fs, unit.owner, spec.project);
      a.usage = &usage[EffectiveAccount(fs, {a.group, unit.owner})];
    }
    *a.usage =
        ChargeRun(*a.usage, UsageRate(spec.request, fs), unit.start_time, now, fs.half_life_s);
    if (running) {  // built in place: 32k views a pass at 1,000 nodes x 32 cores
      RunningJob& view = running->emplace_back();
      view.user = unit.owner;
      view.group = a.group;
      view.node = unit.node;
      view.alloc = NodePart(spec.request, config);
      if (!spec.request.consumables.empty()) view.cluster_alloc = ClusterPart(spec.request, config);
      view.start_time = unit.start_time;
      view.h_rt_s = spec.h_rt_s;
    }
  }
  return usage;
}

void RebuildUsage(ClusterState& state, const CoreConfig& config) {
  ++state.generation;
  state.usage.clear();
  if (!config.policy) return;
  auto charge = [&](const Job& unit) {
    for (const Attempt& run : unit.attempts) {
      if (run.end_time == 0) continue;  // still running: charged when it ends
      Actions::Charge c = ChargeFor(state, unit, *config.policy, run.start_time, run.end_time);
      state.usage[c.account] = ChargeRun(state.usage[c.account], c.rate, c.from, c.to, c.half_life_s);
    }
  };
  for (const auto& [id, job] : state.jobs) charge(job);
  for (const auto& [key, task] : state.tasks) charge(task);
}

Outcome HandleNode(const ClusterState& state, const Message& message, const CoreConfig& config,
                   TimeMs now) {
  Outcome out = FromNode(state, message, config, now);
  SettleArrays(state, out.actions, now);
  ChargeEndedRuns(state, config, now, out.actions);
  return out;
}

std::map<std::string, Resources> UsedByNode(const ClusterState& state) {
  std::map<std::string, Resources> used;
  for (const UnitKey& key : state.running) {
    const Job& job = *FindUnit(state, key);
    used[job.node] += SpecOf(state, job).request;
  }
  return used;
}


namespace {
// Adds (sign +1) or removes (-1) what running `unit` holds to its node's use. A count that
// returns to zero is dropped, so the sums hold what a visit of the running units would find.
void CountUse(NodeUse& use, const Job& unit, const Resources& request, int sign) {
  use.held.cores += sign * request.cores;
  use.held.mem_mb += sign * request.mem_mb;
  use.held.gpus += sign * request.gpus;
  for (const auto& [name, n] : request.consumables) {
    auto [it, fresh] = use.held.consumables.try_emplace(name, 0);
    it->second += sign * n;
    if (sign < 0 && it->second == 0) use.held.consumables.erase(it);
  }
  for (int c : unit.alloc_cores) {
    if (c < 0) continue;
    if (static_cast<size_t>(c) >= use.core_users.size()) use.core_users.resize(c + 1, 0);
    use.core_users[c] += sign;
  }
  for (int g : unit.alloc_gpus) {
    auto [it, fresh] = use.gpu_users.try_emplace(g, 0);
    it->second += sign;
    if (it->second == 0) use.gpu_users.erase(it);
  }
}

// Adds (sign +1) or removes (-1) a queued or held job's waiting work (1, or an array's
// pending tasks) to its owner's count; empty entries are dropped.
void CountQueued(ClusterState& state, const Job& job, int sign) {
  auto& by_project = state.queued_by_owner[job.owner];
  int64_t& n = by_project[job.spec.project];
  n += sign * (job.IsArray() ? CountTasks(job.pending) : 1);
  if (n != 0) return;
  by_project.erase(job.spec.project);
  if (by_project.empty()) state.queued_by_owner.erase(job.owner);
}

// Adds (sign +1) or removes (-1) `job` from the indexes of its state: queued and held
// hold plain jobs and arrays, running holds plain jobs and tasks, and each array has
// counts of its tasks by state.
void Index(ClusterState& state, const Job& job, int sign) {
  const UnitKey key = KeyOf(job);
  if (job.task != 0) CountTask(state.task_counts[job.id], job, sign);
  auto update = [sign](auto& set, const auto& value) {
    if (sign > 0) {
      set.insert(value);
    } else {
      set.erase(value);
    }
  };
  switch (job.state) {
    case JobState::kQueued:
      if (job.task == 0) update(state.queued, job.id);
      if (job.task == 0) CountQueued(state, job, sign);
      if (job.task == 0) IndexRanked(state, job, sign);
      break;
    case JobState::kHeld:
      if (job.task == 0) update(state.held, job.id);
      if (job.task == 0) CountQueued(state, job, sign);
      break;
    case JobState::kRunning:
      // An array whose last tasks run is "running" itself but is not a unit that runs.
      if (job.task != 0 || !job.IsArray()) {
        update(state.running, key);
        update(state.running_on[job.node], key);
        CountUse(state.use_on[job.node], job, SpecOf(state, job).request, sign);
      }
      break;
    default: break;
  }
}
}  // namespace

const Job* FindUnit(const ClusterState& state, const UnitKey& key) {
  if (key.task == 0) {
    auto it = state.jobs.find(key.job);
    return it == state.jobs.end() ? nullptr : &it->second;
  }
  auto it = state.tasks.find(key);
  return it == state.tasks.end() ? nullptr : &it->second;
}

const JobSpec& SpecOf(const ClusterState& state, const Job& job) {
  if (job.task == 0) return job.spec;
  auto it = state.jobs.find(job.id);
  return it == state.jobs.end() ? job.spec : it->second.spec;
}

void Install(ClusterState& state, const Actions& actions) {
  if (!actions.put_jobs.empty() || !actions.put_nodes.empty() || !actions.charges.empty()) {
    ++state.generation;  // what a scheduling pass reads has changed
  }
  for (const Job& job : actions.put_jobs) {
    if (job.task != 0) {
      auto [it, fresh] = state.tasks.try_emplace(KeyOf(job), job);
      if (!fresh) {
        Index(state, it->second, -1);
        it->second = job;
      }
      Index(state, job, +1);
      continue;
    }
    auto [it, fresh] = state.jobs.try_emplace(job.id, job);
    if (!fresh) {
      Index(state, it->second, -1);
      it->second = job;  // the owner of a job never changes: by_owner stays right
    } else {
      IndexOwner(state, job);
    }
    Index(state, job, +1);
  }
  for (const Node& node : actions.put_nodes) {
    TimeMs seen = node.last_seen;
    double load = node.load;
    auto it = state.nodes.find(node.name);
    if (it != state.nodes.end()) {
      seen = std::max(seen, it->second.last_seen);
      load = it->second.load;
    }
    state.nodes[node.name] = node;
    state.nodes[node.name].last_seen = seen;
    state.nodes[node.name].load = load;
  }
  for (const auto& [name, when] : actions.seen_nodes) {
    auto it = state.nodes.find(name);
    if (it != state.nodes.end()) it->second.last_seen = std::max(it->second.last_seen, when);
  }
  for (const Actions::Charge& c : actions.charges) {
    state.usage[c.account] = ChargeRun(state.usage[c.account], c.rate, c.from, c.to, c.half_life_s);
  }
  if (actions.waiting) state.waiting = *actions.waiting;
  if (actions.pass) state.last_pass = actions.pass;
  if (actions.settled) state.settled = actions.settled;
  for (const auto& [name, load] : actions.node_loads) {
    auto it = state.nodes.find(name);
    if (it != state.nodes.end()) it->second.load = load;
  }
  if (actions.next_job_id) state.next_job_id = std::max(state.next_job_id, *actions.next_job_id);
}

void Reindex(ClusterState& state) {
  state.queued.clear();
  state.queued_by_class.clear();
  state.queued_walked.clear();
  state.held.clear();
  state.running.clear();
  state.running_on.clear();
  state.use_on.clear();
  state.task_counts.clear();
  state.queued_by_owner.clear();
  state.by_owner.clear();
  state.settled.reset();
  ++state.generation;
  for (const auto& [id, job] : state.jobs) {
    Index(state, job, +1);
    IndexOwner(state, job);
  }
  for (auto& [owner, ids] : state.by_owner) ids.shrink_to_fit();
  for (const auto& [key, task] : state.tasks) Index(state, task, +1);
}

bool IsFinished(const ClusterState& state, JobId id) {
  auto it = state.jobs.find(id);
  return it == state.jobs.end() || IsFinal(it->second.state);
}

}  // namespace corral
