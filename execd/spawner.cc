// The spawner process (RunSpawner: corral-spawner's main, or a fork of a test's launcher) and
// the execd's end of it, and the ShepherdPlan wire format.
// Execd -> spawner: a frame [u32 length][plan bytes] per attempt, with the job's report pipe
// attached (SCM_RIGHTS) to its first byte. Spawner -> execd: 9-byte records [type][i32][i32]:
// 'S' pid (started), 'F' errno (not started), 'X' pid status (a shepherd it reaped), in the
// order they happened; a plan's answer ('S'/'F') always precedes its shepherd's 'X'.
#include "execd/spawner.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>

#include "execd/spool.h"

extern char** environ;

namespace corral {
namespace {

constexpr uint8_t kPlanVersion = 1;
constexpr size_t kMaxPlanBytes = 64u << 20;  // far above ARG_MAX's worth of argv + env
constexpr size_t kRecordBytes = 9;
constexpr int64_t kAnswerTimeoutMs = 10000;  // a fork; past this the spawner is stuck

// ---- plan encoding ----------------------------------------------------------------------

class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void I64(int64_t v) {
    for (int i = 0; i < 8; ++i)
      out_.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff));
  }
  void Str(const std::string& s) {
    I64(static_cast<int64_t>(s.size()));
    out_ += s;
  }
  void Strs(const std::vector<std::string>& v) {
    I64(static_cast<int64_t>(v.size()));
    for (const std::string& s : v) Str(s);
  }
  template <typename T>
  void Ints(const std::vector<T>& v) {
    I64(static_cast<int64_t>(v.size()));
    for (T x : v) I64(static_cast<int64_t>(x));
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads what Writer wrote; the first failure sticks and names its field.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  uint8_t U8(const char* field) {
    if (!Need(1, field)) return 0;
    return static_cast<uint8_t>(in_[at_++]);
  }
  int64_t I64(const char* field) {
    if (!Need(8, field)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[at_ + i])) << (8 * i);
    at_ += 8;
    return static_cast<int64_t>(v);
  }
  std::string Str(const char* field) {
    const int64_t n = I64(field);
    if (n < 0 || !Need(static_cast<size_t>(n), field)) return Fail(field), std::string();
    std::string s(in_.substr(at_, static_cast<size_t>(n)));
    at_ += static_cast<size_t>(n);
    return s;
  }
  std::vector<std::string> Strs(const char* field) {
    std::vector<std::string> v;
    const int64_t n = Count(8, field);
    for (int64_t i = 0; i < n && error_.empty(); ++i) v.push_back(Str(field));
    return v;
  }
  template <typename T>
  std::vector<T> Ints(const char* field) {
    std::vector<T> v;
    const int64_t n = Count(8, field);
    for (int64_t i = 0; i < n && error_.empty(); ++i) v.push_back(static_cast<T>(I64(field)));
    return v;
  }
  void End() {
    if (error_.empty() && at_ != in_.size()) error_ = "trailing bytes after the plan";
  }
  const std::string& error() const { return error_; }
  void Fail(const char* field) {
    if (error_.empty()) error_ = std::string("truncated or invalid field '") + field + "'";
  }

 private:
  bool Need(size_t n, const char* field) {
    if (!error_.empty()) return false;
    if (in_.size() - at_ < n) {
      Fail(field);
      return false;
    }
    return true;
  }
  // A count of items of at least `min_bytes` each: never more than the bytes left could hold.
  int64_t Count(size_t min_bytes, const char* field) {
    const int64_t n = I64(field);
    if (n < 0 || static_cast<uint64_t>(n) > (in_.size() - at_) / min_bytes) {
      Fail(field);
      return 0;
    }
    return n;
  }

  std::string_view in_;
  size_t at_ = 0;
  std::string error_;
};

// ---- the spawner process ----------------------------------------------------------------

