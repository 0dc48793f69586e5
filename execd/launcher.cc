// The pure Grid Engine rules for output paths and the job environment, and PosixLauncher:
// it prepares everything an attempt needs before fork, hands it to a shepherd
// (execd/shepherd.cc), and later collects the shepherd's exit file (execd/spool.cc). Its
// side of the spawner that forks the shepherds is in launcher_spawner.cc.
#include "execd/launcher.h"

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>
#include <utility>

#include "execd/inventory.h"
#include "execd/job_data.h"
#include "execd/shepherd.h"
#include "execd/spawner.h"
#include "execd/spool.h"

namespace corral {
namespace {

namespace fs = std::filesystem;

constexpr char kDefaultPath[] = "/usr/local/bin:/usr/ucb:/bin:/usr/bin";  // Grid Engine's

std::string Errno(int err) { return std::strerror(err); }

// The passwd entry of `uid`, or an empty JobUser when there is none.
JobUser LookupUser(uid_t uid) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return {};
  return JobUser{pw.pw_name ? pw.pw_name : "", pw.pw_dir ? pw.pw_dir : "",
                 pw.pw_shell ? pw.pw_shell : ""};
}

// The groups of user `name` with primary group `gid` (first), as initgroups would set them.
// Like LookupUser it asks NSS, so it runs in the execd before fork, never in the child.
std::vector<gid_t> GroupsOf(const std::string& name, gid_t gid) {
  std::vector<gid_t> groups(64);
  for (;;) {
    int n = static_cast<int>(groups.size());
    if (getgrouplist(name.c_str(), gid, groups.data(), &n) >= 0) {
      groups.resize(static_cast<size_t>(n));
      return groups;
    }
    // Too small: glibc says how many there are in n.
    const size_t want = std::max(static_cast<size_t>(n), groups.size() * 2);
    if (want > NGROUPS_MAX) return {gid};
    groups.resize(want);
  }
}

std::string ExpandPseudoVariables(std::string_view path, const Job& job, const JobUser& user,
                                  const JobHost& host) {
  const std::pair<std::string_view, std::string> vars[] = {
      {"$JOB_ID", std::to_string(job.id)},
      {"$JOB_NAME", job.spec.name},
      {"$HOME", user.home},
      {"$USER", user.name},
      {"$HOSTNAME", host.hostname},
      {"$TASK_ID", "undefined"},
  };
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    bool matched = false;
    if (path[i] == '$') {
      for (const auto& [name, value] : vars) {
        if (path.substr(i).starts_with(name)) {
          out += value;
          i += name.size();
          matched = true;
          break;
        }
      }
    }
    if (!matched) out += path[i++];
  }
  return out;
}

// Writes `text` to a new file `path` with `mode`, owned by uid/gid when `chown_to_user`.
Status WriteFileAs(const std::string& path, const std::string& text, mode_t mode,
                   bool chown_to_user, uid_t uid, gid_t gid) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return Error(Code::kInternal, "cannot create " + path + ": " + Errno(errno));
  if (Status s = WriteAll(fd, text, path); !s.ok()) {
    close(fd);
    return s;
  }
  // fchmod: the umask must not take the owner's execute bit away.
  if (fchmod(fd, mode) != 0 || (chown_to_user && fchown(fd, uid, gid) != 0)) {
    const int err = errno;
    close(fd);
    return Error(Code::kInternal, "cannot set owner or mode of " + path + ": " + Errno(err));
  }
  close(fd);
  return OkStatus();
}

const SystemClock kSystemClock;

// The pid recorded in a shepherd.pid or job.pgid file; nullopt when missing or unreadable.
std::optional<ProcessId> ReadProcessId(const std::string& path) {
  Result<std::string> text = ReadSmallFile(path);
  if (!text) return std::nullopt;
  Result<ProcessId> id = ParseProcessId(*text);
  if (!id) return std::nullopt;
  return *id;
}

std::string DescribeWaitStatus(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "exit status " + std::to_string(WEXITSTATUS(status));
}


// Writes `text` to an existing control file (cgroupfs); false on any error.
bool WriteControl(const std::string& path, std::string_view text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// mkdir -p; true if `path` is a directory afterwards.
bool MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  return fs::is_directory(path, ec);
}


