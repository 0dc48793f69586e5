// Every message Corral's parts exchange over ZeroMQ, defined once. A message is one
// ZeroMQ frame of JSON: {"v": 1, "type": "<wire id>", "req": "<client tag>", ...fields}.
// Type names are wire ids: never renamed, only retired. Decode never throws, bounds
// the size, and rejects unknown types, missing fields and wrong types with a Status
// naming the field. See docs/protocol.md for the field-by-field reference.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"
#include "common/types.h"

namespace corral {

inline constexpr int kProtocolVersion = 1;
inline constexpr size_t kMaxMessageBytes = 8 << 20;  // scripts are spooled inside submits
inline constexpr size_t kMaxScriptBytes = 4 << 20;
// A job's $CORRAL_RESULT: at most this many bytes are kept (a larger one is refused).
inline constexpr size_t kMaxResultBytes = 64 << 10;

// ---- clients -> scheduler ------------------------------------------------------------

struct SubmitRequest {
  static constexpr std::string_view kType = "submit";
  JobSpec spec;
};
struct SubmitReply {
  static constexpr std::string_view kType = "submitted";
  JobId id = 0;
  std::string name;
  std::vector<std::string> warnings;  // e.g. -l names the cluster does not know
  std::string tasks;  // an array's task ids as ranges ("1-1000:1", "3,7-9:1"); "" otherwise
};

// Which jobs to list. Empty `ids` and empty `user` = every job; `user` = that owner's.
// Records come in (job id, task) order, an array's own record before its tasks.
//
// Paging (docs/design.md, "Job listings"): with `limit` > 0 a reply holds at most
// `limit` records, fewer when they are large (kQueryPageBytes), starting after the cursor
// `after`; QueryReply::next, when set, is the cursor to send for the following page. Each
// page is answered from the state of that moment: a job that existed throughout is listed
// exactly once, in the state it had when its page was built. limit 0 (clients before
// paging): everything in one reply, refused (FailedPrecondition) when that would exceed
// kMaxUnpagedRecords, rather than building a reply of tens of megabytes.
struct QueryRequest {
  static constexpr std::string_view kType = "query";
  std::vector<JobId> ids;
  std::string user;
  bool include_finished = false;
  // Only units (plain jobs, array records, array tasks) in these states, by StateName;
  // empty = any state (finished ones only with include_finished).
  std::vector<std::string> states;
  bool without_tasks = false;  // only jobs' own records, no array tasks
  int64_t limit = 0;
  std::optional<UnitKey> after;
};
struct QueryReply {
  static constexpr std::string_view kType = "jobs";
  std::vector<Job> jobs;          // without their scripts
  std::vector<JobId> missing;     // asked-for ids that do not exist (or are finished, when
                                  // include_finished is false)
  std::optional<UnitKey> next;    // more to list: ask again with after = next
};
// A page of a paged query holds at most this many records, and stops once the records
// it holds reach about kQueryPageBytes encoded.
inline constexpr int64_t kMaxQueryPage = 5000;
inline constexpr size_t kQueryPageBytes = 1 << 20;
// An unpaged query (limit 0) answering more records than this is refused.
inline constexpr size_t kMaxUnpagedRecords = 20000;

// What happened to one job of a qdel / qhold / qrls.
struct JobOutcome {
  JobId id = 0;
  // "deleted" (was pending), "registered" (running; kill sent), "held", "released",
  // "not_found", "denied" (not the owner), "already" (nothing to do), "invalid" (wrong state)
  std::string outcome;
  std::string owner;

