// The Planner: given nodes, running jobs and pending jobs in priority order, decides which
// jobs start now and on which node, reserves a start for blocked ones, and says why each
// examined job waits. It picks nodes only; the caller picks core indices and GPU ids.
//
// One mechanism, reservation depth d (fcfs = 0, easy = 1, conservative = unlimited):
//   Every available node gets an availability profile (availability.h): its free resources
//   now plus, at each running job's expected end (start + h_rt, else + default_runtime, else
//   never; an end already past counts as 1 ms from now), what that job holds. Cluster-wide
//   consumables get one such profile too. Pending jobs are visited in the given order, at
//   most max_jobs_per_pass of them. A job
//     1. over a user or group limit waits (limits.h) and does not block others;
//     2. that no available node could ever run (features, queue, size, unknown consumable)
//        waits and does not block others;
//     3. starts now on the first node, in node order, where it fits from now for its whole
//        wall time in the node's profile and in the pool's; that window is taken from both;
//     4. else, while fewer than d reservations exist, is reserved at the earliest time (then
//        the first node in node order) where it fits for its whole wall time, and that
//        window is taken from the profiles; a job that can never be placed in time (every
//        candidate node is held by runs without limits) gets no reservation and uses none;
//     5. else, with d = 0, ends the pass: nothing passes a blocked job (FCFS); its expected
//        start is still computed for its reason;
//     6. else waits without a reservation.
//   Since every start must fit around the reservations already made, a job started behind
//   a reserved one (backfilled) never delays that reservation, as long as jobs end by their
//   wall-time limits. Node order is by name, except that a job asking for no GPU tries
//   nodes without GPUs first; starts and reservations use the same order, so re-planning
//   after jobs ran to their limits finds the same reservations again.
//
// Example (EASY, one 4-core node, job R holds 2 cores until 60 min; pending in order
// A 4 cores h_rt 30 min, B 2 cores 90 min, C 2 cores 30 min):
//   A does not fit now -> reserved at 60 min. B fits now but would hold 2 cores past 60 min,
//   when A needs all 4 -> waits. C fits now and ends by 30 min -> starts (backfilled).
//   FCFS starts nothing (A blocks); conservative also reserves B at 90 min.
//
// Cost: a pass is about O(examined x candidate nodes x profile steps) in the worst case.
// It is kept down by the max_jobs_per_pass cap, a cluster-wide "largest free now" check
// before scanning nodes, caching per job shape (request, features, queue, wall time) the
// fact that it does not fit now and its last earliest start (free resources only shrink
// during a pass, so both stay true), and bounding each node's earliest-start search by
// the best start found so far.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "policies/policy_config.h"
#include "policies/snapshot.h"

namespace corral {

struct PlanSnapshot {
  std::vector<NodeView> nodes;                // any order
  std::vector<RunningJob> running;            // every running job (limits count those on any node)
  std::vector<PendingJob> pending;            // in priority order (InPriorityOrder, priority.h)
  std::map<std::string, int64_t> pool_total;  // cluster-wide consumables, e.g. {"matlab": 10}
  std::map<std::string, int64_t> pool_free;   // not held by running jobs now
};

struct Placement {
  JobId job = 0;
  std::string node;
  TimeMs start = 0;  // now for a start; the reserved time for a reservation
  bool operator==(const Placement&) const = default;
};

struct PlanResult {
  std::vector<Placement> starts;        // jobs to start now, in priority order
  std::vector<Placement> reservations;  // blocked jobs' reserved start and node
  // Why each examined job that does not start now waits, e.g. "waiting for 2 GPUs (none of
  // 3 eligible nodes has them free); expected to start in 1h05m on node3".
  std::map<JobId, std::string> reasons;
  int examined = 0;                 // pending jobs visited (<= max_jobs_per_pass)
  std::optional<JobId> stopped_at;  // fcfs: the blocked job that ended the pass
};

class Planner {
 public:
  virtual ~Planner() = default;
  // One pass over `snapshot` at `now`. Pure: the same input gives the same result; safe to
  // call from any thread.
  virtual PlanResult Plan(const PlanSnapshot& snapshot, TimeMs now) const = 0;
};

// The planner of `policy` (planner settings, limits, queues; copied).
std::unique_ptr<Planner> MakePlanner(const Policy& policy);

// The same planner in "will run" mode, for qstat -j: every blocked job is reserved
// (unlimited depth), so each examined job gets an expected start. Its starts are a forecast,
// not to be acted on.
std::unique_ptr<Planner> MakeWillRunPlanner(const Policy& policy);

}  // namespace corral
