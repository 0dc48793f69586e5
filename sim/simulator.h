// The virtual-time event loop: replays jobs through the policy engine's Prioritizer and
// Planner (policies/), the same objects the scheduler builds from the same Policy. The loop
// only keeps the books (who is queued, running, where, until when); every decision of what
// starts is the Planner's. No clock reads, no I/O.
//
// Events. A job arrives at its submit time and completes at start + run time. At one
// timestamp all arrivals are applied and a scheduling pass runs, then all completions and
// another pass (the reference simulators' "arrivals before completions"); with
// `arrivals_first = false` both are applied before a single pass.
//
// A pass. The loop keeps one PlanSnapshot up to date (node free cores, running jobs with
// their estimates as h_rt, pending jobs in priority order) instead of rebuilding it, and
// calls Planner::Plan(snapshot, now); each start it returns is applied. Priority order:
// when the policy's priority is static (fair-share and age weights 0: the factors then
// depend on the job alone), each arrival is ranked once by the Prioritizer and merged into
// place; otherwise every pass re-ranks all pending jobs, with the fair-share usage the
// scheduler core would have: each run charged (ChargeRun) to its account when it ends. A
// pass is skipped when no node has as many free cores as the smallest pending job: the
// Planner could start nothing, and it keeps no state between passes, so the result is the
// same.
//
// Also as the scheduler: a job over the policy's max_queued_jobs at its arrival is refused
// (CheckQueuedLimit) and never runs; a job's group is AccountGroup(policy, user, SWF group).
// Not modelled: queues (every job is queue-less), memory, GPUs, node failures.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "policies/fairshare.h"
#include "policies/policy_config.h"
#include "sim/workload.h"

namespace corral::sim {

struct SimOptions {
  bool arrivals_first = true;    // see above
  bool record_timeline = false;  // fill SimResult::timeline (for --plot)
};

// What happened to one job. Times in seconds from the trace's time 0.
struct JobOutcome {
  int64_t start_s = -1;  // -1: never started
  int64_t end_s = -1;
  int node = -1;         // index of the node it ran on
  bool refused = false;  // over max_queued_jobs at arrival
  bool Ran() const { return start_s >= 0; }
};

// The machine after the events of one timestamp (after its passes).
struct TimelinePoint {
  int64_t t_s = 0;
  int64_t busy = 0;    // processors held by running jobs
  int64_t queued = 0;  // pending jobs
};

struct SimStats {
  int64_t events = 0;          // distinct event timestamps
  int64_t passes = 0;          // Planner::Plan calls
  int64_t passes_skipped = 0;  // passes proven to start nothing (see above)
  int64_t examined = 0;        // pending jobs the planner visited, summed over passes
  int64_t max_queued = 0;
  int64_t refused = 0;
  int64_t never_started = 0;  // still pending when no event is left
};

struct SimResult {
  std::vector<JobOutcome> jobs;  // parallel to the input jobs
  std::vector<TimelinePoint> timeline;
  std::vector<std::string> accounts;  // parallel to the input jobs: the fair-share group
  // The planner's reason for the first few jobs that never started ("user limit: ...").
  std::map<int64_t, std::string> stuck;  // SWF job number -> reason
  SimStats stats;
};

// Replays `jobs` (sorted by submit time; InvalidArgument otherwise, or for a job that does
// not fit a node) on `machine` under `policy`. The policy is used as it is: its planner
// kind, reservation depth and max_jobs_per_pass (see ReferencePolicy for the reference
// runs). Deterministic.
Result<SimResult> Simulate(const std::vector<SimJob>& jobs, const Machine& machine,
                           const Policy& policy, const SimOptions& options = {});

// The policy of the published FCFS / EASY / conservative results: the default Policy
// (arrival order, no fair-share, no limits) with the given planner and no cap on the jobs
// one pass examines (the cap would otherwise stop EASY from looking at every queued job).
Policy ReferencePolicy(PlannerKind kind);

// Sets the planner of `policy` to `kind` with its preset depth (0, 1, unlimited).
void SetPlanner(Policy& policy, PlannerKind kind);

}  // namespace corral::sim
