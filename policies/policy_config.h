// The admin's policy file (policy.yaml) as plain structs, and its strict loader.
// Holds data only: fairshare.h, priority.h, limits.h, queues.h and planner.h interpret it.
// A default-constructed Policy is what runs without a file: first come, first served, no
// fair-share, no limits, everyone equal (only `qsub -p` lowers a job behind its peers).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace corral {

// Users who appear in no group of the share tree are charged to, and ranked in, this group.
// Declare it in the tree to give it shares; undeclared it has 1 share and exists only while
// someone is in it.
inline constexpr char kDefaultGroup[] = "default";

// One group (project, account) of the share tree.
struct ShareGroup {
  double shares = 1;                    // weight among the groups; >= 0
  std::map<std::string, double> users;  // user name -> shares within this group; >= 0
  bool operator==(const ShareGroup&) const = default;
};

// How usage is measured and how the cluster is shared (fairshare.h has the formula).
struct FairSharePolicy {
  int64_t half_life_s = 7 * 24 * 3600;  // usage halves every half_life; > 0
  // A job's usage rate is cores + gpu_weight * GPUs + mem_weight * GiB of memory, so that
  // usage is measured in "core-seconds" whatever a job holds.
  double gpu_weight = 1;
  double mem_weight = 0;
  double default_shares = 1;  // shares of a user listed in no group (placed in kDefaultGroup)
  std::map<std::string, ShareGroup> groups;  // the share tree: groups -> users
  bool operator==(const FairSharePolicy&) const = default;
};

// Priority = sum of weight * factor, each factor normalized to [0, 1] (priority.h).
struct PriorityWeights {
  double fairshare = 0;
  double age = 0;
  int64_t age_cap_s = 7 * 24 * 3600;  // a job waiting this long has age factor 1; > 0
  double job_size = 0;
  bool favor_small = false;  // job_size factor is 1 - size instead of size
  double user = 1000;        // qsub -p
  double queue = 0;          // the queue's priority
  bool operator==(const PriorityWeights&) const = default;
};

// Caps on what one user or group may hold; absent = no cap.
struct Limits {
  std::optional<int64_t> max_running_jobs;
  std::optional<int64_t> max_cores;        // cores held by running jobs
  std::optional<int64_t> max_gpus;         // GPUs held by running jobs
  std::optional<int64_t> max_queued_jobs;  // checked at submit (limits.h CheckQueuedLimit)
  bool operator==(const Limits&) const = default;
};

struct LimitsPolicy {
  Limits default_user;                   // each key applies to users that do not set it
  std::map<std::string, Limits> users;   // by user name
  std::map<std::string, Limits> groups;  // by share-tree group name
  bool operator==(const LimitsPolicy&) const = default;
};

// A queue: a set of nodes with run-time bounds, submit defaults and a priority (queues.h).
struct QueuePolicy {
  std::string name;
  std::vector<std::string> hosts;     // nodes by name (sorted); or
  std::vector<std::string> features;  // nodes having all these features (sorted); neither = all
  int64_t max_h_rt_s = 0;             // longest h_rt accepted; 0 = no maximum
  int64_t default_h_rt_s = 0;         // h_rt of a job that gives none; 0 = none
  std::optional<int> default_cores;   // defaults of a job that does not ask (queues.h)
  std::optional<int64_t> default_mem_mb;
  std::optional<int> default_gpus;
  int64_t priority = 0;  // >= 0; the queue factor is priority / the largest queue priority
  bool operator==(const QueuePolicy&) const = default;
};

enum class PlannerKind { kFcfs, kEasy, kConservative };

// A reservation depth meaning "every blocked job" (conservative backfill).
inline constexpr int kUnlimitedDepth = std::numeric_limits<int>::max();

// One planner for all three presets; they differ only in reservation depth (planner.h).
struct PlannerPolicy {
  PlannerKind kind = PlannerKind::kFcfs;
  int reservation_depth = 0;     // fcfs 0, easy 1 (or as set), conservative kUnlimitedDepth
  int max_jobs_per_pass = 1000;  // pending jobs one pass examines, in priority order; > 0
  // Assumed run time of a job without h_rt when planning (not enforced); 0 = unknown, such a
  // job is assumed to run forever, so nothing can be reserved behind it.
  int64_t default_runtime_s = 0;
  bool operator==(const PlannerPolicy&) const = default;
};

struct Policy {
  std::string origin;  // the file it was read from; empty for the built-in default
  FairSharePolicy fairshare;
  PriorityWeights priority;
  LimitsPolicy limits;
  std::map<std::string, QueuePolicy> queues;  // by name
  std::string default_queue;                  // queue of jobs submitted without -q; "" = none
  PlannerPolicy planner;
  bool operator==(const Policy&) const = default;
};

// Parses policy YAML. Strict: an unknown key, a wrong type, a negative share or weight, a
// queue naming both hosts and features, ... is an InvalidArgument whose message starts
// with "ORIGIN:LINE:COLUMN: KEY.PATH: ". Missing keys keep the defaults above; an empty
// document is the default Policy. Never throws.
Result<Policy> ParsePolicy(const std::string& yaml, const std::string& origin);

// The same from a file; NotFound when it cannot be read.
Result<Policy> LoadPolicy(const std::string& path);

std::string_view PlannerKindName(PlannerKind kind);  // "fcfs", "easy", "conservative"

}  // namespace corral
