// Starting, killing and reaping job attempts on this node. `Launcher` is the seam the agent
// calls; `PosixLauncher` runs each attempt under a per-job shepherd (execd/shepherd.h) that
// outlives the execd, and re-attaches to the spool's attempts after a restart (Recover).
// Also the pure Grid Engine rules it applies: output paths and the job's environment.
#pragma once

#include <sys/types.h>

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/types.h"
#include "execd/gpu_fence.h"

namespace corral {

// What a node runs: one attempt of one job.
struct AttemptKey {
  JobId job_id = 0;
  int attempt = 0;
  TaskId task = 0;  // array task; 0 for a plain job
  auto operator<=>(const AttemptKey&) const = default;
};

// "42.1" (job 42, attempt 1) or "42.7.1" (task 7 of array 42, attempt 1), for logs and
// spool directory names.
std::string AttemptName(const AttemptKey& key);

// How an attempt ended, as its shepherd recorded it (or as the launcher found it lost).
struct AttemptEnd {
  AttemptKey key;
  int exit_code = 0;       // exit status, or 128 + signal when killed by a signal
  int signal = 0;          // the signal that ended it, 0 if it exited
  int64_t cpu_ms = 0;      // user + system CPU of the process and its reaped descendants
  int64_t max_rss_kb = 0;  // ru_maxrss
  TimeMs start_time = 0;   // when the shepherd started it; 0 = unknown
  TimeMs end_time = 0;     // when the shepherd saw it end; 0 = unknown
  std::string failure;     // non-empty: it never ran (start failure) or was lost, and why
  std::string reason;      // why it was ended, when not by itself ("wall time exceeded")
  std::string result;        // what the job wrote to $CORRAL_RESULT: a JSON object, compact
  std::string result_error;  // why that was refused ("not a JSON object", "larger than ...")
};

// The spool as an earlier execd left it: attempts whose shepherd still runs (re-attached:
// their ends come from Reap like any other), and attempts that ended meanwhile (exit file
// found, or lost: the shepherd died without one; their spool directories stay until Release).
struct Recovery {
  std::vector<AttemptKey> running;
  std::vector<AttemptEnd> ended;
};

// Starts and stops attempts. Single-threaded: every call comes from the agent's loop.
class Launcher {
 public:
  virtual ~Launcher() = default;
  // Starts `job.attempt` of `job`. Returns a pid (the shepherd's) once the job's process
  // exists (PosixLauncher waits for its shepherd to report the job's pgid, a fork away).
  // PosixLauncher binds the job to the CPUs its job.alloc_cores map onto (none: unbound).
  // An error when it could not even be handed to a shepherd (an owner it may not run
  // (PermissionDenied, see CheckJobOwner), spool, unknown user, fork, invalid core indices);
  // failures of the job's own start (chdir, exec, ...) come later from Reap, with `failure`.
  virtual Result<pid_t> Launch(const Job& job) = 0;
  // SIGKILL to the attempt's process group; its end then comes from Reap. False if it does
  // not run here.
  virtual bool Kill(const AttemptKey& key) = 0;
  // Collects attempts that have ended, without blocking.
  virtual std::vector<AttemptEnd> Reap() = 0;
  // Attempts started (or re-attached) and not yet reaped.
  virtual size_t RunningCount() const = 0;
  // The scheduler has recorded the attempt's end: its spooled files may go.
  virtual Status Release(const AttemptKey& key) = 0;
};

// Who the job runs as, for its environment and output paths.
struct JobUser {
  std::string name;  // empty when unknown
  std::string home;
  std::string shell;
};

// A process as recorded on disk: a pid alone could since belong to another process.
struct ProcessId {
  pid_t pid = 0;
  uint64_t start_ticks = 0;  // field 22 of /proc/PID/stat: clock ticks after boot
  std::string boot_id;       // /proc/sys/kernel/random/boot_id: the ticks count from this boot
  bool operator==(const ProcessId&) const = default;
};

// Host facts that go into paths and the environment.
struct JobHost {
  std::string node;      // Corral's node name (CORRAL_NODE)
  std::string hostname;  // gethostname (HOSTNAME, $HOSTNAME)
};

// The job's working directory: spec.cwd, else the user's home (Grid Engine without -cwd),
// else "/".
std::string JobWorkingDirectory(const Job& job, const JobUser& user);

// Grid Engine's rules for -o / -e: `requested` empty means <cwd>/<name>.<kind><id>; a
// "host:" prefix (a part before the first ':' without '/') is dropped; $JOB_ID, $JOB_NAME,
// $HOME, $USER, $HOSTNAME and $TASK_ID ("undefined") are expanded; a relative path is taken
// from the working directory; a path ending in '/' or naming a directory (`is_directory`)
// gets <name>.<kind><id> appended. `kind` is 'o' or 'e'. Pure apart from `is_directory`.
std::string ResolveOutputPath(const std::string& requested, char kind, const Job& job,
                              const JobUser& user, const JobHost& host,
                              const std::function<bool(const std::string&)>& is_directory);

// Where one attempt's output goes and where its private files live.
struct JobFiles {
  std::string stdout_path;
  std::string stderr_path;  // equals stdout_path when spec.join
  std::string tmpdir;       // SPOOL/jobs/<id>.<attempt>/tmp
  std::string params;       // SPOOL/jobs/<id>.<attempt>/params.json, for sweep tasks ("" if none)
  std::string result;       // SPOOL/jobs/<id>.<attempt>/result.json ($CORRAL_RESULT)
};

// The job's environment: spec.env (what qsub -V / -v and SGE_O_* carried), then the
// variables Grid Engine always sets (HOME USER LOGNAME SHELL PATH JOB_ID JOB_NAME NSLOTS
// NHOSTS NQUEUES QUEUE HOSTNAME SGE_TASK_* ENVIRONMENT TMPDIR REQUEST SGE_STDOUT_PATH
// SGE_STDERR_PATH), Corral's (CORRAL_JOB_ID CORRAL_NODE CORRAL_ATTEMPT) and the allocation's,
// which override the submit environment: OMP_NUM_THREADS (allocated cores, else requested
// ones), CORRAL_CORES (job.alloc_cores), CORRAL_CPUS (`bound_cpus`, the real CPUs the job is
// bound to; empty when unbound), CUDA_VISIBLE_DEVICES and CORRAL_GPUS (job.alloc_gpus; ""
// for none, so that CUDA sees no device) and CUDA_DEVICE_ORDER=PCI_BUS_ID (the ids are
// nvidia-smi's, which CUDA only shares in PCI order). Lists are comma-separated. Pure.
std::map<std::string, std::string> BuildJobEnvironment(const Job& job, const JobUser& user,
                                                       const JobHost& host, const JobFiles& files,
                                                       const std::vector<int>& bound_cpus);

// How a job's memory request (spec.request.mem_mb, MiB for the whole job) is enforced.
// kCgroupV1/kCgroupV2: a cgroup per attempt under `cgroup_parent` with a hard limit, which the
// job joins before exec (so all its descendants count); the kernel OOM-kills it at the limit.
// kSample: the shepherd sums the RSS of the job's process group every ~150 ms and SIGKILLs the
// group on excess (processes that leave the group escape it). kNone: requests are not enforced.
// Either way a job killed for it ends with reason "memory exceeded".
enum class MemoryMechanism { kNone, kSample, kCgroupV1, kCgroupV2 };

struct MemoryEnforcement {
  MemoryMechanism mechanism = MemoryMechanism::kSample;
  std::string cgroup_parent;  // kCgroup*: job cgroups are <cgroup_parent>/<id>.<attempt>
  std::string description;    // for the log: "cgroup v1 memory controller at ..."
};

// The path of this process's cgroup in the hierarchy whose controller list contains
// `controller` ("" = the v2 hierarchy, "0::/path"), from /proc/self/cgroup text; used for
// the memory cgroups here and the devices cgroup of the GPU fence (gpu_fence.cc).
std::optional<std::string> OwnCgroup(std::string_view proc_self_cgroup, std::string_view controller);

// Finds the best mechanism that works here: `wanted` is "auto" (cgroup v2, else v1, else
// sampling), "cgroup" (v2 or v1, else an error), "sample" or "none". For cgroups the parent
// <mount>/<this process's own memory cgroup>/corral/<node> is created (root only). Touches
// /proc/self/cgroup and the cgroup file systems; InvalidArgument for an unknown `wanted`,
// Unavailable when "cgroup" was asked for and none is usable.
Result<MemoryEnforcement> DetectMemoryEnforcement(std::string_view wanted, const std::string& node);

struct LauncherOptions {
  std::string spool_dir;  // attempts get SPOOL/jobs/<id>.<attempt>/ (see execd/spool.h)
  JobHost host;
  int64_t kill_grace_ms = 5000;  // wall-clock limit: SIGTERM, then SIGKILL this much later
  const Clock* clock = nullptr;  // stamps start/end times in shepherds; null = SystemClock
  // CPU ids that core index i of job.alloc_cores maps onto (MapCoresToCpus in
  // execd/inventory.h); empty = AllowedCpus() read at Create.
  std::vector<int> cpus;
  MemoryEnforcement memory;  // default: sampling (DetectMemoryEnforcement picks the best)
  GpuFencing gpus;           // default: CUDA_VISIBLE_DEVICES only (see DetectGpuFencing)
  // Whether a launcher running as root runs jobs of uid 0 (as root). The daemon's default
  // is false (ExecdConfig::allow_root_jobs, set from the config); true here so that a
  // launcher embedded in a test runs the jobs of whoever runs the test.
  bool allow_root_jobs = true;
  // The corral-spawner binary to exec as the spawner (the execd: SpawnerBesideSelf()), whose
  // shepherds use the system clock, so `clock` must then be null. Opened once by Create:
  // every spawner the launcher starts runs that file, even once the path names another.
  // Empty: the spawner is a fork of this process, sharing `clock` (a launcher embedded in a
  // test).
  std::string spawner_program;
  // Where the launcher reports a death of its spawner and the start of a new one; null:
  // stderr.
  std::function<void(const std::string&)> log;
};

// Whether this execd may run `job` at all, given the user it runs as (`execd_uid`, named
// `execd_user` in the message; "" if unknown). As root (execd_uid 0): every owner but uid 0,
// which needs `allow_root_jobs`. Otherwise only jobs of execd_uid itself: an unprivileged
// execd cannot switch users, and running a job as someone else would give the submitter
// that account. PermissionDenied with a message for the job's owner ("refused: ..."). Pure.
Status CheckJobOwner(const Job& job, uid_t execd_uid, const std::string& execd_user,
                     bool allow_root_jobs);

class Spawner;
struct ShepherdExit;
struct ShepherdPlan;

// Each attempt runs under its own shepherd (a fork of the spawner in a new session), which
// starts the job in its own process group and writes the outcome to the spool. As root, the
// job runs as its owner: uid, gid and supplementary groups from the node's passwd and group
// databases (resolved here, before fork), set in the job child before it opens its output
// files or execs, so that it can reach only what its owner can. Without root, only jobs
// of the execd's own user run (CheckJobOwner). The spool keeps the execd's records (0600)
// apart from the few files a job reads, which belong to its owner (see execd/spool.h).
// The shepherds are forked by the launcher's spawner (execd/spawner.h), a small process
// started once by Create, which reaps them and reports their exits on a socket (WatchFds);
// those of an earlier execd, or of a spawner that died, are watched through pidfds. A dead
// spawner is noticed (Reap, Launch), logged, and replaced at the next Launch; no attempt
// is lost with it. Destroying the launcher ends the spawner and leaves every attempt
// running. Not copyable: it tracks processes.
class PosixLauncher final : public Launcher {
 public:
  // Creates SPOOL/jobs if needed (mode 0711: jobs reach their own attempt's files by name but
  // list nothing); a relative spool_dir is made absolute; starts the spawner (without a
  // spawner_program, a fork of this process: call it before this process starts threads, so
  // that the spawner stays small). InvalidArgument when the spool is not this process's own
  // (owned by another user, writable by group or others, searchable by no one when running
  // as root) or both a clock and a spawner_program are given, Internal when the spool cannot
  // be created, Unavailable when the spawner cannot be started.
  static Result<std::unique_ptr<PosixLauncher>> Create(LauncherOptions options);
  ~PosixLauncher() override;