  bool operator==(const JobOutcome&) const = default;
};

// qdel: `ids`, or every active job of `user` when ids is empty.
struct CancelRequest {
  static constexpr std::string_view kType = "cancel";
  std::vector<JobId> ids;
  std::string user;
  std::optional<TaskRange> tasks;  // qdel -t: only these tasks of the arrays in `ids`
};
// qhold (hold = true) and qrls (hold = false).
struct HoldRequest {
  static constexpr std::string_view kType = "hold";
  std::vector<JobId> ids;
  bool hold = true;
};
struct OutcomeReply {
  static constexpr std::string_view kType = "outcomes";
  std::vector<JobOutcome> outcomes;
};

// Replies once every listed job has finished (or is unknown), or after timeout_ms with
// `done` false. Used by qsub -sync y instead of polling.
struct WaitRequest {
  static constexpr std::string_view kType = "wait";
  std::vector<JobId> ids;
  int64_t timeout_ms = 30000;
};
struct WaitReply {
  static constexpr std::string_view kType = "waited";
  bool done = false;
  std::vector<Job> jobs;  // final records of the finished jobs
};

struct NodesRequest {
  static constexpr std::string_view kType = "nodes";
};
struct NodesReply {
  static constexpr std::string_view kType = "node_list";
  std::vector<Node> nodes;
  std::vector<Resources> used;  // parallel to nodes: allocated to running jobs
};

// qmod -d / -e: disable (drain) or enable a node. Admins (uid 0) only. Answered with a
// NodesReply holding the changed node.
struct NodeAdminRequest {
  static constexpr std::string_view kType = "node_admin";
  std::string node;
  bool enable = true;
};

// qresub: submit a job again as a new job with the same spec. For an array with
// `failed_only`, the new array holds only the tasks that failed (same ids, same sweep
// points). Answered with a SubmitReply naming the new job.
struct ResubmitRequest {
  static constexpr std::string_view kType = "resubmit";
  JobId id = 0;
  bool failed_only = false;
};

// qstat -pri: each pending job's priority and its factors, as the last scheduling pass
// ranked them (an array: its next task). Under no policy, the list is empty and `policy`
// says "none (first come, first served)".
struct PriorityRequest {
  static constexpr std::string_view kType = "priorities";
  std::string user;  // "" = every user's jobs
};
struct JobPriority {
  JobId id = 0;
  TaskId task = 0;  // the array task that was ranked; 0 for a plain job
  std::string owner;
  std::string name;
  int rank = 0;  // 1 = considered first
  double priority = 0;
  // Each factor normalized to [0, 1], before weighting (policies/priority.h).
  double fairshare = 0, age = 0, job_size = 0, user = 0, queue = 0;
  std::string explanation;  // "priority 530.0 = fairshare 1000 x 0.50 + ..."
  bool operator==(const JobPriority&) const = default;
};
struct PriorityReply {
  static constexpr std::string_view kType = "priority_list";
  std::string policy;  // the policy file in force
  TimeMs ranked_at = 0;  // when the pass that ranked them ran
  std::vector<JobPriority> jobs;  // in rank order
};

// qshare: the share tree with decayed usage (running jobs included) and fair-share factors.
struct ShareRequest {
  static constexpr std::string_view kType = "shares";
};
struct ShareRow {
  std::string group, user;
  double shares = 0;  // the user's raw shares in its group
  double usage = 0;   // decayed usage now, core-seconds
  // Fair Tree's numbers (policies/fairshare.h); a level is +infinity when nothing was used.
  double group_share = 0, group_usage = 0, group_level = 0;
  double user_share = 0, user_usage = 0, user_level = 0;
  int rank = 0, user_count = 0;
  double factor = 0;
  std::string explanation;  // the row in words
  bool operator==(const ShareRow&) const = default;
};
struct ShareReply {
  static constexpr std::string_view kType = "share_tree";
  std::string policy;        // the policy file in force; "" = none
  int64_t half_life_s = 0;
  std::vector<ShareRow> rows;  // best served first
};

// qconf -reload: re-read the policy file now (as SIGHUP does). Admins only. An invalid
// file is refused with file:line:column and the old policy stays in force.
struct ReloadRequest {
  static constexpr std::string_view kType = "reload";
};
struct ReloadReply {
  static constexpr std::string_view kType = "reloaded";
  std::string policy;   // the file now in force
  std::string summary;  // e.g. "planner easy, 3 groups, 2 queues"
};

// qconf -audit: the latest admin actions, newest last. Admins and operators only.
struct AuditRequest {
  static constexpr std::string_view kType = "audit";
  int64_t limit = 100;
};
struct AuditEntry {
  TimeMs time = 0;
  std::string user;
  std::string action;  // "reload", "node_disable", "cancel", ...
  std::string detail;
  bool operator==(const AuditEntry&) const = default;
};
struct AuditReply {
  static constexpr std::string_view kType = "audit_log";
  std::vector<AuditEntry> entries;
};

// corral events: one change of a job's or a node's state, numbered in the order the
// scheduler committed them. Published (one frame of EncodeEvent JSON) on the scheduler's
// event endpoint after the change is on disk, and kept in SQLite for event_retention so
// that a subscriber that was away can fetch what it missed (EventsRequest).
struct Event {
  int64_t seq = 0;
  TimeMs time = 0;
  std::string kind;  // "job" or "node"
  JobId job = 0;
  TaskId task = 0;  // array task; 0 for a plain job or an array's own record
  int attempt = 0;
  std::string owner, name;
  std::string node;
  std::string from, to;  // job states ("" before submission); node: up, unreachable, ...
  std::string reason;
  std::optional<int> exit_code;
  bool operator==(const Event&) const = default;
};
// The events after `after` (at most `limit`), that the caller may see.
struct EventsRequest {
  static constexpr std::string_view kType = "events";
  int64_t after = 0;
  int64_t limit = 10000;
};
struct EventsReply {
  static constexpr std::string_view kType = "event_list";
  std::vector<Event> events;
  int64_t first_kept = 0;  // the oldest event still kept (0: none); older ones were pruned
  int64_t last = 0;        // the newest event committed
  std::string publish;     // where live events are published (a SUB socket connects here)
};

// Any request can be answered with an error instead of its reply.
struct ErrorReply {
  static constexpr std::string_view kType = "error";
  Code code = Code::kInternal;
  std::string message;
};

// ---- execd <-> scheduler -------------------------------------------------------------

struct RunningAttempt {
  JobId job_id = 0;
  int attempt = 0;
  TaskId task = 0;  // array task; 0 for a plain job
  bool operator==(const RunningAttempt&) const = default;
};

// First message of an execd, and again whenever it (re)connects.
struct RegisterNode {
  static constexpr std::string_view kType = "register";
  std::string node;
  Resources total;            // total.gpus must equal gpu_ids.size()
  std::vector<RunningAttempt> running;
  std::vector<int> gpu_ids;   // GPU indices the node offers (from config or nvidia-smi)
  std::vector<std::string> features;  // node features from its config, e.g. "avx512"
};
struct NodeRegistered {
  static constexpr std::string_view kType = "registered";
  int64_t heartbeat_interval_ms = 0;
};
struct Heartbeat {
  static constexpr std::string_view kType = "heartbeat";
  std::string node;
  std::vector<RunningAttempt> running;
  double load = 0;  // 1-minute load average of the node
};
// The end of an attempt. Resent by the execd until acknowledged by ExitAck.
struct JobExit {
  static constexpr std::string_view kType = "job_exit";
  std::string node;
  JobId job_id = 0;
  int attempt = 0;
  int exit_code = 0;    // 128+signal when killed by a signal
  int signal = 0;
  TimeMs start_time = 0;
  TimeMs end_time = 0;
  int64_t cpu_ms = 0;
  int64_t max_rss_kb = 0;
  std::string failure;  // non-empty: the job could not be started, and why
  std::string reason;   // non-empty: why the node ended it ("wall time exceeded", ...)
  TaskId task = 0;      // array task; 0 for a plain job
  std::string result;        // the JSON object the job wrote to $CORRAL_RESULT, if valid
  std::string result_error;  // why it was refused ("not a JSON object", "larger than 64 KiB")
};
struct ExitAck {
  static constexpr std::string_view kType = "exit_ack";
  JobId job_id = 0;
  int attempt = 0;
  TaskId task = 0;
};
// Order to run attempt `job.attempt` of `job` (script included).
struct StartJob {
  static constexpr std::string_view kType = "start_job";
  Job job;
};
// Order to kill the process group of an attempt.
struct KillJob {
  static constexpr std::string_view kType = "kill_job";
  JobId job_id = 0;
  int attempt = 0;
  TaskId task = 0;
};

using Message =
    std::variant<SubmitRequest, SubmitReply, QueryRequest, QueryReply, CancelRequest, HoldRequest,
                 OutcomeReply, WaitRequest, WaitReply, NodesRequest, NodesReply, NodeAdminRequest,
                 ResubmitRequest, PriorityRequest, PriorityReply, ShareRequest, ShareReply,
                 ReloadRequest, ReloadReply, AuditRequest, AuditReply, EventsRequest,
                 EventsReply, ErrorReply,
                 RegisterNode, NodeRegistered, Heartbeat, JobExit, ExitAck, StartJob, KillJob>;

// A decoded message and the client's correlation tag, echoed in the reply.
struct Envelope {
  Message message;
  std::string req;
  // A MUNGE credential for this request (tcp clients; common/munge_auth.h): the frame's
  // optional last member "cred". Encode never writes it; the client library appends it.
  std::string cred;
};

std::string Encode(const Message& message, std::string_view req = "");
Result<Envelope> Decode(std::string_view bytes);

// One event as the JSON object `corral events` prints and the event endpoint publishes.
std::string EncodeEvent(const Event& event);
Result<Event> DecodeEvent(std::string_view bytes);

// Type name of a message ("submit", ...).
std::string_view TypeName(const Message& message);

// The complete job record (script included, times in integer milliseconds): the form the
// store keeps and StartJob carries. DecodeJobRecord is as strict as Decode.
std::string EncodeJobRecord(const Job& job);
Result<Job> DecodeJobRecord(std::string_view bytes);

// JSON text of a job as documented for `qstat --json` and the wire (no script).
// Times are seconds since the epoch (number) or null.
std::string JobToJson(const Job& job, int indent = -1);

}  // namespace corral
