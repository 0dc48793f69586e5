// The availability profile built in one go from sorted releases (the planner's way) against
// the same profile built by one Release() per running job: on random releases (equal times,
// ends at or before now, never, releases of nothing, consumables) and random reservations
// taken from both, every answer the planner asks for must be the same.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "policies/availability.h"

using namespace corral;
using planning::Amounts;
using planning::Availability;
using planning::kNever;

namespace {

constexpr TimeMs kNow = 1'000'000;

Amounts RandomAmounts(std::mt19937_64& rng, int64_t scale) {
  Amounts a;
  a.cores = static_cast<int64_t>(rng() % static_cast<uint64_t>(scale + 1));
  a.mem_mb = rng() % 3 == 0 ? 0 : static_cast<int64_t>(rng() % 4096);
  a.gpus = rng() % 4 == 0 ? static_cast<int64_t>(rng() % 3) : 0;
  const size_t extra = rng() % 3;  // 0, 1 or 2 consumables, sometimes all 0
  for (size_t i = 0; i < extra; ++i) a.extra.push_back(static_cast<int64_t>(rng() % 3));
  if (rng() % 5 == 0) a = Amounts{0, 0, 0, std::vector<int64_t>(extra, 0)};  // releases nothing
  return a;
}

// Free amounts as a value: a missing consumable counts as 0, so trailing zeros do not matter.
std::vector<int64_t> Key(const Amounts& a) {
  std::vector<int64_t> k = {a.cores, a.mem_mb, a.gpus};
  k.insert(k.end(), a.extra.begin(), a.extra.end());
  while (k.size() > 3 && k.back() == 0) k.pop_back();
  return k;
}

}  // namespace

TEST_CASE("policy availability: built from sorted releases = built one Release at a time") {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    CAPTURE(seed);
    std::mt19937_64 rng(seed);
    const Amounts free_now = RandomAmounts(rng, 8);
    std::vector<Amounts> held(rng() % 40);
    std::vector<planning::Freed> releases;
    Availability one_by_one(kNow, free_now);
    std::set<TimeMs> times = {kNow};
    for (Amounts& a : held) {
      a = RandomAmounts(rng, 4);
      TimeMs at = kNow + static_cast<TimeMs>(rng() % 12) * 100;  // many equal ends, some = now
      if (rng() % 10 == 0) at = kNow - static_cast<TimeMs>(rng() % 500);  // overdue
      if (rng() % 10 == 0) at = kNever;                                  // no limit
      releases.push_back({at, &a});
      one_by_one.Release(at, a);
      if (at != kNever) times.insert(at);
    }
    Availability sorted(kNow, free_now, releases);
    // Reservations and starts, taken from both the same way.
    for (int k = rng() % 6; k > 0; --k) {
      const Amounts need{static_cast<int64_t>(rng() % 3), 0, 0, {}};
      const TimeMs from = kNow + static_cast<TimeMs>(rng() % 1500);
      const TimeMs to = rng() % 4 == 0 ? kNever : from + static_cast<TimeMs>(rng() % 800);
      one_by_one.Take(need, from, to);
      sorted.Take(need, from, to);
      times.insert(from);
      if (to != kNever) times.insert(to);
    }
    CHECK(Key(sorted.Now()) == Key(one_by_one.Now()));
    for (TimeMs t : times) {
      for (TimeMs probe : {t - 1, t, t + 1}) {
        if (probe < kNow) continue;
        CHECK(Key(sorted.At(probe)) == Key(one_by_one.At(probe)));
      }
    }
    for (int q = 0; q < 40; ++q) {
      const Amounts need{static_cast<int64_t>(rng() % 12), static_cast<int64_t>(rng() % 2048),
                         static_cast<int64_t>(rng() % 2),
                         rng() % 3 == 0 ? std::vector<int64_t>{static_cast<int64_t>(rng() % 3)}
                                        : std::vector<int64_t>{}};
      const int64_t duration = rng() % 5 == 0 ? kNever : static_cast<int64_t>(1 + rng() % 900);
      const TimeMs from = kNow + static_cast<TimeMs>(rng() % 1300);
      const TimeMs before = rng() % 3 == 0 ? kNow + static_cast<TimeMs>(rng() % 1500) : kNever;
      CAPTURE(q);
      CHECK(sorted.EarliestFit(need, duration, from, before) ==
            one_by_one.EarliestFit(need, duration, from, before));
      const TimeMs to = planning::EndOf(from, duration);
      CHECK(sorted.FitsDuring(need, from, to) == one_by_one.FitsDuring(need, from, to));
    }
  }
}

TEST_CASE("policy availability: a release of nothing adds no step; overdue ones count now") {
  const Amounts nothing{0, 0, 0, {0, 0}}, two{2, 0, 0, {}};
  std::vector<planning::Freed> releases = {{kNow + 50, &two}, {kNow + 10, &nothing},
                                           {kNow - 5, &two}, {kNever, &two}};
  Availability a(kNow, Amounts{1, 0, 0, {}}, releases);
  CHECK(a.StepCount() == 2);
  CHECK(a.Now().cores == 3);
  CHECK(a.At(kNow + 49).cores == 3);
  CHECK(a.At(kNow + 50).cores == 5);
}