  // Scans SPOOL/jobs once, before the first Launch: attempts whose shepherd still runs (the
  // same process as recorded in shepherd.pid) are re-attached; attempts with an exit file
  // are returned as ended; the rest are returned as lost (exit code 1, failure "lost: ...")
  // after their job's process group is killed if its leader is still the recorded one.
  // Internal when SPOOL/jobs cannot be read.
  Result<Recovery> Recover();

  Result<pid_t> Launch(const Job& job) override;
  bool Kill(const AttemptKey& key) override;
  std::vector<AttemptEnd> Reap() override;
  size_t RunningCount() const override { return running_.size(); }
  Status Release(const AttemptKey& key) override;

  // Descriptors that become readable when a shepherd exits (the spawner's socket, the pidfds
  // of re-attached shepherds) or the spawner dies: poll them with the loop's other sockets
  // and call Reap when one is. Owned by the launcher; the set changes after Launch and Reap.
  std::vector<int> WatchFds() const;
  // True when some re-attached shepherd has no pidfd (a kernel before 5.3): then call
  // Reap every few hundred milliseconds.
  bool NeedsPolling() const;
  // True when an end is already known and no descriptor of WatchFds will say so: an exit
  // the spawner reported while Launch waited for its answer (read with it, or applied
  // before it), or an end found outside Reap. Call Reap without waiting.
  bool ReapDue() const;
  // The spawner's pid (0 when none runs), for logs and tests.
  pid_t SpawnerPid() const;

