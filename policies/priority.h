// The Prioritizer: ranks pending jobs, knowing nothing of nodes. One implementation, the
// multifactor one built from a Policy:
//     priority = w_fairshare * fairshare + w_age * age + w_size * size + w_user * user
//              + w_queue * queue
// with every factor in [0, 1]:
//     fairshare  the owner's Fair Tree factor (fairshare.h)
//     age        min(1, (now - submit) / age_cap)
//     size       rate(request) / rate(cluster total), the usage rate of fairshare.h (so a GPU
//                weighs gpu_weight cores); 1 - that with favor_small
//     user       (p + 1023) / 2047 for qsub -p p; p > 0 only when set by an admin (else 0)
//     queue      the queue's priority / the largest queue priority (0 without queues)
// Ties break by job id, oldest first. Example: weights fairshare 1000, age 100 (cap 1 day),
// user 10; a job of a user with factor 0.5, waiting 6 h, -p 0: 500 + 25 + 5.0 = 530.0.
//
// Why a virtual interface: a reload builds a new Prioritizer from the validated Policy and
// swaps it in at a tick boundary, and the simulator or a test can drop in another ranking;
// an object (not a bare std::function) can also hold what it precomputed from the policy.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/types.h"
#include "policies/fairshare.h"
#include "policies/policy_config.h"
#include "policies/snapshot.h"

namespace corral {

// What ranking looks at, for one pass.
struct PrioritySnapshot {
  std::vector<PendingJob> pending;  // any order
  UsageTable usage;                 // decayed usage per account (the caller charges it)
  Resources cluster_total;          // sum of all nodes' totals, for the size factor
  // Accounts {group, user} that have pending jobs besides those in `pending`: a caller that
  // hands over only the jobs that can rank among the best (PassScorer) names the owners of
  // the others here, so that fair-share sees the same active users.
  std::set<Account> also_active;
};

// Each factor normalized to [0, 1] (before weighting).
struct PriorityFactors {
  double fairshare = 0;
  double age = 0;
  double job_size = 0;
  double user = 0;
  double queue = 0;
};

struct RankedJob {
  JobId id = 0;
  double priority = 0;
  PriorityFactors factors;
};

// One pass's ranking of single jobs: what is computed once per pass (fair-share factors of
// the active accounts, the cluster's size) is held, and Score() gives any pending job its
// priority and factors exactly as Rank would (same numbers, bit for bit).
class PassScorer {
 public:
  virtual ~PassScorer() = default;
  // `job` as Rank would rank it (its id copied). An account that was not active when the
  // scorer was made gets fair-share factor 0.
  virtual RankedJob Score(const PendingJob& job) const = 0;
};

class Prioritizer {
 public:
  virtual ~Prioritizer() = default;
  // The pending jobs ordered by priority (highest first, then job id ascending: see
  // RankedBefore), each with its factors. Pure: same snapshot and `now`, same answer; safe
  // to call from any thread.
  virtual std::vector<RankedJob> Rank(const PrioritySnapshot& snapshot, TimeMs now) const = 0;

  // The same jobs, but only the first `best` in that order (the same first `best` as
  // Rank's); the rest follow in no particular order. For a caller that visits only the
  // best few (the planner's max_jobs_per_pass): it spares sorting the whole queue. This
  // default sorts them all.
  virtual std::vector<RankedJob> RankBest(const PrioritySnapshot& snapshot, TimeMs now,
                                          size_t best) const {
    (void)best;
    return Rank(snapshot, now);
  }

  // A scorer for one pass with the snapshot's usage and cluster total, and active accounts
  // those of `snapshot.pending` and `snapshot.also_active`, at `now`; or null. Non-null
  // promises what a caller that keeps pending jobs in classes relies on: two jobs alike in
  // everything but id and submit time (user, group, request, queue, qsub -p) rank by submit
  // time, the earlier one no lower (priority non-increasing in submit time), so each class
  // ranks in (submit time, id) order and only its head can be the next best. The default
  // gives no such promise.
  virtual std::unique_ptr<const PassScorer> ScorerByClass(const PrioritySnapshot& snapshot,
                                                          TimeMs now) const {
    (void)snapshot;
    (void)now;
    return nullptr;
  }
};

// The ranking order: higher priority first, then lower job id. A strict total order over
// jobs with distinct ids, so every sort of the same jobs agrees.
inline bool RankedBefore(const RankedJob& a, const RankedJob& b) {
  return a.priority != b.priority ? a.priority > b.priority : a.id < b.id;
}

// The multifactor prioritizer for `policy` (copied; the object owns what it needs).
std::unique_ptr<Prioritizer> MakePrioritizer(const Policy& policy);

// "priority 530.0 = fairshare 1000 x 0.50 + age 100 x 0.25 + user 10 x 0.50" (factors with
// weight 0 are left out), for qstat -pri and qstat -j.
std::string DescribePriority(const RankedJob& job, const PriorityWeights& weights);

// `pending` reordered as `ranked` (jobs not in `ranked` are dropped): the planner's input.
std::vector<PendingJob> InPriorityOrder(std::vector<PendingJob> pending,
                                        const std::vector<RankedJob>& ranked);

}  // namespace corral
