// RunShepherd and the job child it forks. Both run after fork() in a copy of the execd (which
// has ZeroMQ threads): the only locks they may take are malloc's, which glibc resets in the
// child. Failures to start the job travel from the job child through a close-on-exec pipe
// (EOF without data means exec succeeded) into the exit file.
#include "execd/shepherd.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>

extern char** environ;

namespace corral {
namespace {

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Writes "<what><arg>: <strerror(err)>" to the status pipe and ends the job child. The
// shepherd turns the text into the attempt's start failure.
[[noreturn]] void ChildFail(int status_fd, const char* what, const char* arg, int err) {
  char buf[2048];
  const int n = std::snprintf(buf, sizeof(buf), "%s%s: %s", what, arg, std::strerror(err));
  if (n > 0) {
    const size_t len = std::min(static_cast<size_t>(n), sizeof(buf) - 1);
    ssize_t ignored = write(status_fd, buf, len);
    (void)ignored;
  }
  _exit(127);
}

// Restricts this process (and what it starts) to exactly `cpus`. This is binding, not
// confinement: the job may change its own mask later (within its cpuset), as any process
// may. The shepherd itself stays unbound, as does the execd.
void BindToCpus(const std::vector<int>& cpus, int status_fd) {
  if (cpus.empty()) return;
  const int size = *std::max_element(cpus.begin(), cpus.end()) + 1;
  cpu_set_t* set = CPU_ALLOC(size);
  if (set == nullptr) ChildFail(status_fd, "cannot bind to CPUs", "", ENOMEM);
  const size_t bytes = CPU_ALLOC_SIZE(size);
  CPU_ZERO_S(bytes, set);
  std::string list;
  for (int cpu : cpus) {
    CPU_SET_S(cpu, bytes, set);
    list += (list.empty() ? "" : ",") + std::to_string(cpu);
  }
  if (sched_setaffinity(0, bytes, set) != 0) {
    ChildFail(status_fd, "cannot bind to CPUs ", list.c_str(), errno);
  }
  CPU_FREE(set);
}

int OpenOutput(const std::string& path) {
  return open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
}

[[noreturn]] void RunJob(JobPlan& plan, int status_fd) {
  signal(SIGPIPE, SIG_DFL);  // the shepherd ignores it; the job gets the usual default
  // Its own process group, distinct from the shepherd's, so that kill(-pgid) reaches the
  // job and everything it starts but not the shepherd that reports on it.
  if (setpgid(0, 0) != 0) ChildFail(status_fd, "cannot create a process group", "", errno);
  // The shepherd keeps fd 3 (its report pipe) until it has sent the pgid: not for the job.
  // Failure only means an old kernel, and that pipe is close-on-exec anyway.
  close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  BindToCpus(plan.cpus, status_fd);

  if (plan.switch_user) {
    if (initgroups(plan.login.c_str(), plan.gid) != 0) {
      ChildFail(status_fd, "cannot set supplementary groups of ", plan.login.c_str(), errno);
    }
    if (setgid(plan.gid) != 0)
      ChildFail(status_fd, "cannot setgid for ", plan.login.c_str(), errno);
    if (setuid(plan.uid) != 0)
      ChildFail(status_fd, "cannot setuid for ", plan.login.c_str(), errno);
  }
  // After setuid, so that the directory and the output files are checked and created with
  // the job owner's rights.
  if (chdir(plan.cwd.c_str()) != 0)
    ChildFail(status_fd, "cannot chdir to ", plan.cwd.c_str(), errno);

  const int in = open("/dev/null", O_RDONLY);
  if (in < 0) ChildFail(status_fd, "cannot open ", "/dev/null", errno);
  const int out = OpenOutput(plan.stdout_path);
  if (out < 0) ChildFail(status_fd, "cannot open output file ", plan.stdout_path.c_str(), errno);
  int err = out;
  if (!plan.join) {
    err = OpenOutput(plan.stderr_path);
    if (err < 0) ChildFail(status_fd, "cannot open error file ", plan.stderr_path.c_str(), errno);
  }
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
    ChildFail(status_fd, "cannot redirect ", "stdin/stdout/stderr", errno);
  }
  for (int fd : {in, out, err}) {
    if (fd > 2) close(fd);
  }

