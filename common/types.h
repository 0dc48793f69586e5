// The records Corral's parts agree on: what a job asks for (JobSpec), a job as the
// scheduler tracks it (Job), and a node (Node). Plain data, no I/O handles; the
// scheduler core, the store, the protocol and the tools all use these.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/rare.h"
#include "common/job_state.h"
#include "common/task_ranges.h"

namespace corral {

using JobId = int64_t;  // positive, assigned by the scheduler, never reused

// Countable resources of a request or a node. `consumables` holds admin-defined counts
// by name (node-local ones such as scratch_gb, cluster-wide ones such as matlab licenses);
// a name missing from a map counts as 0.
struct Resources {
  // A constructor rather than aggregate initialization: GCC 12 warns (falsely) that the
  // map of a brace-initialized {cores, mem} may be used uninitialized.
  Resources(int cores_ = 0, int64_t mem_mb_ = 0, int gpus_ = 0)
      : cores(cores_), mem_mb(mem_mb_), gpus(gpus_) {}

  int cores = 0;       // CPU cores (Grid Engine "slots")
  int64_t mem_mb = 0;  // memory in MiB; in a request, 0 means "no memory request"
  int gpus = 0;        // GPUs
  std::map<std::string, int64_t> consumables;

  int64_t Consumable(const std::string& name) const {
    auto it = consumables.find(name);
    return it == consumables.end() ? 0 : it->second;
  }
  // True when every count of this request is within `free` (consumables included).
  bool Fits(const Resources& free) const;
  Resources& operator+=(const Resources& o);
  Resources& operator-=(const Resources& o);
  bool operator==(const Resources&) const = default;
};

// What the user asked for at submit time. Immutable once accepted.
struct JobSpec {
  std::string name;                // -N, or the script's basename, or "STDIN"
  std::string script;              // the spooled script text (empty with `binary`)
  bool binary = false;             // -b y: args[0] is a command run directly
  Rare<std::vector<std::string>> args;  // script arguments, or command + arguments with `binary`
  Rare<std::string> shell;         // -S: interpreter; empty = honour the script's #! line
  std::string cwd;                 // absolute working directory on the node
  Rare<std::string> stdout_path;   // -o: file or directory; empty = default NAME.oID in cwd
  Rare<std::string> stderr_path;   // -e: likewise NAME.eID
  bool join = false;               // -j y: stderr into the stdout file
  Rare<std::map<std::string, std::string>> env;  // -V / -v variables, and SGE_O_* from the submit host
  Resources request{1, 0};         // cores (slots) and total memory of the job
  int64_t h_rt_s = 0;              // wall-clock limit in seconds; 0 = none
  bool hold = false;               // -h: submit in the held state
  Rare<std::string> queue;         // -q, recorded
  Rare<std::string> project;       // -P / -A, recorded
  Rare<std::map<std::string, std::string>> other_resources;  // -l names Corral does not know, recorded
  bool rerunnable = true;          // -r y|n: may run again after its node failed
  int max_attempts = 0;            // --max-attempts: dispatches allowed; 0 = scheduler default
  int priority = 0;                // -p, -1023..1024; above 0 only when an admin or operator submits
  std::vector<std::string> features;  // node features required (-l arch=avx512, -l bigmem)
  // Arrays (-t): the task ids; each task runs the same script with SGE_TASK_ID set.
  std::optional<TaskRange> array;
  int max_running_tasks = 0;        // -tc: tasks of this array running at once; 0 = no cap
  // Sweeps (--sweep): task i gets the parameter point sweep[i-1], a JSON object.
  Rare<std::vector<std::string>> sweep;
  // Dependencies: start only after these jobs end (any way; -hold_jid), end with exit 0
  // (--after-ok), or fail (--after-notok). A dependency that can no longer be met
  // cancels the job. after_tasks (-hold_jid_ad): task i waits for task i of those arrays.
  Rare<std::vector<JobId>> after_any;
  Rare<std::vector<JobId>> after_ok;
  Rare<std::vector<JobId>> after_notok;
  Rare<std::vector<JobId>> after_tasks;

