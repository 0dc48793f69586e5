// Queues of the policy: which nodes a queue covers, and the submit-time step that puts a job
// in its queue (default queue, default h_rt and resources, the queue's h_rt maximum).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "policies/policy_config.h"

namespace corral {

// True when `queue` covers a node named `node` with sorted `features`: listed in hosts, or
// having every feature of the queue, or the queue names neither.
bool QueueHasNode(const QueuePolicy& queue, const std::string& node,
                  const std::vector<std::string>& features);

// Submit-time: puts `spec` in its queue and fills the queue's defaults. A job without -q
// goes to policy.default_queue (if any). Fields still at their "not asked" value get the
// queue's default: h_rt_s 0, request.mem_mb 0, request.gpus 0, request.cores <= 1 (JobSpec
// cannot tell an explicit 1 core or 0 GPUs from none, so those get the default too).
// InvalidArgument for an unknown queue or an h_rt above the queue's max_h_rt.
Status ApplyQueue(const Policy& policy, JobSpec& spec);

}  // namespace corral
