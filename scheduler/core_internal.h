// Helpers of the pure core shared by its files (core.cc: requests and node messages;
// decide.cc: the scheduling pass). Not part of the core's interface (core.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "scheduler/core.h"

namespace corral {

// qdel of an array, or of some of its tasks (`tasks`): pending ids go, running tasks
// are killed, and the array settles once they have ended (SettleArrays). Returns
// "deleted", "registered" (tasks were killed) or "" (nothing to do).
std::string CancelArray(const ClusterState& state, const Job& array,
                        const std::optional<TaskRange>& tasks, const std::string& reason,
                        TimeMs now, Actions& actions);

// Closes the current attempt's record.
void EndAttempt(Job& job, TimeMs now, const std::string& reason);

// A job whose attempt was lost with its node: back to the queue if it may run again
// (rerunnable and attempts left), otherwise failed with the reason; the record goes into
// `actions`, and a requeued array task's id back among the array's pending ids.
void Lose(const ClusterState& state, const Job& job, const CoreConfig& config, TimeMs now,
          const std::string& why, Actions& actions);

// Under a policy: a charge for every run that ends in `actions` (a unit that was running
// and is not any more: ended, cancelled or lost).
void ChargeEndedRuns(const ClusterState& state, const CoreConfig& config, TimeMs now,
                     Actions& actions);

// UsageNow (core.h), and under a policy each running unit as the planner sees it appended
// to `running` (when not null; in state.running order, ids 0, groups by AccountGroup):
// one walk over the running units for both.
UsageTable UsageAndRunning(const ClusterState& state, const CoreConfig& config, TimeMs now,
                           std::vector<RunningJob>* running);

}  // namespace corral
