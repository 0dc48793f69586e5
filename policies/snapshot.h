// The read-only records the policy engine is handed: pending jobs, running jobs, nodes.
// Plain data built by the caller (the scheduler core, the trace simulator, a test) from its
// own state for one pass; the engine keeps no pointer into them after the call returns.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/types.h"

namespace corral {

// A queued job as the prioritizer and the planner see it.
struct PendingJob {
  JobId id = 0;
  std::string user;
  // Share-tree group charged for the job and used for group limits; the caller resolves it
  // once with AccountGroup() (fairshare.h). A group not in the tree counts as kDefaultGroup.
  std::string group;
  TimeMs submit_time = 0;
  Resources request;  // what the job needs on its node: cores, memory, GPUs, node consumables
  std::map<std::string, int64_t> cluster_request;  // cluster-wide consumables, e.g. licenses
  std::vector<std::string> features;               // node features required
  int64_t h_rt_s = 0;                              // wall-time limit in seconds; 0 = none
  std::string queue;                               // "" = no queue: any node, queue factor 0
  // qsub -p, -1023..1024. Positive values are honoured only when priority_set_by_admin (the
  // submit path sets it for root/operators); otherwise the prioritizer clamps them to 0.
  int user_priority = 0;
  bool priority_set_by_admin = false;
};

// A running job as the planner sees it: what it holds, where, and until when.
struct RunningJob {
  JobId id = 0;
  std::string user;
  std::string group;  // as for PendingJob::group
  std::string node;
  Resources alloc;                               // held on `node`
  std::map<std::string, int64_t> cluster_alloc;  // cluster-wide consumables held
  TimeMs start_time = 0;
  int64_t h_rt_s = 0;  // 0 = none: PlannerPolicy::default_runtime_s, or forever, is assumed
};

// A node as the planner sees it.
struct NodeView {
  std::string name;
  Resources total;                    // capacity (what the node could ever offer one job)
  Resources free;                     // not held by running jobs now
  std::vector<std::string> features;  // sorted
  bool available = true;  // false: unreachable or disabled; nothing new starts or is reserved
};

}  // namespace corral
