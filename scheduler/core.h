// The pure scheduling core: the cluster state, and the functions that turn a request
// or the passage of time into Actions. No I/O, no clock reads, no globals: the server
// (server.cc) persists the Actions (store.cc), installs them with Install(), and only
// then sends replies and orders. Tests and the simulator call these directly.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/protocol.h"
#include "common/status.h"
#include "common/types.h"
#include "policies/fairshare.h"
#include "policies/planner.h"
#include "policies/policy_config.h"
#include "policies/priority.h"
#include "scheduler/node_pool.h"

namespace corral {

// How many of an array's dispatched tasks are in each state.
struct TaskCounts {
  int64_t running = 0;
  int64_t queued = 0;  // requeued after a node failure (their ids are pending again)
  int64_t completed = 0;
  int64_t failed = 0;
  int64_t cancelled = 0;
  bool operator==(const TaskCounts&) const = default;
};

// What one scheduling pass under a policy saw and decided, kept (not persisted) so that
// qstat -pri can show the ranking and qstat -j can ask the planner in will-run mode when a
// job would start, without ranking or snapshotting again. Planner ids are index + 1 into
// `units`.
struct PolicyPass {
  TimeMs at = 0;
  std::vector<UnitKey> units;       // the candidates: plain jobs, and arrays' next tasks
  std::vector<RankedJob> ranked;    // in rank order
  PlanSnapshot plan;                // its input: pending in rank order, nodes, running
  std::vector<Placement> starts;    // what it started
  std::vector<Placement> reservations;
  // When the pass ranked only the queued jobs that could be among the best (`units` holds
  // those and the jobs every pass visits), the scorer it ranked with: qstat -pri scores
  // the rest with it, as the pass would have.
  std::shared_ptr<const PassScorer> scorer;
};

struct PolicyEngine;

// What the units running on one node hold, summed (kept by Install): a scheduling pass
// takes the node's free room from this instead of visiting every running unit.
struct NodeUse {
  Resources held;                // their requests (SpecOf), cluster-wide consumables included
  std::vector<int> core_users;   // by core index: how many of them were given it
  std::map<int, int> gpu_users;  // by GPU id: how many of them were given it
};

// A scheduling pass that found nothing to do, and what it depended on besides the state:
// the next pass is skipped while none of it has changed (decide.cc, Settled()).
struct SettledPass {
  uint64_t generation = 0;  // ClusterState::generation the pass saw
  TimeMs at = 0;
  std::shared_ptr<const PolicyEngine> policy;
  int oversubscribe = 1;
  std::map<std::string, int64_t> consumables;
};

// What ranks a queued plain job under the multifactor prioritizer besides its submit time
// and id: its owner and project (its fair-share account), request (size), queue and qsub
// -p. Jobs of one class rank oldest first (Prioritizer::ScorerByClass), so a pass takes
// only the heads it needs (ranked_queue.h).
struct RankClass {
  std::string owner;
  std::string project;
  std::string queue;
  int priority = 0;
  Resources request;
  bool operator<(const RankClass& o) const;
};

// The maps that hold every Job: std::maps whose nodes come from NodePool (huge pages; see
// node_pool.h for why).
using JobMap = std::map<JobId, Job, std::less<JobId>, NodePoolAllocator<std::pair<const JobId, Job>>>;
using TaskMap =
    std::map<UnitKey, Job, std::less<UnitKey>, NodePoolAllocator<std::pair<const UnitKey, Job>>>;

// Everything the scheduler knows. Only Install() changes it.
struct ClusterState {
  JobMap jobs;    // every job, active and finished; arrays once, as task 0
  TaskMap tasks;  // array tasks that have been dispatched (task > 0)
  std::map<std::string, Node> nodes;
  JobId next_job_id = 1;

  // Indexes derived from `jobs` and `tasks`, kept by Install(), in id order.
  std::set<JobId> queued;  // plain jobs waiting, and arrays with pending tasks
  // The same jobs split for a pass under a policy: plain jobs without dependencies by rank
  // class, each class oldest first (submit time, then id); the others (arrays, jobs with
  // dependencies), which every pass visits, by id.
  std::map<RankClass, std::set<std::pair<TimeMs, JobId>>> queued_by_class;
  std::set<JobId> queued_walked;
  std::set<JobId> held;
  std::set<UnitKey> running;  // plain jobs and array tasks
  std::map<std::string, std::set<UnitKey>> running_on;  // running units by node
  std::map<std::string, NodeUse> use_on;                 // what they hold, by node
  std::map<JobId, TaskCounts> task_counts;                // per array
  // Waiting work (queued or held) by owner, then project (qsub -P): 1 per plain job, an
  // array's pending tasks. For max_queued_jobs at submit.
  std::map<std::string, std::map<std::string, int64_t>> queued_by_owner;
  // Every job id (plain jobs and arrays, active and finished) of each owner, ascending:
  // a query of one user's jobs walks that user's ids, not the whole cluster. A sorted
  // vector (8 bytes a job) rather than a set (~48): ids only grow, so Install appends.
  std::map<std::string, std::vector<JobId>> by_owner;

  // Under a policy (CoreConfig::policy): decayed usage per account, charged as runs end,
  // and why each waiting job waits, from the last pass. Neither is persisted: usage is
  // recomputed from the job records at start (RebuildUsage), reasons by the next pass.
  UsageTable usage;
  std::map<JobId, std::string> waiting;
  // What the last pass under a policy ranked and planned (qstat -pri, qstat -j's forecast).
  std::shared_ptr<const PolicyPass> last_pass;