  PosixLauncher(const PosixLauncher&) = delete;
  PosixLauncher& operator=(const PosixLauncher&) = delete;

 private:
  struct Tracked {
    pid_t shepherd = 0;
    bool child = true;    // forked by the current spawner, which reports its exit; false when
                          // re-attached (from the spool, or after the spawner's death)
    bool exited = false;  // child: the spawner reaped it, with wait status `status`
    int status = 0;
    int pidfd = -1;      // re-attached: readable once the shepherd has exited
    pid_t job_pgid = 0;  // 0 until known (then read from job.pgid on demand)
    ProcessId identity;  // re-attached: tells the shepherd from a later owner of its pid
  };

  PosixLauncher(LauncherOptions options, std::string self_name);
  // The end of an attempt whose shepherd has exited: its exit file, else "lost".
  AttemptEnd Collect(const AttemptKey& key, const std::string& how);
  // Takes over `key` from what the spool says: its shepherd still runs (tracked through a
  // pidfd: kRunning), or it has ended (its end appended to `ended`: kEnded). Without an exit
  // file or a shepherd.pid it is lost, or with !missing_is_lost kNothing (never started).
  enum class Adopted { kRunning, kEnded, kNothing };
  Adopted Adopt(const AttemptKey& key, bool missing_is_lost, std::vector<AttemptEnd>& ended);
  // Hands a prepared plan to the spawner (a new one if it died) and tracks the shepherd.
  Result<pid_t> StartShepherd(const ShepherdPlan& plan);
  Status EnsureSpawner();
  // The spawner is gone: applies the exits it reported, reaps it, adopts its running
  // shepherds through the spool and logs it. `why`: what the caller saw, if anything.
  void OnSpawnerDeath(const std::string& why);
  // Marks the current spawner's children that it reaped, in the order reported.
  void ApplyExits(const std::vector<ShepherdExit>& exits);
  void Log(const std::string& line) const;

  LauncherOptions options_;
  std::string self_name_;  // the user this process runs as, for CheckJobOwner's messages
  std::map<AttemptKey, Tracked> running_;
  std::unique_ptr<Spawner> spawner_;
  int spawner_program_fd_ = -1;  // options_.spawner_program, opened once by Create
  std::vector<AttemptEnd> ended_;  // ends found outside Reap (spawner death), for the next Reap
};

// SIGKILLs the process group of every job still running under a shepherd of `spool_dir`
// (as recorded there), for tearing a node down for good (`corral local down`, tests) once
// its execd has stopped. Each shepherd then records the kill and exits. Returns how many.
int KillSpooledJobs(const std::string& spool_dir);

}  // namespace corral