bool ListsWord(std::string_view text, std::string_view word) {
  size_t p = 0;
  while ((p = text.find(word, p)) != std::string_view::npos) {
    const bool start = p == 0 || std::isspace(static_cast<unsigned char>(text[p - 1]));
    const size_t e = p + word.size();
    const bool stop = e == text.size() || std::isspace(static_cast<unsigned char>(text[e]));
    if (start && stop) return true;
    p = e;
  }
  return false;
}

std::optional<MemoryEnforcement> TryCgroupV2(const std::string& self, const std::string& node) {
  const std::string mount = "/sys/fs/cgroup";
  Result<std::string> controllers = ReadSmallFile(mount + "/cgroup.controllers");
  if (!controllers || !ListsWord(*controllers, "memory")) return std::nullopt;
  std::optional<std::string> own = OwnCgroup(self, "");
  if (!own) return std::nullopt;
  const std::string base = mount + (*own == "/" ? "" : *own);
  // A cgroup with processes cannot enable controllers for its children, except the root:
  // try, then check what the new directories actually got.
  (void)WriteControl(base + "/cgroup.subtree_control", "+memory");
  const std::string corral = base + "/corral";
  const std::string parent = corral + "/" + node;
  if (!MakeDirs(parent)) return std::nullopt;
  (void)WriteControl(corral + "/cgroup.subtree_control", "+memory");
  (void)WriteControl(parent + "/cgroup.subtree_control", "+memory");
  const std::string probe = parent + "/probe";
  rmdir(probe.c_str());
  if (mkdir(probe.c_str(), 0755) != 0) return std::nullopt;
  std::error_code ec;
  const bool works = fs::exists(probe + "/memory.max", ec) && fs::exists(probe + "/memory.events", ec);
  rmdir(probe.c_str());
  if (!works) return std::nullopt;
  return MemoryEnforcement{MemoryMechanism::kCgroupV2, parent, "cgroup v2 at " + parent};
}

std::optional<MemoryEnforcement> TryCgroupV1(const std::string& self, const std::string& node) {
  std::optional<std::string> own = OwnCgroup(self, "memory");
  if (!own) return std::nullopt;
  for (const std::string mount : {"/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory,cpu"}) {
    std::error_code ec;
    if (!fs::exists(mount + "/memory.limit_in_bytes", ec)) continue;
    const std::string parent = mount + (*own == "/" ? "" : *own) + "/corral/" + node;
    if (!MakeDirs(parent)) continue;
    const std::string probe = parent + "/probe";
    rmdir(probe.c_str());
    if (mkdir(probe.c_str(), 0755) != 0) continue;
    const bool works = WriteControl(probe + "/memory.limit_in_bytes", "1073741824") &&
                       fs::exists(probe + "/cgroup.procs", ec);
    rmdir(probe.c_str());
    if (!works) continue;
    return MemoryEnforcement{MemoryMechanism::kCgroupV1, parent,
                             "cgroup v1 memory controller at " + parent};
  }
  return std::nullopt;
}
}  // namespace

std::optional<std::string> OwnCgroup(std::string_view proc_self_cgroup, std::string_view controller) {
  size_t pos = 0;
  while (pos < proc_self_cgroup.size()) {
    size_t end = proc_self_cgroup.find('\n', pos);
    if (end == std::string_view::npos) end = proc_self_cgroup.size();
    const std::string_view line = proc_self_cgroup.substr(pos, end - pos);
    pos = end + 1;
    const size_t a = line.find(':');
    const size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    const std::string_view list = line.substr(a + 1, b - a - 1);
    const std::string_view path = line.substr(b + 1);
    if (controller.empty()) {
      if (line.substr(0, a) == "0" && list.empty()) return std::string(path);
      continue;
    }
    size_t p = 0;
    while (p <= list.size()) {
      size_t q = list.find(',', p);
      if (q == std::string_view::npos) q = list.size();
      if (list.substr(p, q - p) == controller) return std::string(path);
      p = q + 1;
    }
  }
  return std::nullopt;
}

