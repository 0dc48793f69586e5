// Starting, killing and reaping job attempts on this node. `Launcher` is the seam the agent
// calls (a per-job shepherd can replace it later); `PosixLauncher` forks and execs directly.
// Also the pure Grid Engine rules it applies: output paths and the job's environment.
#pragma once

#include <sys/types.h>

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/types.h"

namespace corral {

// What a node runs: one attempt of one job.
struct AttemptKey {
  JobId job_id = 0;
  int attempt = 0;
  auto operator<=>(const AttemptKey&) const = default;
};

// "42.1", for logs and spool directory names.
std::string AttemptName(const AttemptKey& key);

// How an attempt's process ended, as wait4 reported it.
struct AttemptEnd {
  AttemptKey key;
  int exit_code = 0;       // exit status, or 128 + signal when killed by a signal
  int signal = 0;          // the signal that ended it, 0 if it exited
  int64_t cpu_ms = 0;      // user + system CPU of the process and its reaped descendants
  int64_t max_rss_kb = 0;  // ru_maxrss
};

// Starts and stops attempts. Single-threaded: every call comes from the agent's loop.
class Launcher {
 public:
  virtual ~Launcher() = default;
  // Starts `job.attempt` of `job`. Returns the pid once the job's program has been exec'd;
  // an error when it could not start, its message saying why ("cannot chdir to /x: ...").
  // A failed start leaves no process behind.
  virtual Result<pid_t> Launch(const Job& job) = 0;
  // SIGKILL to the attempt's whole process group. False if it does not run here.
  virtual bool Kill(const AttemptKey& key) = 0;
  // Collects attempts whose process has ended, without blocking.
  virtual std::vector<AttemptEnd> Reap() = 0;
  // Attempts started and not yet reaped.
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
};

// The job's environment: spec.env (what qsub -V / -v and SGE_O_* carried), then the
// variables Grid Engine always sets (HOME USER LOGNAME SHELL PATH JOB_ID JOB_NAME NSLOTS
// NHOSTS NQUEUES QUEUE HOSTNAME SGE_TASK_* ENVIRONMENT TMPDIR REQUEST SGE_STDOUT_PATH
// SGE_STDERR_PATH) and Corral's (CORRAL_JOB_ID CORRAL_NODE CORRAL_ATTEMPT). Pure.
std::map<std::string, std::string> BuildJobEnvironment(const Job& job, const JobUser& user,
                                                       const JobHost& host, const JobFiles& files);

struct LauncherOptions {
  std::string spool_dir;  // attempts get SPOOL/jobs/<id>.<attempt>/{script,tmp}
  JobHost host;
};

// fork/exec in a new session per attempt (its pgid is its pid), setuid to the job's owner
// when the execd runs as root, reaped with wait4. Not copyable: it owns child processes.
class PosixLauncher final : public Launcher {
 public:
  // Creates SPOOL/jobs if needed. InvalidArgument/Internal when the spool is unusable.
  static Result<std::unique_ptr<PosixLauncher>> Create(LauncherOptions options);

  // Removes attempt directories left in SPOOL/jobs by an earlier execd (their attempts
  // are requeued by the scheduler when this node registers). Returns how many went.
  Result<int> RemoveLeftovers();

  Result<pid_t> Launch(const Job& job) override;
  bool Kill(const AttemptKey& key) override;
  std::vector<AttemptEnd> Reap() override;
  size_t RunningCount() const override { return running_.size(); }
  Status Release(const AttemptKey& key) override;

  PosixLauncher(const PosixLauncher&) = delete;
  PosixLauncher& operator=(const PosixLauncher&) = delete;

 private:
  explicit PosixLauncher(LauncherOptions options) : options_(std::move(options)) {}
  std::string AttemptDir(const AttemptKey& key) const;

  LauncherOptions options_;
  std::map<AttemptKey, pid_t> running_;  // pid == pgid: each attempt leads its own session
};

}  // namespace corral