  std::vector<char*> argv = CStrings(plan.argv);
  std::vector<char*> env = CStrings(plan.env);
  if (plan.search_path) {
    // execvp searches the PATH of `environ`: make that the job's PATH, not the daemon's.
    environ = env.data();
    execvp(argv[0], argv.data());
  } else {
    execve(argv[0], argv.data(), env.data());
    if (errno == ENOEXEC) {  // no #! line: Grid Engine runs such scripts with /bin/sh
      std::vector<char*> sh_argv = CStrings(plan.sh_argv);
      execve(sh_argv[0], sh_argv.data(), env.data());
    }
  }
  ChildFail(status_fd, "cannot execute ", plan.argv[0].c_str(), errno);
}

// Closes every descriptor >= `lowest`. close_range needs Linux 5.9; older kernels get the
// list from /proc/self/fd, read whole before closing anything (closedir's fd is in it).
void CloseFrom(int lowest) {
  if (close_range(static_cast<unsigned>(lowest), ~0U, 0) == 0) return;
  std::vector<int> open_fds;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (const dirent* entry = readdir(dir)) {
      const int fd = std::atoi(entry->d_name);
      if (fd >= lowest && entry->d_name[0] != '.') open_fds.push_back(fd);
    }
    closedir(dir);
  }
  for (int fd : open_fds) close(fd);
}

// The execd blocks SIGCHLD/SIGTERM/SIGINT for its signalfd and fork keeps the mask: start
// from a clean slate before anything else, so that neither the shepherd's wait nor the job
// inherits them.
void ResetSignals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);
  // A report written after the execd died must not kill the shepherd, nor its job.
  signal(SIGPIPE, SIG_IGN);
}

// The exit file, then the end of the shepherd. Without an exit file the execd reports the
// attempt as lost, which is also what a 1 here tells a parent still watching.
[[noreturn]] void Finish(const ShepherdPlan& plan, AttemptEnd end) {
  end.key = plan.key;
  end.end_time = plan.clock->Now();
  _exit(WriteFileAtomically(plan.paths.exit, FormatExitFile(end), /*durable=*/true).ok() ? 0 : 1);
}

[[noreturn]] void FinishFailed(const ShepherdPlan& plan, TimeMs start_time, std::string failure) {
  AttemptEnd end;
  end.exit_code = 1;
  end.start_time = start_time;
  end.failure = std::move(failure);
  Finish(plan, std::move(end));
}

int64_t Milliseconds(const timeval& tv) {
  return static_cast<int64_t>(tv.tv_sec) * 1000 + tv.tv_usec / 1000;
}

