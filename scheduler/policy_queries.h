// Read-only questions about the policy, answered from the cluster state and the last
// scheduling pass (ClusterState::last_pass): qstat -pri, qshare, and qstat -j's forecast
// of when a waiting job will start. Pure, like the rest of the core.
#pragma once

#include <string>

#include "common/protocol.h"
#include "scheduler/core.h"

namespace corral {

// qstat -pri: the pending units the last pass ranked, in rank order, that are still
// waiting and that `caller` may see (of `req.user` only, when set).
PriorityReply Priorities(const ClusterState& state, const PriorityRequest& req,
                         const Caller& caller, const CoreConfig& config);

// qshare: the Fair Tree now, with running jobs' usage so far included.
ShareReply Shares(const ClusterState& state, const CoreConfig& config, TimeMs now);

// "expected to start in 1h05m on node3 (forecast: every job ends by its h_rt)" for a
// waiting job, from the planner in will-run mode over the last pass's snapshot; "" when
// there is no policy or pass, the job was not among its candidates, or no start can be
// forecast.
std::string Forecast(const ClusterState& state, const CoreConfig& config, JobId job, TimeMs now);

}  // namespace corral