Status CheckJobOwner(const Job& job, uid_t execd_uid, const std::string& execd_user,
                     bool allow_root_jobs) {
  if (execd_uid == 0) {
    if (job.uid != 0 || allow_root_jobs) return OkStatus();
    return Error(Code::kPermissionDenied,
                 "refused: this node does not run jobs of root (uid 0); submit as another user, "
                 "or set allow_root_jobs: true in the node's execd configuration");
  }
  if (job.uid == execd_uid) return OkStatus();
  auto who = [](const std::string& name, uid_t uid) {
    return (name.empty() ? "" : name + " ") + "(uid " + std::to_string(uid) + ")";
  };
  return Error(Code::kPermissionDenied,
               "refused: the execd on this node runs as " + who(execd_user, execd_uid) +
                   ", not as root, and so runs only that user's jobs; this job belongs to " +
                   who(job.owner, job.uid));
}

std::string JobWorkingDirectory(const Job& job, const JobUser& user) {
  if (!job.spec.cwd.empty()) return job.spec.cwd;
  if (!user.home.empty()) return user.home;
  return "/";
}

std::string ResolveOutputPath(const std::string& requested, char kind, const Job& job,
                              const JobUser& user, const JobHost& host,
                              const std::function<bool(const std::string&)>& is_directory) {
  const std::string cwd = JobWorkingDirectory(job, user);
  // NAME.oJOBID, and NAME.oJOBID.TASKID for an array task (Grid Engine's names).
  const std::string file_name = job.spec.name + "." + kind + std::to_string(job.id) +
                                (job.task == 0 ? "" : "." + std::to_string(job.task));
  std::string_view path = requested;
  // "host:path" and DRMAA's ":path". A ':' after a '/' is part of a file name.
  if (const size_t colon = path.find(':');
      colon != std::string_view::npos &&
      path.substr(0, colon).find('/') == std::string_view::npos) {
    path.remove_prefix(colon + 1);
  }
  std::string expanded = ExpandPseudoVariables(path, job, user, host);
  if (expanded.empty()) return cwd + "/" + file_name;
  if (expanded.front() != '/') expanded = cwd + "/" + expanded;
  if (expanded.back() == '/') return expanded + file_name;
  if (is_directory(expanded)) return expanded + "/" + file_name;
  return expanded;
}

std::map<std::string, std::string> BuildJobEnvironment(const Job& job, const JobUser& user,
                                                       const JobHost& host, const JobFiles& files,
                                                       const std::vector<int>& bound_cpus) {
  const JobSpec& spec = job.spec;
  auto submitted = [&spec](const std::string& name, const std::string& fallback) {
    const auto it = spec.env.find(name);
    return it != spec.env.end() ? it->second : fallback;
  };
  std::map<std::string, std::string> env = spec.env;
  const std::string name = !user.name.empty() ? user.name : submitted("USER", job.owner);
  env["USER"] = name;
  env["LOGNAME"] = name;
  env["HOME"] = !user.home.empty() ? user.home : submitted("HOME", "/");
  env["SHELL"] = !user.shell.empty() ? user.shell : submitted("SHELL", "/bin/sh");
  env["PATH"] = submitted("PATH", kDefaultPath);
  env["JOB_ID"] = std::to_string(job.id);
  env["JOB_NAME"] = spec.name;
  env["REQUEST"] = spec.name;
  env["NSLOTS"] = std::to_string(std::max(1, spec.request.cores));
  env["NHOSTS"] = "1";
  env["NQUEUES"] = "1";
  env["QUEUE"] = "all.q";
  env["HOSTNAME"] = host.hostname;
  if (job.task != 0 && spec.array) {
    env["SGE_TASK_ID"] = std::to_string(job.task);
    env["SGE_TASK_FIRST"] = std::to_string(spec.array->first);
    env["SGE_TASK_LAST"] = std::to_string(spec.array->Last());
    env["SGE_TASK_STEPSIZE"] = std::to_string(spec.array->step);
    env["CORRAL_TASK_ID"] = std::to_string(job.task);
  } else {
    env["SGE_TASK_ID"] = "undefined";
    env["SGE_TASK_FIRST"] = "undefined";
    env["SGE_TASK_LAST"] = "undefined";
    env["SGE_TASK_STEPSIZE"] = "undefined";
  }
  // A sweep task's parameter point: each as PARAM_NAME, and the whole as a JSON file.
  for (const auto& [name, value] : ParamVariables(job.params)) env[name] = value;
  if (!files.params.empty()) env["CORRAL_PARAMS"] = files.params;
  if (!files.result.empty()) env["CORRAL_RESULT"] = files.result;
  env["ENVIRONMENT"] = "BATCH";
  env["TMPDIR"] = files.tmpdir;
  env["SGE_STDOUT_PATH"] = files.stdout_path;
  env["SGE_STDERR_PATH"] = files.stderr_path;
  env["CORRAL_JOB_ID"] = std::to_string(job.id);
  env["CORRAL_NODE"] = host.node;
  env["CORRAL_ATTEMPT"] = std::to_string(job.attempt);
  // A scheduler older than core allocation sends no alloc_cores: the request says how many.
  const size_t threads = !job.alloc_cores.empty()
                             ? job.alloc_cores.size()
                             : static_cast<size_t>(std::max(1, spec.request.cores));
  env["OMP_NUM_THREADS"] = std::to_string(threads);
  env["CORRAL_CORES"] = JoinIds(job.alloc_cores);
  env["CORRAL_CPUS"] = JoinIds(bound_cpus);
  // Set even when empty: an unset CUDA_VISIBLE_DEVICES would show the job every GPU.
  env["CUDA_VISIBLE_DEVICES"] = JoinIds(job.alloc_gpus);
  env["CORRAL_GPUS"] = JoinIds(job.alloc_gpus);
  env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID";
  return env;
}

