// The figures of a simulation, by the formulas the published results use
// (../shared/traces/README.md, docs/simulator.md):
//   wait         w = start - submit
//   response     r = w + run
//   bounded slowdown (tau = 10 s)   bsld = max((w + run) / max(run, tau), 1)
//   utilization  U = sum(run * size) / (P * (max end - min submit))
//   makespan     max end - min submit
// over the jobs that ran. Means may leave out a warm-up: the first `warmup_percent` % of the
// jobs to terminate (by end time, then job order), as Tsafrir et al. do for KTH. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policies/policy_config.h"
#include "sim/simulator.h"
#include "sim/workload.h"

namespace corral::sim {

inline constexpr int64_t kBsldTauS = 10;

// max((wait + run) / max(run, tau), 1).
double BoundedSlowdown(int64_t wait_s, int64_t run_s, int64_t tau_s = kBsldTauS);

struct Metrics {
  int64_t jobs = 0;      // jobs that ran
  int64_t averaged = 0;  // of which in the means (after the warm-up)
  double mean_wait_s = 0;
  double mean_response_s = 0;
  double mean_bsld = 0;
  int64_t max_wait_s = 0;
  double utilization = 0;  // in [0, 1]
  int64_t makespan_s = 0;
  int64_t first_submit_s = 0;
  int64_t last_end_s = 0;
  double core_seconds = 0;  // sum of run * size
};

// `outcomes` is parallel to `jobs`; jobs that did not run are left out. `procs` is P.
Metrics ComputeMetrics(const std::vector<SimJob>& jobs, const std::vector<JobOutcome>& outcomes,
                       int64_t procs, double warmup_percent = 0);

// One user's use of the machine against what the policy's share tree gives it.
struct UserShare {
  std::string user;
  std::string group;  // fair-share account group (AccountGroup)
  int64_t jobs = 0;   // jobs that ran
  double core_seconds = 0;
  double share = 0;   // core_seconds / all users' core-seconds
  double target = 0;  // group share x user share within the group (Fair Tree's S values)
  double mean_wait_s = 0;
};

// Per user, most usage first (ties by user name). Targets come from FairTree over the
// policy's tree and every account that ran; each user's target is the product of its
// group's and its own normalized shares (1/N each without a policy file).
std::vector<UserShare> UserShares(const std::vector<SimJob>& jobs, const SimResult& result,
                                  const Policy& policy);

}  // namespace corral::sim
