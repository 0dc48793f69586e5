// Waiting for a launcher's attempt to end, for the unit tests that run real jobs through
// it (launcher, shepherd, spawner, memory limit and GPU fence tests).
#pragma once

#include <poll.h>

#include <cstdint>
#include <optional>

#include "common/clock.h"
#include "execd/launcher.h"

namespace corral {

// Far above what any of those tests' jobs needs: only a failing test waits this long.
inline constexpr int64_t kAttemptEndDeadlineMs = 15000;

// Reaps `launcher` until the attempt `key` has ended and returns its end, or nullopt
// after kAttemptEndDeadlineMs. Other attempts' ends reaped meanwhile are dropped.
inline std::optional<AttemptEnd> WaitForEnd(Launcher& launcher, const AttemptKey& key) {
  const TimeMs deadline = MonotonicNowMs() + kAttemptEndDeadlineMs;
  while (true) {
    for (const AttemptEnd& end : launcher.Reap()) {
      if (end.key == key) return end;
    }
    if (MonotonicNowMs() >= deadline) return std::nullopt;
    poll(nullptr, 0, 2);
  }
}

}  // namespace corral