// ---- PosixLauncher ---------------------------------------------------------------------

Result<std::unique_ptr<PosixLauncher>> PosixLauncher::Create(LauncherOptions options) {
  if (options.spool_dir.empty()) return Error(Code::kInvalidArgument, "no spool directory given");
  std::error_code ec;
  // Absolute: the job chdirs before it execs its script, and shepherds chdir to /.
  fs::path spool_dir = fs::absolute(options.spool_dir, ec).lexically_normal();
  if (ec) return Error(Code::kInvalidArgument, "bad spool directory: " + ec.message());
  if (!spool_dir.has_filename()) spool_dir = spool_dir.parent_path();  // "spool/" -> "spool"
  options.spool_dir = spool_dir.string();
  const fs::path jobs = fs::path(options.spool_dir) / "jobs";
  const uid_t self = geteuid();
  // The spool holds what the execd believes (exit files, recorded pids) and the scripts it
  // runs as their owners: nobody else may be able to rename or plant anything in it. A
  // directory made here gets 0711; one the admin made is checked before anything is put in
  // it, and never changed (it could be shared, like /tmp).
  if (!fs::exists(options.spool_dir, ec) && !ec) {
    fs::create_directories(options.spool_dir, ec);
    if (ec) {
      return Error(Code::kInternal, "cannot create " + options.spool_dir + ": " + ec.message());
    }
    if (chmod(options.spool_dir.c_str(), 0711) != 0) {
      return Error(Code::kInternal,
                   "cannot set the mode of " + options.spool_dir + ": " + Errno(errno));
    }
  }
  struct stat spool {};
  if (stat(options.spool_dir.c_str(), &spool) != 0) {
    return Error(Code::kInternal, "cannot stat " + options.spool_dir + ": " + Errno(errno));
  }
  if (spool.st_uid != self) {
    return Error(Code::kInvalidArgument, "the spool directory " + options.spool_dir +
                                             " belongs to uid " + std::to_string(spool.st_uid) +
                                             "; it must belong to the user corral-execd " +
                                             "runs as (uid " + std::to_string(self) + ")");
  }
  if ((spool.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(spool.st_mode & 07777));
    return Error(Code::kInvalidArgument,
                 "the spool directory " + options.spool_dir + " is writable by other users (mode " +
                     mode + "); give corral-execd a directory of its own, or chmod go-w it");
  }
  // As root, jobs run as other users who must reach their script through the spool; say so
  // now rather than fail every job with "Permission denied".
  if (self == 0 && (spool.st_mode & S_IXOTH) == 0) {
    return Error(Code::kInvalidArgument,
                 options.spool_dir + " must be searchable by job owners (chmod o+x)");
  }
  // SPOOL/jobs: searchable, not listable. A job reaches its own attempt's files by name;
  // what each attempt directory lets through is set in Launch.
  if (mkdir(jobs.c_str(), 0711) != 0 && errno != EEXIST) {
    return Error(Code::kInternal, "cannot create " + jobs.string() + ": " + Errno(errno));
  }
  struct stat jobs_dir {};
  if (lstat(jobs.c_str(), &jobs_dir) != 0 || !S_ISDIR(jobs_dir.st_mode) ||
      jobs_dir.st_uid != self) {
    return Error(Code::kInvalidArgument,
                 jobs.string() + " must be a directory of the user corral-execd runs as");
  }
  if (chmod(jobs.c_str(), 0711) != 0 || access(jobs.c_str(), W_OK | X_OK) != 0) {
    return Error(Code::kInvalidArgument, jobs.string() + " is not writable: " + Errno(errno));
  }
  if (options.clock != nullptr && !options.spawner_program.empty()) {
    return Error(Code::kInvalidArgument,
                 "a launcher with a clock of its own cannot exec " + options.spawner_program +
                     ", whose shepherds use the system clock: leave spawner_program empty");
  }
  if (options.clock == nullptr) options.clock = &kSystemClock;
  if (options.cpus.empty()) options.cpus = AllowedCpus();
  std::unique_ptr<PosixLauncher> launcher(
      new PosixLauncher(std::move(options), LookupUser(self).name));
  // Started now: a fork, while this process is small and single-threaded (before ZeroMQ
  // starts), or corral-spawner exec'd; every shepherd is a fork of it.
  if (const std::string& program = launcher->options_.spawner_program; !program.empty()) {
    Result<int> fd = OpenSpawnerProgram(program);
    if (!fd) return std::unexpected(fd.error());
    launcher->spawner_program_fd_ = *fd;
  }
  Result<std::unique_ptr<Spawner>> spawner =
      Spawner::Start(launcher->options_.clock, launcher->options_.spawner_program,
                     launcher->spawner_program_fd_);
  if (!spawner) return std::unexpected(spawner.error());
  launcher->spawner_ = std::move(*spawner);
  return launcher;
}

