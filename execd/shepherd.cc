// RunShepherd and the job child it starts. The shepherd runs after fork() in a copy of the
// spawner, which is single-threaded: corral-spawner, or in a launcher with a clock of its own
// a fork of that process, possibly threaded, so the only locks it may take are malloc's,
// which glibc resets in the child. The job child is a vfork-style clone of the shepherd (CLONE_VM |
// CLONE_VFORK, as posix_spawn does): it runs in the shepherd's memory, on a stack of its own,
// while the shepherd is suspended, until it execs or exits. No page tables are copied and
// nothing is torn down at exec, which a fork of this process would cost twice on every job.
// Failures to start the job travel from the job child through a close-on-exec pipe (EOF
// without data means exec succeeded) into the exit file.
#include "execd/shepherd.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

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


// --- Memory limits -------------------------------------------------------------------------

bool IsCgroup(MemoryMechanism m) {
  return m == MemoryMechanism::kCgroupV1 || m == MemoryMechanism::kCgroupV2;
}

// Writes `text` to an existing (control) file; false on any error. Async-signal-safe.
bool WriteText(const char* path, const char* text, size_t len) {
  const int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, text, len) == static_cast<ssize_t>(len);
  close(fd);
  return ok;
}

bool WriteText(const std::string& path, const std::string& text) {
  return WriteText(path.c_str(), text.data(), text.size());
}

std::string ReadText(const std::string& path) {
  std::string out;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(fd);
  return out;
}

// The number after "<key> " on a line of a flat-keyed file (memory.events, memory.oom_control);
// -1 when absent.
int64_t KeyedValue(const std::string& text, std::string_view key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      return std::atoll(std::string(line.substr(key.size() + 1)).c_str());
    }
  }
  return -1;
}

// Creates the attempt's cgroup with its limit. False (and nothing left behind) on failure:
// the caller then samples instead.
bool SetUpCgroup(const ShepherdPlan& plan) {
  const std::string& dir = plan.cgroup_dir;
  rmdir(dir.c_str());  // a stale one from an attempt of the same name (empty, or EBUSY)
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return false;
  const std::string limit = std::to_string(plan.mem_limit_bytes);
  bool ok = false;
  if (plan.memory == MemoryMechanism::kCgroupV2) {
    ok = WriteText(dir + "/memory.max", limit);
    // Best effort: no swapping past the limit, and an OOM kill takes the whole job.
    (void)WriteText(dir + "/memory.swap.max", "0");
    (void)WriteText(dir + "/memory.oom.group", "1");
  } else {
    ok = WriteText(dir + "/memory.limit_in_bytes", limit);
    (void)WriteText(dir + "/memory.memsw.limit_in_bytes", limit);  // only with swap accounting
  }
  if (!ok) rmdir(dir.c_str());
  return ok;
}

// Whether the kernel OOM-killed something in the attempt's cgroup.
bool CgroupOomKilled(const ShepherdPlan& plan, bool died_of_sigkill) {
  const std::string& dir = plan.cgroup_dir;
  if (plan.memory == MemoryMechanism::kCgroupV2) {
    const std::string events = ReadText(dir + "/memory.events");
    return KeyedValue(events, "oom_kill") > 0 || KeyedValue(events, "oom_group_kill") > 0;
  }
  const int64_t kills = KeyedValue(ReadText(dir + "/memory.oom_control"), "oom_kill");
  if (kills >= 0) return kills > 0;
  // Kernels before 4.13 do not count kills: a SIGKILL after hitting the limit is one.
  return died_of_sigkill && std::atoll(ReadText(dir + "/memory.failcnt").c_str()) > 0;
}

// Kills what is left in one of the attempt's cgroups `dir` (processes that left the job's
// group), waits for it to empty (bounded) and removes it.
void TearDownCgroup(const std::string& dir) {
  const std::string procs = dir + "/cgroup.procs";
  const int64_t give_up = MonotonicNowMs() + 5000;
  for (;;) {
    const std::string text = ReadText(procs);
    bool any = false;
    for (size_t pos = 0; pos < text.size();) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      const pid_t pid = static_cast<pid_t>(std::atoi(text.substr(pos, end - pos).c_str()));
      if (pid > 0) {
        kill(pid, SIGKILL);
        any = true;
      }
      pos = end + 1;
    }
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    if (!any && errno != EBUSY) return;
    if (MonotonicNowMs() >= give_up) return;
    poll(nullptr, 0, 10);  // killed processes take a moment to leave the cgroup
  }
}

