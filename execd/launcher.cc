// PosixLauncher (fork, setsid, setuid, chdir, redirect, exec; wait4 to reap) and the pure
// Grid Engine rules for output paths and the job environment. Everything the child needs
// is prepared before fork; the child only makes system calls and reports a failure to start
// through a close-on-exec pipe (EOF without data means exec succeeded).
#include "execd/launcher.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <utility>

extern char** environ;

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
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return Error(Code::kInternal, "cannot write " + path + ": " + Errno(err));
    }
    done += static_cast<size_t>(n);
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

// Everything the child needs, built before fork. The execd is single-threaded, so the child
// may still allocate (argv arrays, initgroups) without deadlocking on a lock held elsewhere.
struct ChildPlan {
  bool switch_user = false;
  std::string login;  // for initgroups
  uid_t uid = 0;
  gid_t gid = 0;
  std::string cwd;
  std::string stdout_path;
  std::string stderr_path;
  bool join = false;
  bool search_path = false;          // execvp in the job's PATH (binary jobs, -S shell)
  std::vector<std::string> argv;     // argv[0] is the file to exec
  std::vector<std::string> sh_argv;  // for a script without #!: /bin/sh script args...
  std::vector<std::string> env;      // "NAME=value"
};

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Writes "<what><arg>: <strerror(err)>" to the status pipe and ends the child. The parent
// turns the text into the attempt's start failure.
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

int OpenOutput(const std::string& path) {
  return open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
}

[[noreturn]] void RunChild(ChildPlan& plan, int status_fd) {
  // The execd blocks SIGCHLD/SIGTERM/SIGINT for its signalfd, and exec keeps both the mask
  // and ignored dispositions: give the job a clean slate.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s = 1; s < NSIG; ++s) signal(s, SIG_DFL);

  // Its own session and process group, so one kill(-pgid) reaches everything it starts.
  if (setsid() < 0) ChildFail(status_fd, "cannot create a session", "", errno);
  // Nothing of the daemon's (sockets, signalfd) may leak into the job. Failure only means
  // an old kernel; the daemon opens its descriptors close-on-exec anyway.
  close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);

  if (plan.switch_user) {
    if (initgroups(plan.login.c_str(), plan.gid) != 0) {
      ChildFail(status_fd, "cannot set supplementary groups of ", plan.login.c_str(), errno);
    }
    if (setgid(plan.gid) != 0) {
      ChildFail(status_fd, "cannot setgid for ", plan.login.c_str(), errno);
    }
    if (setuid(plan.uid) != 0) {
      ChildFail(status_fd, "cannot setuid for ", plan.login.c_str(), errno);
    }
  }
  // After setuid, so that the directory and the output files are checked and created with
  // the job owner's rights.
  if (chdir(plan.cwd.c_str()) != 0) {
    ChildFail(status_fd, "cannot chdir to ", plan.cwd.c_str(), errno);
  }

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

}  // namespace

std::string AttemptName(const AttemptKey& key) {
  return std::to_string(key.job_id) + "." + std::to_string(key.attempt);
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
  const std::string file_name = job.spec.name + "." + kind + std::to_string(job.id);
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
                                                       const JobHost& host, const JobFiles& files) {
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
  env["SGE_TASK_ID"] = "undefined";
  env["SGE_TASK_FIRST"] = "undefined";
  env["SGE_TASK_LAST"] = "undefined";
  env["SGE_TASK_STEPSIZE"] = "undefined";
  env["ENVIRONMENT"] = "BATCH";
  env["TMPDIR"] = files.tmpdir;
  env["SGE_STDOUT_PATH"] = files.stdout_path;
  env["SGE_STDERR_PATH"] = files.stderr_path;
  env["CORRAL_JOB_ID"] = std::to_string(job.id);
  env["CORRAL_NODE"] = host.node;
  env["CORRAL_ATTEMPT"] = std::to_string(job.attempt);
  return env;
}

// ---- PosixLauncher ---------------------------------------------------------------------

Result<std::unique_ptr<PosixLauncher>> PosixLauncher::Create(LauncherOptions options) {
  if (options.spool_dir.empty()) return Error(Code::kInvalidArgument, "no spool directory given");
  std::error_code ec;
  const fs::path jobs = fs::path(options.spool_dir) / "jobs";
  fs::create_directories(jobs, ec);
  if (ec) return Error(Code::kInternal, "cannot create " + jobs.string() + ": " + ec.message());
  // Users' jobs must reach their own SPOOL/jobs/<id>.<attempt>/{script,tmp}.
  fs::permissions(jobs,
                  fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec |
                      fs::perms::group_read | fs::perms::others_read,
                  ec);
  if (access(jobs.c_str(), W_OK | X_OK) != 0) {
    return Error(Code::kInvalidArgument, jobs.string() + " is not writable: " + Errno(errno));
  }
  // As root, jobs run as other users who must reach their script through the spool; say so
  // now rather than fail every job with "Permission denied".
  struct stat spool {};
  if (geteuid() == 0 && stat(options.spool_dir.c_str(), &spool) == 0 &&
      (spool.st_mode & S_IXOTH) == 0) {
    return Error(Code::kInvalidArgument,
                 options.spool_dir + " must be searchable by job owners (chmod o+x)");
  }
  return std::unique_ptr<PosixLauncher>(new PosixLauncher(std::move(options)));
}

std::string PosixLauncher::AttemptDir(const AttemptKey& key) const {
  return options_.spool_dir + "/jobs/" + AttemptName(key);
}