PosixLauncher::PosixLauncher(LauncherOptions options, std::string self_name)
    : options_(std::move(options)), self_name_(std::move(self_name)) {}

PosixLauncher::~PosixLauncher() {
  // The shepherds carry on: a new launcher re-attaches to them (Recover).
  for (const auto& [key, tracked] : running_) {
    if (tracked.pidfd >= 0) close(tracked.pidfd);
  }
  spawner_.reset();  // ends the spawner, before its program's descriptor goes
  if (spawner_program_fd_ >= 0) close(spawner_program_fd_);
}

Result<Recovery> PosixLauncher::Recover() {
  Result<std::vector<AttemptKey>> keys = ListAttempts(options_.spool_dir);
  if (!keys) return std::unexpected(keys.error());
  Recovery out;
  for (const AttemptKey& key : *keys) {
    if (running_.contains(key)) continue;
    if (Adopt(key, /*missing_is_lost=*/true, out.ended) == Adopted::kRunning) {
      out.running.push_back(key);
    }
  }
  return out;
}

PosixLauncher::Adopted PosixLauncher::Adopt(const AttemptKey& key, bool missing_is_lost,
                                            std::vector<AttemptEnd>& ended) {
  const AttemptPaths paths = PathsOf(options_.spool_dir, key);
  std::error_code ec;
  if (fs::exists(paths.exit, ec)) {
    ended.push_back(Collect(key, ""));
    return Adopted::kEnded;
  }
  const std::optional<ProcessId> shepherd = ReadProcessId(paths.shepherd_pid);
  if (!shepherd && !missing_is_lost && !fs::exists(paths.exit, ec)) return Adopted::kNothing;
  if (!shepherd || !StillRunning(*shepherd)) {
    // It may have written its exit file and exited since the check above.
    ended.push_back(Collect(key, shepherd ? "" : "no readable shepherd.pid"));
    return Adopted::kEnded;
  }
  Tracked tracked{.shepherd = shepherd->pid, .child = false, .identity = *shepherd};
  tracked.pidfd = static_cast<int>(syscall(SYS_pidfd_open, shepherd->pid, 0));
  // The pid could have changed hands between the check and pidfd_open: check again, now
  // that the pidfd pins whichever process it names.
  if (tracked.pidfd >= 0 && !StillRunning(*shepherd)) {
    close(tracked.pidfd);
    ended.push_back(Collect(key, ""));
    return Adopted::kEnded;
  }
  if (std::optional<ProcessId> leader = ReadProcessId(paths.job_pgid)) {
    tracked.job_pgid = leader->pid;
  }
  running_[key] = tracked;
  return Adopted::kRunning;
}

