// Arrays and dependencies in the pure core: how an array's state follows from its
// tasks, what a dispatched task is given, and whether a job's dependencies let it run.
// Used by core.cc; pure like it.
#pragma once

#include <string>

#include "scheduler/core.h"

namespace corral {

// A copy of `job` moved by `event`, or the state machine's refusal (job_state.h): the one
// way the core changes a job's state.
Result<Job> MoveJob(const Job& job, JobEvent event);

// Adds (sign +1) or removes (-1) what one task record contributes to its array's counts.
void CountTask(TaskCounts& counts, const Job& task, int sign);

// The record an execd needs to run `unit`: for an array task, the array's spec (its
// sweep left out), with the task's parameter point.
Job StartRecord(const ClusterState& state, const Job& unit);

// Brings every array touched by `actions` (a task changed, or its pending ids) to the
// state its tasks imply: queued while ids are pending, running while only dispatched
// tasks remain, and at the end completed, failed (some task failed) or cancelled.
void SettleArrays(const ClusterState& state, Actions& actions, TimeMs now);

// Whether `job` (task `task` of it, for -hold_jid_ad) may start as far as its
// dependencies go; for an array with task 0, all but the task-wise ones. kWait: not yet; kNever: a dependency ended in a way that means it
// never will (the reason names it); kGo: all met.
enum class DependencyVerdict { kGo, kWait, kNever };
DependencyVerdict CheckDependencies(const ClusterState& state, const Job& job, TaskId task,
                                    std::string& reason);

// Submit-time check of the job ids a spec depends on: each must exist.
Status ValidateDependencies(const ClusterState& state, const JobSpec& spec);

}  // namespace corral
