// The per-attempt shepherd: a forked (never exec'd) copy of the spawner (execd/spawner.h:
// corral-spawner, a small static program the execd starts) that starts one job in its own
// process group, waits for it, enforces its wall-clock limit and leaves the outcome
// in the attempt's exit file. It runs in a session of its own and outlives the execd.
// What to run is decided before fork (PosixLauncher::Launch); nothing here decides policy.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "execd/gpu_fence.h"
#include "execd/launcher.h"
#include "execd/spool.h"

namespace corral {

// How to start the job's process, fully prepared before fork.
struct JobPlan {
  // setgroups(groups), setgid(gid), setuid(uid) before the output files and exec (the execd
  // runs as root). Everything is resolved before fork: the child asks no NSS database.
  bool switch_user = false;
  std::string login;  // the owner's name, for messages
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (getgrouplist of login and gid)
  std::string cwd;
  std::string stdout_path;
  std::string stderr_path;
  bool join = false;
  bool search_path = false;          // execvp in the job's PATH (binary jobs, -S shell)
  std::vector<std::string> argv;     // argv[0] is the file to exec
  std::vector<std::string> sh_argv;  // for a script without #!: /bin/sh script args...
  std::vector<std::string> env;      // "NAME=value"
  std::vector<int> cpus;             // sched_setaffinity to exactly these CPU ids; empty = inherit
};

struct ShepherdPlan {
  AttemptKey key;
  AttemptPaths paths;
  JobPlan job;
  int64_t h_rt_ms = 0;           // wall-clock limit from the job's start; 0 = none
  int64_t kill_grace_ms = 5000;  // at the limit: SIGTERM, then SIGKILL this much later
  const Clock* clock = nullptr;  // stamps start_time / end_time; required
  int64_t mem_limit_bytes = 0;   // the job's memory limit; 0 = none
  MemoryMechanism memory = MemoryMechanism::kNone;  // how mem_limit_bytes is enforced
  std::string cgroup_dir;        // kCgroup*: the attempt's cgroup, created by the shepherd
  int64_t sample_interval_ms = 150;  // kSample: how often the group's RSS is summed
  GpuFencePlan gpu_fence;            // the attempt's devices cgroup; empty cgroup_dir = none
};

// Sets every signal's disposition to the default but SIGPIPE's, ignored: what a shepherd
// starts from. The spawner calls it once at its start (its shepherds inherit the result).
void ResetSignalDispositions();

// Call only in the child of fork() of a process whose signal dispositions are those
// ResetSignalDispositions sets (the spawner); never returns. In order: clears the signal
// mask, setsid(), keeps only `report_fd` (moved to fd 3) and /dev/null on 0-2,
// writes shepherd.pid and starts the job child: a vfork-style clone that shares the
// shepherd's memory until exec (the shepherd waits meanwhile), so that no page tables are
// copied. The child makes its own process group, writes job.pgid and sends its pgid (one
// pid_t) on `report_fd` first, then does everything JobPlan says and execs; the shepherd
// closes `report_fd` once the child has exec'd or failed.
// With a memory limit in a cgroup mechanism, the shepherd creates `cgroup_dir` with the limit
// before the child and the child joins it right after its report (a cgroup that cannot be
// set up falls back to sampling); at the end the cgroup is emptied, checked for an OOM kill
// and removed. A job killed for its memory gets reason "memory exceeded".
// With a GPU fence (gpu_fence.cgroup_dir), the shepherd creates that devices cgroup with its
// deny rules before the child and the child joins it next (before setuid and exec); a
// fence that cannot be set up fails the attempt ("cannot create the GPU devices cgroup ...")
// rather than run the job unfenced. At the end what is left in it is killed and it is removed.
// With switch_user, the job child then takes the owner's groups, gid and uid, checks that
// root cannot be regained (setuid(0) must fail) and makes itself undumpable until exec (it is
// still a copy of the spawner's memory, which holds the plan); only then does it chdir, open its output files (so
// they are created, truncated and followed through symlinks with the owner's rights alone)
// and exec. The shepherd stays root but outside the job's process group and session.
// It waits for the job (SIGTERM to its group at h_rt, SIGKILL after the grace period),
// SIGKILLs whatever is left in the group, writes the exit file (fsync'd) and exits 0 (1 if
// the exit file could not be written). A job that could not start (chdir, exec, ...) gets
// an exit file with `failure` and exit_code 1; EOF on `report_fd` without a pgid means that
// no job process was ever created.
[[noreturn]] void RunShepherd(ShepherdPlan& plan, int report_fd);

}  // namespace corral