Result<pid_t> PosixLauncher::Launch(const Job& job) {
  const AttemptKey key{job.id, job.attempt, job.task};
  const JobSpec& spec = job.spec;
  if (running_.contains(key)) {
    return Error(Code::kFailedPrecondition, "attempt " + AttemptName(key) + " already runs");
  }
  ShepherdPlan shepherd;
  shepherd.key = key;
  shepherd.paths = PathsOf(options_.spool_dir, key);
  shepherd.h_rt_ms = spec.h_rt_s > 0 ? spec.h_rt_s * 1000 : 0;
  shepherd.kill_grace_ms = options_.kill_grace_ms;
  shepherd.clock = options_.clock;
  shepherd.mem_limit_bytes = spec.request.mem_mb > 0 ? spec.request.mem_mb * 1024 * 1024 : 0;
  shepherd.memory = options_.memory.mechanism;
  if (shepherd.memory == MemoryMechanism::kCgroupV1 ||
      shepherd.memory == MemoryMechanism::kCgroupV2) {
    shepherd.cgroup_dir = options_.memory.cgroup_parent + "/" + AttemptName(key);
  }
  shepherd.gpu_fence = PlanGpuFence(options_.gpus, AttemptName(key), job.alloc_gpus);
  JobPlan& plan = shepherd.job;
  const uid_t self = geteuid();
  if (Status s = CheckJobOwner(job, self, self_name_, options_.allow_root_jobs); !s.ok()) {
    return std::unexpected(s);
  }
  // As root the job becomes its owner; otherwise it runs as this process's user, which
  // CheckJobOwner has just found to be its owner.
  const bool as_root = self == 0;
  plan.uid = as_root ? job.uid : self;
  plan.gid = as_root ? job.gid : getegid();
  const JobUser user = LookupUser(plan.uid);
  plan.login = !user.name.empty() ? user.name : job.owner;
  if (as_root) {
    // The node's own databases decide who the owner is here, as with Grid Engine and Slurm:
    // no passwd entry, no job. NSS is asked only here, before fork (see GroupsOf).
    if (user.name.empty()) {
      return Error(Code::kFailedPrecondition,
                   "user id " + std::to_string(job.uid) +
                       (job.owner.empty() ? "" : " (" + job.owner + ")") +
                       " is not known on this node (no passwd entry)");
    }
    plan.switch_user = true;
    plan.groups = GroupsOf(user.name, plan.gid);
  }
  if (spec.binary && spec.args.empty()) {
    return Error(Code::kInvalidArgument, "binary job without a command");
  }
  if (!job.alloc_cores.empty()) {
    Result<std::vector<int>> cpus = MapCoresToCpus(job.alloc_cores, options_.cpus);
    if (!cpus) {
      return Error(Code::kInvalidArgument, "cannot bind to cores " + JoinIds(job.alloc_cores) +
                                               ": " + cpus.error().message());
    }
    plan.cpus = std::move(*cpus);
  }

  // Spool: a fresh directory per attempt. One with the same name is stale: the agent never
  // starts an attempt twice, and Recover has taken over those that still run.
  const std::string& dir = shepherd.paths.dir;
  (void)RemoveTree(dir);  // a failure shows as EEXIST just below
  // Owned by the execd with the job's group, 0710: the owner passes through to the files
  // below that are theirs (script, TMPDIR, result); other users cannot even look up a name
  // here unless they share the job's group, and then find only files that are 0600/0700.
  // The shepherd's records (shepherd.pid, job.pgid, exit) are the execd's, 0600.
  if (mkdir(dir.c_str(), 0700) != 0 ||
      (as_root && (chown(dir.c_str(), 0, plan.gid) != 0 || chmod(dir.c_str(), 0710) != 0))) {
    return Error(Code::kInternal, "cannot create " + dir + ": " + Errno(errno));
  }
  JobFiles files;
  files.tmpdir = shepherd.paths.tmpdir;
  if (mkdir(files.tmpdir.c_str(), 0700) != 0 ||
      (as_root && chown(files.tmpdir.c_str(), plan.uid, plan.gid) != 0)) {
    return Error(Code::kInternal, "cannot create " + files.tmpdir + ": " + Errno(errno));
  }
  const std::string& script = shepherd.paths.script;
  if (!spec.binary) {
    if (Status s = WriteFileAs(script, spec.script, 0700, as_root, plan.uid, plan.gid); !s.ok()) {
      return std::unexpected(s);
    }
  }

  const JobHost& host = options_.host;
  auto is_directory = [](const std::string& path) {
    std::error_code ignored;
    return fs::is_directory(path, ignored);
  };
  // $CORRAL_RESULT: created empty and owned by the job's user, so that a job of any user
  // can write it in the spool; read back when the attempt ends (Collect).
  files.result = dir + "/result.json";
  if (Status s = WriteFileAs(files.result, "", 0600, as_root, plan.uid, plan.gid); !s.ok()) {
    return std::unexpected(s);
  }
  if (!job.params.empty()) {
    files.params = dir + "/params.json";
    if (Status s = WriteFileAs(files.params, job.params + "\n", 0600, as_root, plan.uid, plan.gid);
        !s.ok()) {
      return std::unexpected(s);
    }
  }
  files.stdout_path = ResolveOutputPath(spec.stdout_path, 'o', job, user, host, is_directory);
  files.stderr_path = spec.join
                          ? files.stdout_path
                          : ResolveOutputPath(spec.stderr_path, 'e', job, user, host, is_directory);
  for (const auto& [name, value] : BuildJobEnvironment(job, user, host, files, plan.cpus)) {
    plan.env.push_back(name + "=" + value);
  }
  plan.cwd = JobWorkingDirectory(job, user);
  plan.stdout_path = files.stdout_path;
  plan.stderr_path = files.stderr_path;
  plan.join = spec.join;
  if (spec.binary) {
    plan.search_path = true;
    plan.argv = spec.args;
  } else {
    if (!spec.shell.empty()) {
      plan.search_path = true;
      plan.argv.push_back(spec.shell);
    }
    plan.argv.push_back(script);
    plan.argv.insert(plan.argv.end(), spec.args.begin(), spec.args.end());
    plan.sh_argv = {"/bin/sh", script};
    plan.sh_argv.insert(plan.sh_argv.end(), spec.args.begin(), spec.args.end());
  }

  return StartShepherd(shepherd);
}

