// The job state machine: every legal move, and every other (state, event) pair refused.
#include <doctest/doctest.h>

#include <set>
#include <tuple>

#include "common/job_state.h"

using namespace corral;

namespace {
const JobState kStates[] = {JobState::kQueued,    JobState::kHeld,   JobState::kRunning,
                            JobState::kCompleted, JobState::kFailed, JobState::kCancelled};
const JobEvent kEvents[] = {JobEvent::kHold,      JobEvent::kRelease, JobEvent::kStart,
                            JobEvent::kExitOk,    JobEvent::kExitError, JobEvent::kCancel,
                            JobEvent::kRequeue};
}  // namespace

TEST_CASE("job state: the legal moves") {
  CHECK(Next(JobState::kQueued, JobEvent::kStart).value() == JobState::kRunning);
  CHECK(Next(JobState::kQueued, JobEvent::kHold).value() == JobState::kHeld);
  CHECK(Next(JobState::kQueued, JobEvent::kCancel).value() == JobState::kCancelled);
  CHECK(Next(JobState::kHeld, JobEvent::kRelease).value() == JobState::kQueued);
  CHECK(Next(JobState::kHeld, JobEvent::kHold).value() == JobState::kHeld);
  CHECK(Next(JobState::kHeld, JobEvent::kCancel).value() == JobState::kCancelled);
  CHECK(Next(JobState::kRunning, JobEvent::kExitOk).value() == JobState::kCompleted);
  CHECK(Next(JobState::kRunning, JobEvent::kExitError).value() == JobState::kFailed);
  CHECK(Next(JobState::kRunning, JobEvent::kCancel).value() == JobState::kCancelled);
  CHECK(Next(JobState::kRunning, JobEvent::kRequeue).value() == JobState::kQueued);
}

TEST_CASE("job state: every move not in the table is refused with both names") {
  std::set<std::pair<JobState, JobEvent>> legal;
  for (const JobMove& m : kJobMoves) legal.insert({m.from, m.on});
  CHECK(legal.size() == 10);
  int refused = 0;
  for (JobState s : kStates) {
    for (JobEvent e : kEvents) {
      if (legal.count({s, e})) continue;
      Result<JobState> r = Next(s, e);
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().code() == Code::kFailedPrecondition);
      CHECK(r.error().message().find(std::string(StateName(s))) != std::string::npos);
      CHECK(r.error().message().find(std::string(EventName(e))) != std::string::npos);
      ++refused;
    }
  }
  CHECK(refused == 6 * 7 - 10);
}

TEST_CASE("job state: final states have no way out") {
  for (JobState s : kStates) {
    bool has_exit = false;
    for (JobEvent e : kEvents) has_exit |= Next(s, e).has_value();
    CHECK(IsFinal(s) == !has_exit);
  }
}

TEST_CASE("job state: names round-trip and unknown names are rejected") {
  for (JobState s : kStates) CHECK(StateFromName(StateName(s)) == s);
  CHECK(StateName(JobState::kQueued) == "queued");
  CHECK(StateName(JobState::kCancelled) == "cancelled");
  CHECK_FALSE(StateFromName("zombie").has_value());
}
