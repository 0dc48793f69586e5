// Time as Corral sees it: milliseconds since the Unix epoch, read through a Clock.
// clock.cc is the only file that reads the real clock; everything else takes `now`
// or a Clock& so that tests and the simulator control time.
#pragma once

#include <cstdint>

namespace corral {

using TimeMs = int64_t;  // milliseconds since 1970-01-01T00:00:00Z; 0 means "not set"

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimeMs Now() const = 0;
};

// The real wall clock (CLOCK_REALTIME).
class SystemClock final : public Clock {
 public:
  TimeMs Now() const override;
};

// Monotonic milliseconds (CLOCK_MONOTONIC), for deadlines and timeouts in the shells.
TimeMs MonotonicNowMs();

}  // namespace corral
