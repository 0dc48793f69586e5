// Arrays and dependencies (arrays.h).
#include "scheduler/arrays.h"

#include <map>

namespace corral {

Result<Job> MoveJob(const Job& job, JobEvent event) {
  Result<JobState> next = Next(job.state, event);
  if (!next) return std::unexpected(next.error());
  Job moved = job;
  moved.state = *next;
  return moved;
}

void CountTask(TaskCounts& c, const Job& task, int sign) {
  switch (task.state) {
    case JobState::kRunning: c.running += sign; break;
    case JobState::kQueued: c.queued += sign; break;
    case JobState::kCompleted: c.completed += sign; break;
    case JobState::kFailed: c.failed += sign; break;
    case JobState::kCancelled: c.cancelled += sign; break;
    case JobState::kHeld: break;
  }
}

namespace {

// The array's next record given the counts of its tasks, or nullopt if unchanged.
std::optional<Job> Settle(const Job& array, const TaskCounts& c, TimeMs now) {
  if (IsFinal(array.state)) return std::nullopt;
  Result<Job> moved = array;
  if (!array.pending.empty()) {
    if (array.state == JobState::kRunning) moved = MoveJob(array, JobEvent::kRequeue);
  } else if (c.running > 0) {
    if (array.state == JobState::kQueued) moved = MoveJob(array, JobEvent::kStart);
  } else {
    // Nothing pending, nothing running: the array has ended.
    JobEvent event = JobEvent::kExitOk;
    std::string reason;
    const int64_t dispatched = c.completed + c.failed + c.cancelled + c.queued;
    if (array.cancel_requested) {
      event = JobEvent::kCancel;
      reason = array.reason;
    } else if (c.failed > 0) {
      event = JobEvent::kExitError;
      reason = std::to_string(c.failed) + " of " + std::to_string(dispatched) + " tasks failed";
    } else if (c.completed == 0) {
      event = JobEvent::kCancel;
      reason = array.reason.empty() ? "every task was deleted" : array.reason;
    }
    if (array.state != JobState::kRunning && event != JobEvent::kCancel) {
      // Still queued (its last tasks were deleted with qdel -t): no run to complete.
      event = JobEvent::kCancel;
      if (reason.empty()) reason = "its remaining tasks were deleted";
    }
    moved = MoveJob(array, event);
    if (moved) {
      moved->end_time = now;
      moved->reason = reason;
    }
  }
  if (!moved || *moved == array) return std::nullopt;
  return *moved;
}

}  // namespace

Job StartRecord(const ClusterState& state, const Job& unit) {
  if (unit.task == 0) return unit;
  Job record = unit;
  auto it = state.jobs.find(unit.id);
  if (it == state.jobs.end()) return record;
  record.spec = it->second.spec;
  const TaskRange& range = *record.spec.array;
  if (!record.spec.sweep.empty() && range.Contains(unit.task)) {
    record.params = record.spec.sweep[(unit.task - range.first) / range.step];
  }
  record.spec.sweep.clear();
  return record;
}

void SettleArrays(const ClusterState& state, Actions& actions, TimeMs now) {
  // The latest version of each array and of each task in this batch.
  std::map<JobId, size_t> arrays;  // index into put_jobs of the array's latest record
  std::map<UnitKey, size_t> tasks;
  for (size_t i = 0; i < actions.put_jobs.size(); ++i) {
    const Job& job = actions.put_jobs[i];
    if (job.task != 0) {
      tasks[KeyOf(job)] = i;
    } else if (job.IsArray()) {
      arrays[job.id] = i;
    }
  }
  std::map<JobId, TaskCounts> counts;
  for (const auto& [key, i] : tasks) {
    auto base = state.task_counts.find(key.job);
    auto [it, fresh] = counts.try_emplace(key.job);
    if (fresh && base != state.task_counts.end()) it->second = base->second;
  }
  for (const auto& [key, i] : tasks) {
    TaskCounts& c = counts[key.job];
    if (const auto old = state.tasks.find(key); old != state.tasks.end()) CountTask(c, old->second, -1);
    CountTask(c, actions.put_jobs[i], +1);
  }
  for (const auto& [id, i] : arrays) {
    auto base = state.task_counts.find(id);
    counts.try_emplace(id, base == state.task_counts.end() ? TaskCounts{} : base->second);
  }
  for (const auto& [id, c] : counts) {
    const Job* array = nullptr;
    if (auto a = arrays.find(id); a != arrays.end()) {
      array = &actions.put_jobs[a->second];
    } else if (auto s = state.jobs.find(id); s != state.jobs.end()) {
      array = &s->second;
    }
    if (array == nullptr || !array->IsArray()) continue;
    if (std::optional<Job> settled = Settle(*array, c, now)) {
      actions.put_jobs.push_back(std::move(*settled));
    }
  }
}

DependencyVerdict CheckDependencies(const ClusterState& state, const Job& job, TaskId task,
                                    std::string& reason) {
  const JobSpec& spec = job.spec;
  auto ended = [&](JobId dep) -> const Job* {
    auto it = state.jobs.find(dep);
    if (it == state.jobs.end()) return nullptr;
    return IsFinal(it->second.state) ? &it->second : nullptr;
  };
  for (JobId dep : spec.after_ok) {
    const Job* d = ended(dep);
    if (d == nullptr && state.jobs.count(dep)) {
      reason = "waiting for job " + std::to_string(dep) + " to complete";
      return DependencyVerdict::kWait;
    }
    if (d != nullptr && d->state != JobState::kCompleted) {
      reason = "dependency failed: job " + std::to_string(dep) + " " +
               std::string(StateName(d->state)) + " (--after-ok)";
      return DependencyVerdict::kNever;
    }
  }
  for (JobId dep : spec.after_notok) {
    const Job* d = ended(dep);
    if (d == nullptr && state.jobs.count(dep)) {
      reason = "waiting for job " + std::to_string(dep) + " to end";
      return DependencyVerdict::kWait;
    }
    if (d != nullptr && d->state == JobState::kCompleted) {
      reason = "dependency not met: job " + std::to_string(dep) + " completed (--after-notok)";
      return DependencyVerdict::kNever;
    }
  }
  for (JobId dep : spec.after_any) {
    if (ended(dep) == nullptr && state.jobs.count(dep)) {
      reason = "waiting for job " + std::to_string(dep) + " to end";
      return DependencyVerdict::kWait;
    }
  }
  // Task-wise dependencies are judged per task; a plain job (no tasks) waits for the whole.
  if (task == 0 && job.IsArray()) return DependencyVerdict::kGo;
  for (JobId dep : spec.after_tasks) {
    auto it = state.jobs.find(dep);
    if (it == state.jobs.end() || IsFinal(it->second.state)) continue;
    const Job& other = it->second;
    // Task `task` waits for the same task of `dep`; a plain job, or an array without that
    // task, is waited for as a whole.
    if (task != 0 && other.IsArray() && other.spec.array->Contains(task)) {
      auto t = state.tasks.find({dep, task});
      if (t != state.tasks.end() && IsFinal(t->second.state)) continue;
      reason = "waiting for task " + std::to_string(dep) + "." + std::to_string(task);
      return DependencyVerdict::kWait;
    }
    reason = "waiting for job " + std::to_string(dep) + " to end";
    return DependencyVerdict::kWait;
  }
  return DependencyVerdict::kGo;
}

Status ValidateDependencies(const ClusterState& state, const JobSpec& spec) {
  for (const auto* list : {&spec.after_any, &spec.after_ok, &spec.after_notok, &spec.after_tasks}) {
    for (JobId dep : *list) {
      if (dep >= state.next_job_id) {
        return Error(Code::kInvalidArgument,
                     "job " + std::to_string(dep) +
                         " does not exist yet: a job can only depend on jobs submitted before "
                         "it, so dependencies never form a cycle");
      }
      if (!state.jobs.count(dep)) {
        return Error(Code::kInvalidArgument, "job " + std::to_string(dep) + " does not exist");
      }
    }
  }
  return OkStatus();
}

}  // namespace corral