[[noreturn]] void Shepherd(ShepherdPlan& plan, int report_fd) {
  ResetSignals();
  // Not "corral-execd" in ps/top, and out of reach of a `pkill corral-execd`.
  prctl(PR_SET_NAME, "corral-shepherd", 0, 0, 0);
  const TimeMs start_time = plan.clock->Now();
  // A session of its own: the execd's terminal, process group and death do not reach it.
  setsid();
  // Nothing of the daemon's (ZeroMQ sockets, the signalfd, the log) stays open here.
  if (report_fd != 3) {
    dup2(report_fd, 3);
    report_fd = 3;
  }
  CloseFrom(4);
  const int null_fd = open("/dev/null", O_RDWR);
  for (int fd = 0; fd <= 2 && null_fd >= 0; ++fd) dup2(null_fd, fd);
  if (null_fd > 3) close(null_fd);
  // Relative paths were made absolute by the launcher; the cwd must not pin a mount.
  if (chdir("/") != 0) {
    // Then it stays where the execd was; nothing here depends on it.
  }

  Result<ProcessId> self = IdentifyProcess(getpid());
  if (!self) FinishFailed(plan, start_time, "shepherd: " + self.error().message());
  if (Status s = WriteFileAtomically(plan.paths.shepherd_pid, FormatProcessId(*self), false);
      !s.ok()) {
    FinishFailed(plan, start_time, "shepherd: " + s.message());
  }

  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) {
    FinishFailed(plan, start_time, std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  const pid_t child = fork();
  if (child < 0)
    FinishFailed(plan, start_time, std::string("cannot fork: ") + std::strerror(errno));
  if (child == 0) {
    close(status_pipe[0]);
    RunJob(plan.job, status_pipe[1]);
  }
  close(status_pipe[1]);
  // Both sides set the group, so that a kill(-child) right after the report cannot miss it.
  setpgid(child, child);
  ProcessId leader{child, 0, ""};
  if (Result<ProcessId> id = IdentifyProcess(child)) leader = *id;
  // No fsync: after a crash of the machine the job is gone anyway.
  (void)WriteFileAtomically(plan.paths.job_pgid, FormatProcessId(leader), false);
  const ssize_t sent = write(report_fd, &child, sizeof(child));
  (void)sent;  // the execd may be gone: it reads job.pgid when it comes back
  close(report_fd);

  // Blocks until the job has exec'd or failed. It does nothing slow before exec but chdir
  // (a hanging NFS mount); a KillJob meanwhile reaches it through its group all the same.
  std::string failure;
  char buf[512];
  for (;;) {
    const ssize_t n = read(status_pipe[0], buf, sizeof(buf));
    if (n > 0) {
      failure.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(status_pipe[0]);

  // The pidfd is readable once the job has ended; a kernel without pidfd_open (< 5.3)
  // gets a 100 ms check instead.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
  const int64_t started = MonotonicNowMs();
  int64_t term_at = plan.h_rt_ms > 0 ? started + plan.h_rt_ms : -1;
  int64_t kill_at = -1;
  std::string reason;
  for (;;) {
    siginfo_t info{};
    // WNOWAIT: the leader stays a zombie, so its pid (= the pgid) cannot be reused before
    // the stragglers in its group are killed below.
    if (waitid(P_PID, child, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD: cannot happen for our own child; do not spin on it
    }
    if (info.si_pid == child) break;
    const int64_t now = MonotonicNowMs();
    if (term_at >= 0 && now >= term_at) {
      kill(-child, SIGTERM);
      reason = "wall time exceeded";
      term_at = -1;
      kill_at = now + plan.kill_grace_ms;
    }
    if (kill_at >= 0 && now >= kill_at) {
      kill(-child, SIGKILL);
      kill_at = -1;
    }
    int64_t wait_ms = -1;
    for (int64_t at : {term_at, kill_at}) {
      if (at >= 0) wait_ms = wait_ms < 0 ? at - now : std::min(wait_ms, at - now);
    }
    if (pidfd < 0) wait_ms = wait_ms < 0 ? 100 : std::min<int64_t>(wait_ms, 100);
    pollfd item{pidfd, POLLIN, 0};
    poll(pidfd >= 0 ? &item : nullptr, pidfd >= 0 ? 1 : 0,
         static_cast<int>(std::clamp<int64_t>(wait_ms, -1, INT_MAX)));
  }
  if (pidfd >= 0) close(pidfd);
  // Whatever the job left behind in its group goes with it: the scheduler now considers
  // its cores free.
  kill(-child, SIGKILL);
  int status = 0;
  rusage usage{};
  while (wait4(child, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  if (!failure.empty()) FinishFailed(plan, start_time, std::move(failure));

  AttemptEnd end;
  end.start_time = start_time;
  if (WIFSIGNALED(status)) {
    end.signal = WTERMSIG(status);
    end.exit_code = 128 + end.signal;
  } else {
    end.exit_code = WEXITSTATUS(status);
  }
  end.cpu_ms = Milliseconds(usage.ru_utime) + Milliseconds(usage.ru_stime);
  end.max_rss_kb = usage.ru_maxrss;
  end.reason = std::move(reason);
  Finish(plan, std::move(end));
}

}  // namespace

[[noreturn]] void RunShepherd(ShepherdPlan& plan, int report_fd) {
  // This process is a copy of the execd (or of a test binary): an exception must never
  // unwind into the copy's own code. Without an exit file, the attempt is reported lost.
  try {
    Shepherd(plan, report_fd);
  } catch (...) {
    _exit(1);
  }
}

}  // namespace corral
