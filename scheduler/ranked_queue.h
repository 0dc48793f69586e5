// The queue as a scheduling pass under a policy ranks it. Install keeps the queued plain
// jobs without dependencies in rank classes (ClusterState::queued_by_class: alike in all
// that ranks them but submit time and id), each class oldest first. Under a prioritizer
// that promises a class ranks in that order (Prioritizer::ScorerByClass), the best jobs of
// the whole queue are found by merging the classes' heads: a pass scores only the classes
// and the jobs that can be among the first max_jobs_per_pass, not the whole queue.
//
// Example: classes A (alice, 1 core) and B (bob, 8 cores), best 2. Heads A1 530.0 and
// B1 520.0: A1 is taken, A's next head A2 525.0 is scored; A2 is taken (2 taken, the 2nd
// at 525.0); B1 at 520.0 is below it, and so is everything behind it: done, 3 jobs scored.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "scheduler/core.h"

namespace corral {

// Adds (sign +1) or removes (-1) queued job `job` (task 0) to the state's
// queued_by_class or, an array or a job with dependencies, queued_walked.
void IndexRanked(ClusterState& state, const Job& job, int sign);

// A pending unit as the policy engine sees it: `owner_job` gives its owner and submit time
// (an array task has its array's), `spec` the rest, `group` its share-tree group
// (AccountGroup, resolved by the caller).
PendingJob PendingView(const Job& owner_job, const JobSpec& spec, const std::string& group,
                       const CoreConfig& config);

// The jobs of queued_by_class that can be among the first `best` of them in rank order
// under `scorer`: every one that ranks above the `best`-th and every one tied with it (a
// tie breaks by position in the queue, which the caller decides), so the first `best` of
// the whole queue in rank order are among them. `view` gives a job's PendingJob (called
// once per class; the class's other jobs differ only in id and submit time). At most
// best + ties + classes jobs are scored.
std::vector<JobId> BestOfClasses(const ClusterState& state, const PassScorer& scorer, size_t best,
                                 const std::function<PendingJob(const Job&)>& view);

}  // namespace corral