// Sends one record to the execd; a gone execd ends the spawner (its shepherds carry on).
void SendRecord(int sock, char type, int32_t a, int32_t b) {
  char rec[kRecordBytes];
  rec[0] = type;
  std::memcpy(rec + 1, &a, 4);
  std::memcpy(rec + 5, &b, 4);
  size_t sent = 0;
  while (sent < sizeof(rec)) {
    const ssize_t n = send(sock, rec + sent, sizeof(rec) - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      _exit(0);
    }
  }
}

// Reads exactly `len` bytes (the first read may carry a descriptor into `fd`). False at EOF
// or on an error: the execd is gone.
bool ReceiveExactly(int sock, char* buf, size_t len, int* fd) {
  size_t got = 0;
  while (got < len) {
    iovec iov{buf + got, len - got};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int received = -1;
        std::memcpy(&received, CMSG_DATA(c), sizeof(int));
        if (fd != nullptr && *fd < 0) {
          *fd = received;
        } else {
          close(received);
        }
      }
    }
    got += static_cast<size_t>(n);
  }
  return true;
}

// Receives one plan and forks its shepherd, answering 'S' or 'F'.
void StartOne(int sock, const Clock* clock) {
  uint32_t len = 0;
  int report_fd = -1;
  if (!ReceiveExactly(sock, reinterpret_cast<char*>(&len), sizeof(len), &report_fd)) _exit(0);
  std::string bytes(len <= kMaxPlanBytes ? len : 0, '\0');
  if (len > kMaxPlanBytes || !ReceiveExactly(sock, bytes.data(), bytes.size(), &report_fd)) {
    _exit(len > kMaxPlanBytes ? 1 : 0);  // out of step with the execd: it restarts us
  }
  Result<ShepherdPlan> plan = DecodeShepherdPlan(bytes);
  if (!plan || report_fd < 0) {
    std::fprintf(stderr, "corral-spawner: refusing a plan: %s\n",
                 plan ? "no report pipe attached" : plan.error().message().c_str());
    if (report_fd >= 0) close(report_fd);
    SendRecord(sock, 'F', EINVAL, 0);
    return;
  }
  plan->clock = clock;
  const pid_t pid = fork();
  if (pid == 0) RunShepherd(*plan, report_fd);  // closes everything but the report pipe
  const int err = errno;
  close(report_fd);
  if (pid < 0) {
    SendRecord(sock, 'F', err, 0);
  } else {
    SendRecord(sock, 'S', pid, 0);
  }
}

}  // namespace