  bool operator==(const JobSpec&) const = default;
};

// One dispatch of a job to a node. A job's attempts are numbered from 1.
struct Attempt {
  int number = 0;
  std::string node;
  TimeMs start_time = 0;
  TimeMs end_time = 0;      // 0 while it runs
  std::string exit_reason;  // "exited with code 0", "killed by signal 9", "node failed", ...

  bool operator==(const Attempt&) const = default;
};

// A job as the scheduler tracks it. Only the core changes `state`, and only via Next().
// An array job is one Job (task 0) holding the spec and the ids still pending; each task
// that has been dispatched is a Job of its own with the same id, `task` set and an empty
// spec (the array's applies).
struct Job {
  JobId id = 0;
  TaskId task = 0;       // array task id; 0 for a plain job and for an array itself
  TaskRanges pending;    // array: task ids not yet dispatched (or requeued)
  JobSpec spec;
  uint32_t uid = 0;   // owner, from the kernel's peer credentials
  uint32_t gid = 0;
  std::string owner;  // user name of uid at submit time
  JobState state = JobState::kQueued;
  int attempt = 0;    // number of dispatches so far; the running attempt when running
  std::string node;   // node of the current or last attempt
  TimeMs submit_time = 0;
  TimeMs start_time = 0;  // start of the current or last attempt
  TimeMs end_time = 0;
  std::optional<int> exit_code;  // set once the job has ended (128+signal for a signal)
  int exit_signal = 0;           // signal that ended the job, 0 if none
  int64_t cpu_ms = 0;            // user + system CPU time of the last attempt
  int64_t max_rss_kb = 0;        // peak resident set of the last attempt
  Rare<std::string> reason;      // why the job failed or was cancelled; empty otherwise
  bool cancel_requested = false; // qdel of a running job: kill sent, exit not yet seen
  std::vector<Attempt> attempts; // every dispatch, oldest first; the last is the current one
  // What the current attempt was given on its node: core indices 0..cores-1 of the node
  // (the execd maps them onto its own CPU list) and GPU ids from the node's gpu_ids.
  // Empty unless running; a restarted scheduler rebuilds every node's allocation from these.
  std::vector<int> alloc_cores;
  std::vector<int> alloc_gpus;
  Rare<std::string> params;  // task of a sweep: its parameter point (JSON object)
  Rare<std::string> result;  // what the job wrote to $CORRAL_RESULT (JSON object), if valid
  Rare<std::string> result_error;  // why a $CORRAL_RESULT was refused ("invalid JSON", "too large")

  bool IsArray() const { return spec.array.has_value(); }
  bool operator==(const Job&) const = default;
};

// What the scheduler dispatches: a plain job (task 0) or one task of an array.
struct UnitKey {
  JobId job = 0;
  TaskId task = 0;
  auto operator<=>(const UnitKey&) const = default;
};
inline UnitKey KeyOf(const Job& job) { return {job.id, job.task}; }
// "42" or "42.7", as Grid Engine names a task.
std::string UnitName(const UnitKey& key);

enum class NodeState { kUp, kUnreachable };

struct Node {
  std::string name;
  Resources total;       // what the node offers (total.gpus == gpu_ids.size())
  NodeState state = NodeState::kUp;
  TimeMs last_seen = 0;  // last message from the node's execd
  bool enabled = true;   // false after `qmod -d`: running jobs finish, no new ones start
  std::vector<int> gpu_ids;  // the GPU indices it offers, e.g. {0, 1, 2, 3}
  std::vector<std::string> features;  // e.g. {"avx512", "bigmem"}, sorted
  double load = 0;  // 1-minute load average from the last heartbeat; not persisted

  bool operator==(const Node&) const = default;
};

std::string_view NodeStateName(NodeState state);  // "up", "unreachable"
// What qhost shows: "unreachable"; for a node disabled by qmod -d, "draining" while jobs
// still run there and "down" once none do; else "up".
std::string_view NodeDisplayState(const Node& node, int running_cores);
std::optional<NodeState> NodeStateFromName(std::string_view name);

}  // namespace corral
