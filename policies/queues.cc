// Queue membership of nodes and the submit-time queue defaults.
#include "policies/queues.h"

#include <algorithm>

#include "common/units.h"

namespace corral {

bool QueueHasNode(const QueuePolicy& queue, const std::string& node,
                  const std::vector<std::string>& features) {
  if (!queue.hosts.empty()) {
    return std::binary_search(queue.hosts.begin(), queue.hosts.end(), node);
  }
  return std::includes(features.begin(), features.end(), queue.features.begin(),
                       queue.features.end());
}

Status ApplyQueue(const Policy& policy, JobSpec& spec) {
  if (spec.queue.empty()) spec.queue = policy.default_queue;
  if (spec.queue.empty()) return OkStatus();
  auto it = policy.queues.find(spec.queue);
  if (it == policy.queues.end()) {
    std::string known;
    for (const auto& [name, _] : policy.queues) known += (known.empty() ? "" : ", ") + name;
    return Error(Code::kInvalidArgument, "no queue '" + spec.queue + "'" +
                                             (known.empty() ? "" : " (queues: " + known + ")"));
  }
  const QueuePolicy& q = it->second;
  if (spec.h_rt_s == 0) spec.h_rt_s = q.default_h_rt_s;
  if (q.max_h_rt_s > 0 && spec.h_rt_s > q.max_h_rt_s) {
    return Error(Code::kInvalidArgument, "h_rt " + FormatDuration(spec.h_rt_s) + " exceeds queue " +
                                             q.name + "'s max_h_rt " +
                                             FormatDuration(q.max_h_rt_s));
  }
  if (q.default_cores && spec.request.cores <= 1) spec.request.cores = *q.default_cores;
  if (q.default_mem_mb && spec.request.mem_mb == 0) spec.request.mem_mb = *q.default_mem_mb;
  if (q.default_gpus && spec.request.gpus == 0) spec.request.gpus = *q.default_gpus;
  return OkStatus();
}

}  // namespace corral