[[noreturn]] void RunSpawner(int sock, const Clock* clock) {
  prctl(PR_SET_NAME, "corral-spawner", 0, 0, 0);
  // Nothing of the execd's stays open here but stdio (its log): the socket goes to fd 3.
  if (sock != kSpawnerSocketFd) {
    dup2(sock, kSpawnerSocketFd);
    sock = kSpawnerSocketFd;
  }
  if (close_range(kSpawnerSocketFd + 1, ~0U, 0) != 0) {
    for (int fd = kSpawnerSocketFd + 1; fd < 1024; ++fd) close(fd);
  }
  (void)BootId();  // read once here rather than by every shepherd (they inherit it)
  // SIGCHLD is read from a signalfd; a terminal's SIGINT/SIGHUP is for the execd, which
  // closes the socket if it stops. SIGTERM (or any other kill) ends the spawner: the execd
  // notices and starts another.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  const int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  ResetSignalDispositions();  // once here rather than in every shepherd
  if (sfd < 0) _exit(1);
  for (;;) {
    pollfd items[2] = {{sock, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (poll(items, 2, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    if (items[1].revents & POLLIN) {
      signalfd_siginfo info;
      while (read(sfd, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      }
      int status = 0;
      pid_t pid = 0;
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0) SendRecord(sock, 'X', pid, status);
    }
    if (items[0].revents & (POLLIN | POLLHUP | POLLERR)) StartOne(sock, clock);
  }
}

Result<int> OpenSpawnerProgram(const std::string& program) {
  const int fd = open(program.c_str(), O_RDONLY | O_CLOEXEC);
  // Above the socket's place: the dup2 that puts the socket there would replace it.
  const int moved = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, kSpawnerSocketFd + 1) : -1;
  const int err = errno;
  if (fd >= 0) close(fd);
  if (moved < 0) {
    return Error(Code::kUnavailable,
                 "cannot open the spawner " + program + ": " + std::strerror(err));
  }
  return moved;
}

Result<std::string> SpawnerBesideSelf() {
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    return Error(Code::kNotFound,
                 std::string("cannot read /proc/self/exe to find corral-spawner: ") +
                     std::strerror(errno));
  }
  std::string path(self, static_cast<size_t>(n));
  path = path.substr(0, path.rfind('/') + 1) + "corral-spawner";
  if (access(path.c_str(), X_OK) != 0) {
    return Error(Code::kNotFound, path + ": " + std::strerror(errno) +
                                      " (corral-spawner must be installed next to corral-execd)");
  }
  return path;
}

std::string EncodeShepherdPlan(const ShepherdPlan& plan) {
  Writer w;
  w.U8(kPlanVersion);
  w.I64(plan.key.job_id);
  w.I64(plan.key.attempt);
  w.I64(plan.key.task);
  for (const std::string* s : {&plan.paths.dir, &plan.paths.script, &plan.paths.tmpdir,
                               &plan.paths.shepherd_pid, &plan.paths.job_pgid, &plan.paths.exit}) {
    w.Str(*s);
  }
  const JobPlan& job = plan.job;
  w.U8(job.switch_user ? 1 : 0);
  w.Str(job.login);
  w.I64(job.uid);
  w.I64(job.gid);
  w.Ints(job.groups);
  w.Str(job.cwd);
  w.Str(job.stdout_path);
  w.Str(job.stderr_path);
  w.U8(job.join ? 1 : 0);
  w.U8(job.search_path ? 1 : 0);
  w.Strs(job.argv);
  w.Strs(job.sh_argv);
  w.Strs(job.env);
  w.Ints(job.cpus);
  w.I64(plan.h_rt_ms);
  w.I64(plan.kill_grace_ms);
  w.I64(plan.mem_limit_bytes);
  w.U8(static_cast<uint8_t>(plan.memory));
  w.Str(plan.cgroup_dir);
  w.I64(plan.sample_interval_ms);
  w.Str(plan.gpu_fence.cgroup_dir);
  w.Strs(plan.gpu_fence.deny);
  return w.Take();
}

Result<ShepherdPlan> DecodeShepherdPlan(std::string_view bytes) {
  Reader r(bytes);
  ShepherdPlan plan;
  if (r.U8("version") != kPlanVersion && r.error().empty()) {
    return Error(Code::kInvalidArgument, "shepherd plan: unknown version");
  }
  plan.key.job_id = r.I64("key.job_id");
  plan.key.attempt = static_cast<int>(r.I64("key.attempt"));
  plan.key.task = r.I64("key.task");
  for (std::string* s : {&plan.paths.dir, &plan.paths.script, &plan.paths.tmpdir,
                         &plan.paths.shepherd_pid, &plan.paths.job_pgid, &plan.paths.exit}) {
    *s = r.Str("paths");
  }
  JobPlan& job = plan.job;
  job.switch_user = r.U8("job.switch_user") != 0;
  job.login = r.Str("job.login");
  job.uid = static_cast<uid_t>(r.I64("job.uid"));
  job.gid = static_cast<gid_t>(r.I64("job.gid"));
  job.groups = r.Ints<gid_t>("job.groups");
  job.cwd = r.Str("job.cwd");
  job.stdout_path = r.Str("job.stdout_path");
  job.stderr_path = r.Str("job.stderr_path");
  job.join = r.U8("job.join") != 0;
  job.search_path = r.U8("job.search_path") != 0;
  job.argv = r.Strs("job.argv");
  job.sh_argv = r.Strs("job.sh_argv");
  job.env = r.Strs("job.env");
  job.cpus = r.Ints<int>("job.cpus");
  plan.h_rt_ms = r.I64("h_rt_ms");
  plan.kill_grace_ms = r.I64("kill_grace_ms");
  plan.mem_limit_bytes = r.I64("mem_limit_bytes");
  const uint8_t memory = r.U8("memory");
  if (memory > static_cast<uint8_t>(MemoryMechanism::kCgroupV2)) r.Fail("memory");
  plan.memory = static_cast<MemoryMechanism>(memory);
  plan.cgroup_dir = r.Str("cgroup_dir");
  plan.sample_interval_ms = r.I64("sample_interval_ms");
  plan.gpu_fence.cgroup_dir = r.Str("gpu_fence.cgroup_dir");
  plan.gpu_fence.deny = r.Strs("gpu_fence.deny");
  r.End();
  if (!r.error().empty()) return Error(Code::kInvalidArgument, "shepherd plan: " + r.error());
  if (job.argv.empty()) return Error(Code::kInvalidArgument, "shepherd plan: no argv");
  return plan;
}

// ---- the execd's end ----------------------------------------------------------------------

Result<std::unique_ptr<Spawner>> Spawner::Start(const Clock* clock, const std::string& program,
                                                int program_fd) {
  if (clock == nullptr && program.empty()) {
    return Error(Code::kInvalidArgument, "spawner: no clock");
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return Error(Code::kUnavailable, std::string("spawner: socketpair: ") + std::strerror(errno));
  }
  if (!program.empty()) return Exec(program, program_fd, sv);
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(sv[0]);
    close(sv[1]);
    return Error(Code::kUnavailable, std::string("spawner: fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    // A copy of this process, possibly threaded (a restart): as in a shepherd, the only locks
    // taken are malloc's, which glibc resets in the child of fork.
    try {
      close(sv[0]);
      RunSpawner(sv[1], clock);
    } catch (...) {
      _exit(1);
    }
  }
  close(sv[1]);
  return std::unique_ptr<Spawner>(new Spawner(sv[0], pid));
}

Result<std::unique_ptr<Spawner>> Spawner::Exec(const std::string& program, int program_fd,
                                               const int sv[2]) {
  // The child's end goes to kSpawnerSocketFd by a dup2, which clears close-on-exec; one
  // already there would keep it, so it is moved out of the way first.
  int child_end = sv[1];
  if (child_end == kSpawnerSocketFd) {
    child_end = fcntl(sv[1], F_DUPFD_CLOEXEC, kSpawnerSocketFd + 1);
    close(sv[1]);
    if (child_end < 0) {
      close(sv[0]);
      return Error(Code::kUnavailable, std::string("spawner: dup: ") + std::strerror(errno));
    }
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_end, kSpawnerSocketFd);
  std::string argv0 = program;
  char* argv[] = {argv0.data(), nullptr};
  pid_t pid = 0;
  // The file opened earlier, by its descriptor (close-on-exec: the kernel opens the binary
  // before it closes those), else the path.
  const std::string file =
      program_fd >= 0 ? "/proc/self/fd/" + std::to_string(program_fd) : program;
  // A vfork and an exec: cheap from a process of any size, safe from a threaded one.
  const int err = posix_spawn(&pid, file.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(child_end);
  if (err != 0) {
    close(sv[0]);
    return Error(Code::kUnavailable,
                 "cannot start the spawner " + program + ": " + std::strerror(err));
  }
  return std::unique_ptr<Spawner>(new Spawner(sv[0], pid));
}

Spawner::~Spawner() {
  close(fd_);
  // Idle: every plan it was given has been answered, and its shepherds do not depend on it.
  kill(pid_, SIGKILL);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

SpawnOutcome Spawner::Spawn(const ShepherdPlan& plan, int report_fd) {
  SpawnOutcome answer;
  if (!alive_) {
    answer = {SpawnOutcome::Kind::kNotStarted, 0, "the spawner is not running"};
    answer.exits_before = std::exchange(exits_, {});
    return answer;
  }
  const std::string payload = EncodeShepherdPlan(plan);
  uint32_t len = static_cast<uint32_t>(payload.size());
  iovec iov[2] = {{&len, sizeof(len)}, {const_cast<char*>(payload.data()), payload.size()}};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &report_fd, sizeof(int));
  const size_t total = sizeof(len) + payload.size();
  size_t sent = 0;
  for (;;) {
    ssize_t n = 0;
    if (sent == 0) {
      n = sendmsg(fd_, &msg, MSG_NOSIGNAL);
    } else {
      const size_t body = sent - sizeof(len);  // the header always goes in the first call
      n = send(fd_, payload.data() + body, payload.size() - body, MSG_NOSIGNAL);
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // A spawner acts on whole frames only: with this one incomplete, nothing was started.
      alive_ = false;
      answer = {SpawnOutcome::Kind::kNotStarted, 0,
                std::string("the spawner is gone: ") + std::strerror(errno)};
      answer.exits_before = std::exchange(exits_, {});
      return answer;
    }
    sent += static_cast<size_t>(n);
    if (sent >= total) break;
    if (sent < sizeof(len)) {  // never seen on a stream socket: stop using this spawner
      kill(pid_, SIGKILL);
      alive_ = false;
      answer = {SpawnOutcome::Kind::kUnknown, 0, "short write of a frame header"};
      answer.exits_before = std::exchange(exits_, {});
      return answer;
    }
  }
  const int64_t deadline = MonotonicNowMs() + kAnswerTimeoutMs;
  while (!ReadRecords(/*block=*/true, &answer)) {
    if (!alive_) {
      answer = {SpawnOutcome::Kind::kUnknown, 0, "the spawner died while starting the shepherd"};
      break;
    }
    if (MonotonicNowMs() >= deadline) {
      // Stuck (stopped, or worse): it is killed, and treated as having died with the plan.
      kill(pid_, SIGKILL);
      alive_ = false;
      answer = {SpawnOutcome::Kind::kUnknown, 0, "the spawner did not answer; killed"};
      break;
    }
  }
  // ReadRecords stops parsing at the answer: exits_ holds exactly those reported before it.
  answer.exits_before = std::exchange(exits_, {});
  return answer;
}

bool Spawner::HasBufferedRecords() const { return in_.size() >= kRecordBytes || !exits_.empty(); }

std::vector<ShepherdExit> Spawner::TakeExits() {
  ReadRecords(/*block=*/false, nullptr);
  return std::exchange(exits_, {});
}

bool Spawner::ReadRecords(bool block, SpawnOutcome* answer) {
  // An answer pending in the buffer is taken before reading more.
  auto parse = [&]() -> bool {  // true once `answer` is filled
    while (in_.size() >= kRecordBytes) {
      const char type = in_[0];
      int32_t a = 0;
      int32_t b = 0;
      std::memcpy(&a, in_.data() + 1, 4);
      std::memcpy(&b, in_.data() + 5, 4);
      if ((type == 'S' || type == 'F') && answer == nullptr) return false;  // not ours yet
      in_.erase(0, kRecordBytes);
      if (type == 'X') {
        exits_.push_back({a, b});
      } else if (type == 'S') {
        *answer = {SpawnOutcome::Kind::kStarted, a, ""};
        return true;
      } else if (type == 'F') {
        *answer = {SpawnOutcome::Kind::kNotStarted, -1,
                   std::string("cannot start a shepherd: ") + std::strerror(a)};
        return true;
      }
    }
    return false;
  };
  if (parse()) return true;
  if (!alive_) return false;
  if (block) {
    pollfd item{fd_, POLLIN, 0};
    if (poll(&item, 1, 100) <= 0) return false;  // the caller checks its deadline
  }
  char buf[4096];
  // Until EAGAIN, not just a short read: a spawner that sent its last exits and died has left
  // an EOF behind them, and its death is noticed with them, in the same call.
  for (;;) {
    const ssize_t n = recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) alive_ = false;
    break;
  }
  return parse();
}

}  // namespace corral