// Bytes resident in the processes of group `pgid`: the sum of field 24 (rss, pages) of
// /proc/PID/stat over processes whose field 5 (pgrp) is `pgid`. Shared pages count once
// per process, which overestimates a little; that errs towards the limit.
int64_t GroupRssBytes(pid_t pgid) {
  static const int64_t page = sysconf(_SC_PAGESIZE);
  int64_t pages = 0;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return 0;
  while (const dirent* entry = readdir(proc)) {
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    const std::string stat = ReadText(std::string("/proc/") + entry->d_name + "/stat");
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    // After ")": state(3) ppid(4) pgrp(5) ... rss(24): fields 3.. are space-separated.
    long long fields[22] = {};
    int field = 3;
    const char* p = stat.c_str() + paren + 1;
    while (*p != '\0' && field <= 24) {
      while (*p == ' ') ++p;
      if (field >= 4) fields[field - 3] = std::atoll(p);
      while (*p != '\0' && *p != ' ') ++p;
      ++field;
    }
    if (field <= 24) continue;
    if (fields[5 - 3] == pgid) pages += fields[24 - 3];
  }
  closedir(proc);
  return pages * page;
}

// The cgroup.procs files of the attempt's cgroups for the job child to join first (null:
// none), as root and before exec, so that everything the job starts is confined with it.
struct JobCgroups {
  const char* memory_procs = nullptr;
  const char* devices_procs = nullptr;  // the GPU fence
};

// Everything the job child is handed, prepared by the shepherd before the clone. The child
// runs in the shepherd's memory while the shepherd waits (CLONE_VFORK), like a function
// call that ends in exec or _exit.
struct JobChild {
  JobPlan* plan = nullptr;
  JobCgroups cgroups;
  int status_fd = -1;                      // start failures, as text
  int report_fd = -1;                      // the execd's pipe: the job's pgid goes there
  const std::string* pgid_path = nullptr;  // job.pgid
  char** argv = nullptr;
  char** sh_argv = nullptr;  // for a script without #!
  char** env = nullptr;
};

// The job's ids, through the system calls themselves: glibc's wrappers would broadcast the
// change to the threads glibc believes this process has, which are the shepherd's (this
// child shares its memory). Each call changes this process alone, as wanted.
int SetGroups(const std::vector<gid_t>& groups) {
  return static_cast<int>(syscall(SYS_setgroups, groups.size(), groups.data()));
}
int SetGid(gid_t gid) { return static_cast<int>(syscall(SYS_setgid, gid)); }
int SetUid(uid_t uid) { return static_cast<int>(syscall(SYS_setuid, uid)); }
int SetEuid(uid_t uid) { return static_cast<int>(syscall(SYS_setresuid, -1, uid, -1)); }

