// The one place that reads real time. A CTest (tests/no_real_time.sh) checks that
// no other source file calls the system clock or sleeps.
#include "common/clock.h"

#include <ctime>

namespace corral {
namespace {
TimeMs Read(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<TimeMs>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}
}  // namespace

TimeMs SystemClock::Now() const { return Read(CLOCK_REALTIME); }

TimeMs MonotonicNowMs() { return Read(CLOCK_MONOTONIC); }

}  // namespace corral
