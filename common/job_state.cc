// Lookup over the move table in job_state.h, and the names of states and events.
#include "common/job_state.h"

#include <string>

namespace corral {

Result<JobState> Next(JobState from, JobEvent on) {
  for (const JobMove& move : kJobMoves) {
    if (move.from == from && move.on == on) return move.to;
  }
  return Error(Code::kFailedPrecondition, "a " + std::string(StateName(from)) +
                                              " job cannot take event '" +
                                              std::string(EventName(on)) + "'");
}

bool IsFinal(JobState state) {
  return state == JobState::kCompleted || state == JobState::kFailed ||
         state == JobState::kCancelled;
}

std::string_view StateName(JobState state) {
  switch (state) {
    case JobState::kQueued: return "queued";
    case JobState::kHeld: return "held";
    case JobState::kRunning: return "running";
    case JobState::kCompleted: return "completed";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::optional<JobState> StateFromName(std::string_view name) {
  for (JobState s : {JobState::kQueued, JobState::kHeld, JobState::kRunning, JobState::kCompleted,
                     JobState::kFailed, JobState::kCancelled}) {
    if (StateName(s) == name) return s;
  }
  return std::nullopt;
}

std::string_view EventName(JobEvent event) {
  switch (event) {
    case JobEvent::kHold: return "hold";
    case JobEvent::kRelease: return "release";
    case JobEvent::kStart: return "start";
    case JobEvent::kExitOk: return "exit_ok";
    case JobEvent::kExitError: return "exit_error";
    case JobEvent::kCancel: return "cancel";
    case JobEvent::kRequeue: return "requeue";
  }
  return "unknown";
}

}  // namespace corral