  // Derived, not persisted. `generation` counts the Install()s that changed what a pass
  // reads (jobs, nodes, usage); `settled`, the last pass that found nothing to do.
  uint64_t generation = 1;
  std::optional<SettledPass> settled;
};

// An admin's policy (policies/) ready to use: the prioritizer and planner it configures.
struct PolicyEngine {
  Policy policy;
  std::unique_ptr<Prioritizer> prioritizer;
  std::unique_ptr<Planner> planner;
  explicit PolicyEngine(Policy p)
      : policy(std::move(p)), prioritizer(MakePrioritizer(policy)), planner(MakePlanner(policy)) {}
};

// The job or dispatched task `key`, or null.
const Job* FindUnit(const ClusterState& state, const UnitKey& key);
// What `job` runs: its own spec, or for an array task the array's.
const JobSpec& SpecOf(const ClusterState& state, const Job& job);

// Settings the core needs (from the scheduler config).
struct CoreConfig {
  int64_t heartbeat_interval_ms = 5000;
  int64_t node_timeout_ms = 30000;
  int max_attempts = 3;  // dispatches allowed per job unless the job says otherwise
  std::map<std::string, int64_t> consumables;  // cluster-wide pool, e.g. {"matlab": 10}
  int64_t default_h_rt_s = 0;                  // for jobs that give no h_rt; 0 = none
  int64_t default_mem_per_core_mb = 0;         // for jobs that request no memory
  int oversubscribe = 1;                       // jobs that may share one core
  std::set<std::string> admins;     // act on any job, run admin commands (root always may)
  std::set<std::string> operators;  // manage nodes and any job, but not the policy
  bool private_jobs = false;        // users see only their own jobs
  // The admin's policy: priorities, fair-share, limits, backfill. Null: first come,
  // first served over the whole queue (the built-in order).
  std::shared_ptr<const PolicyEngine> policy;
};

// Who sent a client request. `uid` is set only when the kernel vouched for it (ipc://).
struct Caller {
  std::optional<uint32_t> uid;
  uint32_t gid = 0;
  std::string user;  // name of uid (resolved by the server)
  bool IsRoot() const { return uid && *uid == 0; }
};

// An order for one node's execd.
struct Order {
  std::string node;
  Message message;  // StartJob, KillJob, ExitAck, NodeRegistered or ErrorReply
};

// The effect of handling one input: records to persist and install, then messages to send.
struct Actions {
  std::vector<Job> put_jobs;    // new or changed job records (complete)
  std::vector<Node> put_nodes;  // new or changed node records
  std::optional<JobId> next_job_id;
  std::vector<std::pair<std::string, TimeMs>> seen_nodes;  // last_seen updates, not persisted
  std::vector<std::pair<std::string, double>> node_loads;  // load averages, not persisted
  // Runs that ended under a policy, to charge to their accounts' usage (not persisted).
  struct Charge {
    Account account;
    double rate = 0;
    TimeMs from = 0, to = 0;
    int64_t half_life_s = 0;
  };
  std::vector<Charge> charges;
  std::optional<std::map<JobId, std::string>> waiting;  // replaces ClusterState::waiting
  std::shared_ptr<const PolicyPass> pass;                // replaces ClusterState::last_pass
  std::optional<SettledPass> settled;                    // replaces ClusterState::settled
  std::vector<AuditEntry> audit;                         // admin actions, persisted
  std::vector<Event> events;  // numbered by the server (events.h), persisted, then published
  std::vector<Order> orders;

  bool Persistent() const {
    return !put_jobs.empty() || !put_nodes.empty() || next_job_id || !audit.empty() ||
           !events.empty();
  }
  void Append(Actions&& other);
};

struct Outcome {
  std::optional<Message> reply;  // to the client or node that sent the input
  Actions actions;
};

// A client request (submit, query, cancel, hold, nodes, node_admin). WaitRequest is not handled here:
// the server parks it and answers from IsFinished().
Outcome HandleClient(const ClusterState& state, const Message& request, const Caller& caller,
                     const CoreConfig& config, TimeMs now);

// A message from the execd of `node` (register, heartbeat, job_exit).
Outcome HandleNode(const ClusterState& state, const Message& message, const CoreConfig& config,
                   TimeMs now);

// The periodic and event-driven decision: mark silent nodes unreachable and requeue
// their jobs, then start queued jobs first come, first served where they fit (or under
// config.policy). When the last pass found nothing to do and nothing it depends on has
// changed since (ClusterState::settled), returns no actions at once: the same result.
Actions Decide(const ClusterState& state, const CoreConfig& config, TimeMs now);

// Applies records and node sightings to the state and its indexes. Orders are ignored.
void Install(ClusterState& state, const Actions& actions);

// Rebuilds the indexes of a state loaded from the store.
void Reindex(ClusterState& state);

// True when the job (an array: every task) has reached a final state or does not exist.
bool IsFinished(const ClusterState& state, JobId id);

// Charges every finished run in `state` to its account under `config.policy` (at start,
// after Store::Load): usage is derived from the job records rather than stored.
void RebuildUsage(ClusterState& state, const CoreConfig& config);

// Decayed usage per account at `now` under `config.policy`: the ended runs' (state.usage)
// plus what running units have used so far.
UsageTable UsageNow(const ClusterState& state, const CoreConfig& config, TimeMs now);

// Resources allocated to running jobs, per node name.
std::map<std::string, Resources> UsedByNode(const ClusterState& state);

}  // namespace corral