bool PosixLauncher::Kill(const AttemptKey& key) {
  const auto it = running_.find(key);
  if (it == running_.end()) return false;
  Tracked& tracked = it->second;
  if (tracked.job_pgid <= 0) {
    // The shepherd did not report in time; its job child records the pgid before reporting it.
    const AttemptPaths paths = PathsOf(options_.spool_dir, key);
    if (std::optional<ProcessId> leader = ReadProcessId(paths.job_pgid)) {
      tracked.job_pgid = leader->pid;
    }
  }
  // The shepherd survives, reaps the job and writes the exit file; Reap reports it. Until it
  // has reaped the leader, the pgid cannot name another group.
  if (tracked.job_pgid > 0) kill(-tracked.job_pgid, SIGKILL);
  return true;
}

std::vector<AttemptEnd> PosixLauncher::Reap() {
  if (spawner_) {
    ApplyExits(spawner_->TakeExits());
    if (!spawner_->alive()) OnSpawnerDeath("");
  }
  std::vector<AttemptEnd> ended = std::exchange(ended_, {});
  for (auto it = running_.begin(); it != running_.end();) {
    Tracked& tracked = it->second;
    std::string how;
    if (tracked.child) {
      // The spawner reaped it and said so (ApplyExits).
      if (!tracked.exited) {
        ++it;
        continue;
      }
      how = DescribeWaitStatus(tracked.status);
    } else if (tracked.pidfd >= 0) {
      pollfd item{tracked.pidfd, POLLIN, 0};
      if (poll(&item, 1, 0) <= 0) {
        ++it;
        continue;
      }
    } else if (StillRunning(tracked.identity)) {
      ++it;
      continue;
    }
    ended.push_back(Collect(it->first, how));
    if (tracked.pidfd >= 0) close(tracked.pidfd);
    it = running_.erase(it);
  }
  return ended;
}

