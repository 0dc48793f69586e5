// Free resources over time, for the planner: a step function from `now` on, for one node or
// for the cluster-wide consumables pool. Running jobs' expected ends add steps (all at once,
// sorted, by the planner; or one Release at a time); starts and reservations subtract
// windows (Take). Internal to the planner, exposed for its tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/types.h"

namespace corral::planning {

// A time that never comes: the end of a run without a wall-time limit, "no fit found".
inline constexpr TimeMs kNever = std::numeric_limits<TimeMs>::max();

// The counts the planner compares. Consumables are indexed by a name table the planner
// builds once per pass; a missing index counts as 0.
struct Amounts {
  int64_t cores = 0;
  int64_t mem_mb = 0;
  int64_t gpus = 0;
  std::vector<int64_t> extra;

  // True when every count of `need` is within this.
  bool Covers(const Amounts& need) const;
  bool IsZero() const;     // no count above 0
  bool IsNothing() const;  // every count is 0
  void Add(const Amounts& o);
  void Sub(const Amounts& o);
  bool operator==(const Amounts&) const = default;
};

// Consumable name -> index into Amounts::extra; built once per pass.
using NameTable = std::map<std::string, size_t>;

// Fills `out` from counts by name (`out`'s other counts untouched). A name missing from
// `table` is dropped; but when `unknown` is given and its count is positive, the name is
// stored there and the result is false.
bool ToAmounts(const std::map<std::string, int64_t>& counts, const NameTable& table, Amounts& out,
               std::string* unknown = nullptr);
// The same for cores, memory, GPUs and the node-local consumables of `r`.
bool ToAmounts(const Resources& r, const NameTable& table, Amounts& out,
               std::string* unknown = nullptr);

// start + duration, saturating at kNever (and kNever for a kNever duration).
TimeMs EndOf(TimeMs start, int64_t duration_ms);

// What comes back at a time: a running job's expected end and what it holds (not owned).
struct Freed {
  TimeMs at = 0;
  const Amounts* amount = nullptr;
};

class Availability {
 public:
  Availability() : Availability(0, {}) {}
  Availability(TimeMs now, Amounts free_now);
  // The profile that Release(r.at, *r.amount) for each of `releases`, in any order, gives
  // (the same free amounts at every instant), built in O(k log k) rather than O(k x steps):
  // `releases` is sorted by time and summed as it goes. Releases of nothing add no step
  // (such a step changes no answer: every query reads the free amounts, not the steps).
  Availability(TimeMs now, Amounts free_now, std::vector<Freed>& releases);

  // `amount` comes back at `at` (> now): a running job's expected end. Call before any Take.
  void Release(TimeMs at, const Amounts& amount);
  // Subtracts `need` on [from, to); `to` may be kNever. The caller checked that it fits.
  void Take(const Amounts& need, TimeMs from, TimeMs to);

  const Amounts& Now() const { return steps_.front().free; }
  // True when `need` fits at every instant of [from, to).
  bool FitsDuring(const Amounts& need, TimeMs from, TimeMs to) const;
  // The earliest t in [from, before) at which `need` fits for [t, EndOf(t, duration_ms)), or
  // kNever. Linear in the steps after `from`.
  TimeMs EarliestFit(const Amounts& need, int64_t duration_ms, TimeMs from, TimeMs before) const;

  size_t StepCount() const { return steps_.size(); }
  // Free amounts at time t (t >= now).
  const Amounts& At(TimeMs t) const { return steps_[IndexAt(t)].free; }

 private:
  struct Step {
    TimeMs t;
    Amounts free;  // from t until the next step
  };
  size_t IndexAt(TimeMs t) const;  // the last step starting at or before t
  size_t Split(TimeMs t);          // makes a step start at t; returns its index

  std::vector<Step> steps_;  // steps_[0].t == now; times strictly increasing
};

}  // namespace corral::planning