[[noreturn]] void RunJob(JobChild& c) {
  JobPlan& plan = *c.plan;
  const int status_fd = c.status_fd;
  // Its own process group, distinct from the shepherd's, so that kill(-pgid) reaches the
  // job and everything it starts but not the shepherd that reports on it. Recorded and
  // reported before anything that could hang (chdir on a dead mount), so that a KillJob
  // reaches it meanwhile. No fsync: after a crash of the machine the job is gone anyway.
  if (setpgid(0, 0) != 0) ChildFail(status_fd, "cannot create a process group", "", errno);
  const pid_t self = getpid();
  ProcessId leader{self, 0, ""};
  if (Result<ProcessId> id = IdentifyProcess(self)) leader = *id;
  (void)WriteFileAtomically(*c.pgid_path, FormatProcessId(leader), false);
  // SIGPIPE is still ignored: the execd may be gone, and it reads job.pgid when it comes back.
  const ssize_t sent = write(c.report_fd, &self, sizeof(self));
  (void)sent;
  signal(SIGPIPE, SIG_DFL);  // the shepherd ignores it; the job gets the usual default
  char pid[32];
  const int n = std::snprintf(pid, sizeof(pid), "%d\n", static_cast<int>(self));
  const std::pair<const char*, const char*> joins[] = {
      {c.cgroups.memory_procs, "cannot join the memory cgroup "},
      {c.cgroups.devices_procs, "cannot join the GPU devices cgroup "}};
  for (const auto& [procs, what] : joins) {
    if (procs == nullptr) continue;
    if (n <= 0 || !WriteText(procs, pid, static_cast<size_t>(n))) {
      ChildFail(status_fd, what, procs, errno);
    }
  }
  // fd 3 is the execd's report pipe, which dup2 made inheritable: not for the job.
  // Failure only means an old kernel, and then the pipe stays open in the job.
  close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  BindToCpus(plan.cpus, status_fd);

  if (plan.switch_user) {
    // Groups first, while still root; setuid last, as it gives up the right to do the rest.
    if (SetGroups(plan.groups) != 0) {
      ChildFail(status_fd, "cannot set supplementary groups of ", plan.login.c_str(), errno);
    }
    if (SetGid(plan.gid) != 0)
      ChildFail(status_fd, "cannot setgid for ", plan.login.c_str(), errno);
    if (SetUid(plan.uid) != 0)
      ChildFail(status_fd, "cannot setuid for ", plan.login.c_str(), errno);
    // Root must be gone for good: real, effective and saved ids (setuid as root sets all three).
    if (plan.uid != 0 && (SetUid(0) == 0 || SetEuid(0) == 0 || getuid() != plan.uid ||
                          geteuid() != plan.uid || getgid() != plan.gid || getegid() != plan.gid)) {
      ChildFail(status_fd, "cannot drop root privileges for ", plan.login.c_str(), EPERM);
    }
    // Until exec this process runs in the shepherd's memory, a copy of the spawner's (with
    // every plan it decoded; a forked spawner's holds the execd's keys too): the owner must
    // not read it through ptrace or /proc/PID/mem. setuid already
    // made it undumpable unless fs.suid_dumpable says otherwise. The flag belongs to the
    // memory, so the shepherd (root, never the owner's) is undumpable from here on too;
    // exec gives the job memory of its own, dumpable again.
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  }
  // After setuid, so that the directory and the output files are checked and created with
  // the job owner's rights: a job cannot have root create or truncate a file, nor follow a
  // symlink, where its owner could not.
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

  if (plan.search_path) {
    // execvp searches the PATH of `environ`: make that the job's PATH, not the daemon's.
    // (This is the shepherd's environ too; it puts its own back once this child is gone.)
    environ = c.env;
    execvp(c.argv[0], c.argv);
  } else {
    execve(c.argv[0], c.argv, c.env);
    if (errno == ENOEXEC) {  // no #! line: Grid Engine runs such scripts with /bin/sh
      execve(c.sh_argv[0], c.sh_argv, c.env);
    }
  }
  ChildFail(status_fd, "cannot execute ", plan.argv[0].c_str(), errno);
}

int JobChildMain(void* arg) {
  // An exception must not unwind past this frame: there is nothing above it on this stack.
  try {
    RunJob(*static_cast<JobChild*>(arg));
  } catch (...) {
    _exit(127);
  }
}

// Starts the job child (RunJob) and returns its pid once it has exec'd or exited, or -1
// with errno. Its stack is mapped for the call and gone after it; `environ`, which the
// child may point at the job's environment, is restored.
pid_t StartJobChild(JobChild& child) {
  // Enough for RunJob and for execvp, which copies argv onto the stack for a script
  // without #! (as posix_spawn sizes its own).
  size_t args = 0;
  for (char** a = child.argv; *a != nullptr; ++a) ++args;
  const size_t stack_bytes = (256 << 10) + (args + 2) * sizeof(char*) * 2;
  void* stack = mmap(nullptr, stack_bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  char** const saved_environ = environ;
  // The stack grows down on every architecture Linux runs this on but PA-RISC.
  const pid_t pid = clone(JobChildMain, static_cast<char*>(stack) + stack_bytes,
                          CLONE_VM | CLONE_VFORK | SIGCHLD, &child);
  const int err = errno;
  environ = saved_environ;
  munmap(stack, stack_bytes);
  errno = err;
  return pid;
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

}  // namespace

void ResetSignalDispositions() {
  for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);
  // glibc keeps its internal signals (32 and 33: thread cancellation, set*id broadcast) from
  // signal(), and its posix_spawn leaves them ignored in the program it starts (the execd's
  // corral-spawner); ignored, they would stay so across every exec, into the jobs. Nothing
  // here cancels threads or broadcasts ids (the job child's id changes are raw system
  // calls), so they are reset through the system call itself (the kernel's sigaction layout).
  struct KernelSigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    unsigned long mask;
  } dfl{SIG_DFL, 0, nullptr, 0};
  for (int s = 32; s < SIGRTMIN; ++s) syscall(SYS_rt_sigaction, s, &dfl, nullptr, sizeof(dfl.mask));
  // A report written after the execd died must not kill the shepherd, nor its job.
  signal(SIGPIPE, SIG_IGN);
}

