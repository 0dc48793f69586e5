// Per-user and per-group limits of the policy: what applies to whom, whether a job may start
// under them (the planner asks), and whether a user may queue another job (submit asks).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "common/types.h"
#include "policies/policy_config.h"

namespace corral {

// What a user or group holds or has queued now.
struct LimitCounts {
  int64_t running_jobs = 0;
  int64_t cores = 0;  // held by running jobs
  int64_t gpus = 0;
  int64_t queued_jobs = 0;
  bool operator==(const LimitCounts&) const = default;
};

// The limits of `user`: its own entry, each key it leaves out taken from default_user.
Limits UserLimits(const LimitsPolicy& limits, const std::string& user);

// Why a job of `user` in `group` needing `request` may not start now, e.g.
// "user limit: max_running_jobs=4 reached (4 running)" or "group physics limit: max_gpus=8
// (6 in use, job needs 4)"; empty when it may. The user's limits are checked first.
std::string RunLimitReason(const LimitsPolicy& limits, const std::string& user,
                           const std::string& group, const LimitCounts& user_now,
                           const LimitCounts& group_now, const Resources& request);

// True when some user or group limit of `limits` can keep a job from starting
// (max_running_jobs, max_cores or max_gpus); when false RunLimitReason is always empty.
bool AnyRunLimit(const LimitsPolicy& limits);

// At submit: FailedPrecondition naming the limit when the user (or group) already has
// max_queued_jobs queued (held jobs count), OK otherwise.
Status CheckQueuedLimit(const LimitsPolicy& limits, const std::string& user,
                        const std::string& group, const LimitCounts& user_now,
                        const LimitCounts& group_now);

}  // namespace corral