AttemptEnd PosixLauncher::Collect(const AttemptKey& key, const std::string& how) {
  const AttemptPaths paths = PathsOf(options_.spool_dir, key);
  std::string detail = how;
  if (Result<std::string> text = ReadSmallFile(paths.exit)) {
    Result<AttemptEnd> end = ParseExitFile(*text, key);
    if (end) {
      ReadJobResult(paths.dir + "/result.json", *end);
      return *end;
    }
    detail = "unreadable exit file: " + end.error().message();
  }
  // Its job may still run (the shepherd was SIGKILLed): stop it, as nobody will report on
  // it. Only when the group's leader is the recorded process, never a reused pid.
  if (std::optional<ProcessId> leader = ReadProcessId(paths.job_pgid);
      leader && StillRunning(*leader)) {
    kill(-leader->pid, SIGKILL);
  }
  AttemptEnd lost;
  lost.key = key;
  lost.exit_code = 1;
  lost.failure = "lost: the shepherd of attempt " + AttemptName(key) +
                 " died without an exit status" + (detail.empty() ? "" : " (" + detail + ")");
  return lost;
}

std::vector<int> PosixLauncher::WatchFds() const {
  std::vector<int> fds;
  if (spawner_) fds.push_back(spawner_->fd());
  for (const auto& [key, tracked] : running_) {
    if (tracked.pidfd >= 0) fds.push_back(tracked.pidfd);
  }
  return fds;
}

pid_t PosixLauncher::SpawnerPid() const { return spawner_ ? spawner_->pid() : 0; }

bool PosixLauncher::ReapDue() const {
  if (!ended_.empty() || (spawner_ && spawner_->HasBufferedRecords())) return true;
  return std::any_of(running_.begin(), running_.end(), [](const auto& entry) {
    return entry.second.child && entry.second.exited;
  });
}

bool PosixLauncher::NeedsPolling() const {
  return std::any_of(running_.begin(), running_.end(), [](const auto& entry) {
    return !entry.second.child && entry.second.pidfd < 0;
  });
}

Status PosixLauncher::Release(const AttemptKey& key) {
  // The attempt's files go as soon as the scheduler has its exit: output lives in the job's
  // cwd, and the spool holds only the script copy, TMPDIR and the shepherd's small files,
  // which Grid Engine also deletes at job end. Keeping them until the ack (not the exit)
  // means an exit is never lost to a restart of the execd while it is in flight.
  const std::string dir = PathsOf(options_.spool_dir, key).dir;
  // A shepherd removes its job's cgroup; one that was killed leaves it behind (empty once
  // Collect has killed the job).
  if (!options_.memory.cgroup_parent.empty()) {
    rmdir((options_.memory.cgroup_parent + "/" + AttemptName(key)).c_str());
  }
  if (!options_.gpus.cgroup_parent.empty()) {
    rmdir((options_.gpus.cgroup_parent + "/" + AttemptName(key)).c_str());
  }
  // TMPDIR below it is the job owner's, who may have left symlinks there, or may still be
  // swapping directories for symlinks: RemoveTree never follows one.
  return RemoveTree(dir);
}

Result<MemoryEnforcement> DetectMemoryEnforcement(std::string_view wanted, const std::string& node) {
  const MemoryEnforcement sample{MemoryMechanism::kSample, "", "sampling process RSS"};
  if (wanted == "none") return MemoryEnforcement{MemoryMechanism::kNone, "", "not enforced"};
  if (wanted == "sample") return sample;
  if (wanted != "auto" && wanted != "cgroup") {
    return Error(Code::kInvalidArgument, "unknown memory enforcement '" + std::string(wanted) +
                                             "' (auto, cgroup, sample or none)");
  }
  Result<std::string> self = ReadSmallFile("/proc/self/cgroup");
  if (self && geteuid() == 0) {
    const std::string name = node.empty() ? "node" : node;
    if (std::optional<MemoryEnforcement> v2 = TryCgroupV2(*self, name)) return *v2;
    if (std::optional<MemoryEnforcement> v1 = TryCgroupV1(*self, name)) return *v1;
  }
  if (wanted == "cgroup") {
    return Error(Code::kUnavailable, "no usable memory cgroup (v2 or v1) for this process");
  }
  return sample;
}

int KillSpooledJobs(const std::string& spool_dir) {
  Result<std::vector<AttemptKey>> attempts = ListAttempts(spool_dir);
  if (!attempts) return 0;
  int killed = 0;
  for (const AttemptKey& key : *attempts) {
    const AttemptPaths paths = PathsOf(spool_dir, key);
    std::optional<ProcessId> leader = ReadProcessId(paths.job_pgid);
    // Only a leader that is still the recorded process: its pid may have been reused.
    if (leader && StillRunning(*leader) && kill(-leader->pid, SIGKILL) == 0) ++killed;
  }
  return killed;
}

}  // namespace corral