namespace {

// The spawner blocks SIGCHLD (and more) for its signalfd and fork keeps the mask: start
// from a clean slate before anything else, so that neither the shepherd's wait nor the job
// inherits it. The dispositions are already the shepherd's (ResetSignalDispositions, once
// in the spawner): 64 system calls fewer per job.
void ResetSignals() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
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

  // The memory limit: a cgroup made before the fork, else (or when that fails) sampling.
  const bool limited = plan.mem_limit_bytes > 0 && plan.memory != MemoryMechanism::kNone;
  const bool in_cgroup = limited && IsCgroup(plan.memory) && SetUpCgroup(plan);
  const bool sampling = limited && !in_cgroup;
  const std::string cgroup_procs = in_cgroup ? plan.cgroup_dir + "/cgroup.procs" : "";
  // The GPU fence: a devices cgroup denying the GPUs the job was not given. Unlike memory
  // there is no weaker fallback worth the name, so a fence that cannot be made fails the start.
  const std::string& fence_dir = plan.gpu_fence.cgroup_dir;
  const bool fenced = !fence_dir.empty();
  if (fenced) {
    if (Status s = SetUpGpuFence(plan.gpu_fence); !s.ok()) {
      if (in_cgroup) rmdir(plan.cgroup_dir.c_str());
      FinishFailed(plan, start_time, s.message());
    }
  }
  const std::string fence_procs = fenced ? fence_dir + "/cgroup.procs" : "";
  auto remove_cgroups = [&] {
    if (in_cgroup) rmdir(plan.cgroup_dir.c_str());
    if (fenced) rmdir(fence_dir.c_str());
  };

  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) {
    const int err = errno;
    remove_cgroups();
    FinishFailed(plan, start_time, std::string("cannot create a pipe: ") + std::strerror(err));
  }
  // The job child records its pgid and reports it on report_fd itself, before anything of
  // the job's that could hang: this shepherd is suspended until the child execs or exits.
  std::vector<char*> argv = CStrings(plan.job.argv);
  std::vector<char*> sh_argv = CStrings(plan.job.sh_argv);
  std::vector<char*> env = CStrings(plan.job.env);
  JobChild job{.plan = &plan.job,
               .cgroups = {.memory_procs = in_cgroup ? cgroup_procs.c_str() : nullptr,
                           .devices_procs = fenced ? fence_procs.c_str() : nullptr},
               .status_fd = status_pipe[1],
               .report_fd = report_fd,
               .pgid_path = &plan.paths.job_pgid,
               .argv = argv.data(),
               .sh_argv = sh_argv.data(),
               .env = env.data()};
  const pid_t child = StartJobChild(job);
  if (child < 0) {
    const int err = errno;
    remove_cgroups();
    FinishFailed(plan, start_time, std::string("cannot start the job: ") + std::strerror(err));
  }
  close(status_pipe[1]);
  close(report_fd);

  // The child has exec'd or failed by now: the pipe holds its failure, if any, and EOF.
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
  // Sampling sums the group's RSS; in a cgroup the same tick checks for a kernel OOM kill,
  // so that a job whose shell survived the kill of its big child does not run on.
  int64_t sample_at = limited ? started : -1;
  const int64_t sample_every = std::max<int64_t>(plan.sample_interval_ms, 10);
  bool memory_killed = false;
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
    if (sample_at >= 0 && now >= sample_at) {
      sample_at = now + sample_every;
      if (sampling ? GroupRssBytes(child) > plan.mem_limit_bytes
                   : CgroupOomKilled(plan, /*died_of_sigkill=*/false)) {
        kill(-child, SIGKILL);
        memory_killed = true;
        sample_at = term_at = kill_at = -1;
      }
    }
    int64_t wait_ms = -1;
    for (int64_t at : {term_at, kill_at, sample_at}) {
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
  if (in_cgroup) {
    // Read before the teardown's SIGKILLs, which are not the kernel's OOM kills anyway.
    if (CgroupOomKilled(plan, WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
      memory_killed = true;
    }
    TearDownCgroup(plan.cgroup_dir);
  }
  if (fenced) TearDownCgroup(fence_dir);
  if (memory_killed) reason = "memory exceeded";
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
  // This process is a copy of the spawner (or of a test binary): an exception must never
  // unwind into the copy's own code. Without an exit file, the attempt is reported lost.
  try {
    Shepherd(plan, report_fd);
  } catch (...) {
    _exit(1);
  }
}

}  // namespace corral