Result<int> PosixLauncher::RemoveLeftovers() {
  std::error_code ec;
  int removed = 0;
  const fs::path jobs = fs::path(options_.spool_dir) / "jobs";
  for (fs::directory_iterator it(jobs, ec), end; !ec && it != end; it.increment(ec)) {
    fs::remove_all(it->path(), ec);
    if (ec)
      return Error(Code::kInternal, "cannot remove " + it->path().string() + ": " + ec.message());
    ++removed;
  }
  if (ec) return Error(Code::kInternal, "cannot list " + jobs.string() + ": " + ec.message());
  return removed;
}

Result<pid_t> PosixLauncher::Launch(const Job& job) {
  const AttemptKey key{job.id, job.attempt};
  const JobSpec& spec = job.spec;
  if (running_.contains(key)) {
    return Error(Code::kFailedPrecondition, "attempt " + AttemptName(key) + " already runs");
  }
  // Without root the job can only run as the execd's own user (a one-user test cluster).
  const bool as_root = geteuid() == 0;
  ChildPlan plan;
  plan.uid = as_root ? job.uid : geteuid();
  plan.gid = as_root ? job.gid : getegid();
  const JobUser user = LookupUser(plan.uid);
  plan.switch_user = as_root && job.uid != 0;
  plan.login = !user.name.empty() ? user.name : job.owner;
  if (plan.switch_user && plan.login.empty()) {
    return Error(Code::kFailedPrecondition, "unknown user id " + std::to_string(job.uid));
  }
  if (spec.binary && spec.args.empty()) {
    return Error(Code::kInvalidArgument, "binary job without a command");
  }

  // Spool: a fresh directory per attempt; one of an earlier execd with the same name is stale.
  const std::string dir = AttemptDir(key);
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (mkdir(dir.c_str(), 0711) != 0 && errno != EEXIST) {
    return Error(Code::kInternal, "cannot create " + dir + ": " + Errno(errno));
  }
  JobFiles files;
  files.tmpdir = dir + "/tmp";
  if (mkdir(files.tmpdir.c_str(), 0700) != 0 ||
      (as_root && chown(files.tmpdir.c_str(), plan.uid, plan.gid) != 0)) {
    return Error(Code::kInternal, "cannot create " + files.tmpdir + ": " + Errno(errno));
  }
  const std::string script = dir + "/script";
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
  files.stdout_path = ResolveOutputPath(spec.stdout_path, 'o', job, user, host, is_directory);
  files.stderr_path = spec.join
                          ? files.stdout_path
                          : ResolveOutputPath(spec.stderr_path, 'e', job, user, host, is_directory);
  for (const auto& [name, value] : BuildJobEnvironment(job, user, host, files)) {
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

  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) {
    return Error(Code::kUnavailable, "cannot create a pipe: " + Errno(errno));
  }
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(status_pipe[0]);
    close(status_pipe[1]);
    return Error(Code::kUnavailable, "cannot fork: " + Errno(err));
  }
  if (pid == 0) {
    close(status_pipe[0]);
    RunChild(plan, status_pipe[1]);
  }
  close(status_pipe[1]);
  // Blocks until the child has exec'd or failed: both follow at once, as the child does
  // nothing slow before exec (a hanging NFS cwd would hang us too; a shepherd fixes that).
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
  if (!failure.empty()) {
    // The child has written its reason and is exiting; reap it here, since nothing will
    // report on it later.
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return Error(Code::kFailedPrecondition, failure);
  }
  running_[key] = pid;
  return pid;
}

bool PosixLauncher::Kill(const AttemptKey& key) {
  const auto it = running_.find(key);
  if (it == running_.end()) return false;
  kill(-it->second, SIGKILL);
  return true;
}

std::vector<AttemptEnd> PosixLauncher::Reap() {
  std::vector<AttemptEnd> ended;
  for (auto it = running_.begin(); it != running_.end();) {
    const pid_t pid = it->second;
    siginfo_t info{};
    const bool peeked = waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
    if (peeked && info.si_pid == 0) {
      ++it;  // still running
      continue;
    }
    // The leader has ended but is not reaped yet, so its pid (= the pgid) cannot have been
    // reused: kill what it left behind in its group, so that the cores the scheduler now
    // considers free really are.
    if (peeked) kill(-pid, SIGKILL);
    AttemptEnd end;
    end.key = it->first;
    int status = 0;
    rusage usage{};
    if (wait4(pid, &status, WNOHANG, &usage) == pid) {
      if (WIFSIGNALED(status)) {
        end.signal = WTERMSIG(status);
        end.exit_code = 128 + end.signal;
      } else {
        end.exit_code = WEXITSTATUS(status);
      }
      end.cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 +
                   (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000;
      end.max_rss_kb = usage.ru_maxrss;
    } else {
      // Only if someone else reaped our child (ECHILD): its status is lost. Report a failure
      // exit rather than tracking a process that no longer exists.
      end.exit_code = 1;
    }
    ended.push_back(end);
    it = running_.erase(it);
  }
  return ended;
}

Status PosixLauncher::Release(const AttemptKey& key) {
  // The attempt's files go as soon as the scheduler has its exit: output lives in the job's
  // cwd, and the spool holds only the script copy and TMPDIR, which Grid Engine also deletes
  // at job end. Keeping them until the ack (not the exit) leaves them for a look while the
  // exit is in flight, at no cost.
  std::error_code ec;
  fs::remove_all(AttemptDir(key), ec);
  if (ec) return Error(Code::kInternal, "cannot remove " + AttemptDir(key) + ": " + ec.message());
  return OkStatus();
}

}  // namespace corral
