// The job lifecycle: states, the events that move a job, and the one table of
// legal moves. Nothing else in Corral decides which state follows which; the
// core asks Next() and treats an illegal move as an error, never overwriting.
#pragma once

#include <optional>
#include <string_view>

#include "common/status.h"

namespace corral {

enum class JobState {
  kQueued,     // waiting for resources
  kHeld,       // waiting for a release (qsub -h, qhold)
  kRunning,    // dispatched to a node (attempt N)
  kCompleted,  // ran and exited 0
  kFailed,     // ran and exited non-zero or by a signal, or could not be started
  kCancelled,  // removed by qdel
};

enum class JobEvent {
  kHold,       // qhold
  kRelease,    // qrls
  kStart,      // the core dispatched the job to a node
  kExitOk,     // the node reported exit status 0
  kExitError,  // the node reported a non-zero exit, a signal, or a failure to start
  kCancel,     // qdel of a queued/held job, or the exit of a running job whose qdel was pending
  kRequeue,    // the attempt is lost (node unreachable) and the job may run again
};

struct JobMove {
  JobState from;
  JobEvent on;
  JobState to;
};

// Every legal move. A (state, event) pair not listed here is illegal.
inline constexpr JobMove kJobMoves[] = {
    {JobState::kQueued, JobEvent::kHold, JobState::kHeld},
    {JobState::kQueued, JobEvent::kStart, JobState::kRunning},
    {JobState::kQueued, JobEvent::kCancel, JobState::kCancelled},
    {JobState::kHeld, JobEvent::kRelease, JobState::kQueued},
    {JobState::kHeld, JobEvent::kHold, JobState::kHeld},
    {JobState::kHeld, JobEvent::kCancel, JobState::kCancelled},
    {JobState::kRunning, JobEvent::kExitOk, JobState::kCompleted},
    {JobState::kRunning, JobEvent::kExitError, JobState::kFailed},
    {JobState::kRunning, JobEvent::kCancel, JobState::kCancelled},
    {JobState::kRunning, JobEvent::kRequeue, JobState::kQueued},
};

// The state reached from `from` on `on`, or FailedPrecondition naming both.
Result<JobState> Next(JobState from, JobEvent on);

// True for completed, failed and cancelled: no event leaves these states.
bool IsFinal(JobState state);

// Stable names used on the wire, in SQLite and in `--json` output:
// "queued", "held", "running", "completed", "failed", "cancelled".
std::string_view StateName(JobState state);
std::optional<JobState> StateFromName(std::string_view name);
std::string_view EventName(JobEvent event);

}  // namespace corral
