// The spawner (execd/spawner.h): the ShepherdPlan wire format, and what a launcher does when
// its spawner dies, with real processes. A killed spawner must lose no attempt: its running
// shepherds are re-attached, the exits it reported stay reported, and the next Launch gets
// a new spawner. The process cases run twice: with corral-spawner exec'd, as the execd
// does (the binary is built beside this one, in build/bin), and with a forked spawner, as
// a launcher with its own clock has. Every wait is bounded by a deadline; no test sleeps.
#include "execd/spawner.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "execd/launcher.h"
#include "execd/shepherd.h"
#include "execd/spool.h"
#include "temp_dir.h"
#include "test_files.h"
#include "tests/unit/launcher_wait.h"

namespace corral {
using corral::testing::PauseMs;
using corral::testing::TempDir;

namespace {

constexpr int64_t kDeadlineMs = 5000;

bool WaitFor(const std::function<bool()>& done) {
  const int64_t deadline = MonotonicNowMs() + kDeadlineMs;
  while (!done()) {
    if (MonotonicNowMs() >= deadline) return false;
    PauseMs(2);
  }
  return true;
}

bool Gone(pid_t pid) {
  Result<std::string> stat = ReadSmallFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  const size_t paren = stat->rfind(')');
  return paren + 2 < stat->size() && ((*stat)[paren + 2] == 'Z' || (*stat)[paren + 2] == 'X');
}

ShepherdPlan FullPlan() {
  ShepherdPlan plan;
  plan.key = {42, 3, 7};
  plan.paths = PathsOf("/var/spool/corral", plan.key);
  plan.job.switch_user = true;
  plan.job.login = "alice";
  plan.job.uid = 1001;
  plan.job.gid = 1002;
  plan.job.groups = {1002, 27, 100};
  plan.job.cwd = "/home/alice/run";
  plan.job.stdout_path = "/home/alice/run/a.o42";
  plan.job.stderr_path = "/home/alice/run/a.e42";
  plan.job.join = true;
  plan.job.search_path = true;
  plan.job.argv = {"/bin/echo", "two words", ""};
  plan.job.sh_argv = {"/bin/sh", "script"};
  plan.job.env = {"A=1", "B=x=y", std::string("C=") + std::string(3000, 'z')};
  plan.job.cpus = {0, 3};
  plan.h_rt_ms = 60000;
  plan.kill_grace_ms = 250;
  plan.mem_limit_bytes = int64_t{5} << 30;
  plan.memory = MemoryMechanism::kCgroupV1;
  plan.cgroup_dir = "/sys/fs/cgroup/memory/corral/n/42.7.3";
  plan.sample_interval_ms = 99;
  plan.gpu_fence.cgroup_dir = "/sys/fs/cgroup/devices/corral/n/42.7.3";
  plan.gpu_fence.deny = {"c 195:1 rwm", "c 195:2 rwm"};
  return plan;
}

struct Launched {
  std::unique_ptr<PosixLauncher> launcher;
  std::shared_ptr<std::vector<std::string>> log = std::make_shared<std::vector<std::string>>();
};

// `program`: the spawner to exec; empty: a fork of this process.
Launched MakeLauncher(const std::string& spool, const std::string& program) {
  Launched out;
  auto log = out.log;
  Result<std::unique_ptr<PosixLauncher>> launcher =
      PosixLauncher::Create({.spool_dir = spool,
                             .host = {"node7", "host7"},
                             .spawner_program = program,
                             .log = [log](const std::string& line) { log->push_back(line); }});
  REQUIRE_MESSAGE(launcher.has_value(), launcher.error().message());
  out.launcher = std::move(*launcher);
  return out;
}

Job MakeJob(JobId id, const std::string& script, const std::string& cwd) {
  Job job;
  job.id = id;
  job.attempt = 1;
  job.uid = getuid();
  job.gid = getgid();
  job.spec.name = "s" + std::to_string(id);
  job.spec.script = script;
  job.spec.cwd = cwd;
  return job;
}

// Kills the launcher's spawner and waits until it is dead (a zombie until the launcher
// notices and reaps it).
void KillSpawner(PosixLauncher& launcher) {
  const pid_t spawner = launcher.SpawnerPid();
  REQUIRE(spawner > 0);
  REQUIRE(kill(spawner, SIGKILL) == 0);
  REQUIRE(WaitFor([&] { return Gone(spawner); }));
}

class StoppedClock final : public Clock {
 public:
  TimeMs Now() const override { return 1; }
};

// The corral-spawner built beside this test binary.
std::string BuiltSpawner() {
  Result<std::string> path = SpawnerBesideSelf();
  REQUIRE_MESSAGE(path.has_value(), path.error().message());
  return *path;
}

// Which spawner a process case runs with: one doctest subcase each (see the top).
std::string SpawnerMode() {
  std::string program;
  SUBCASE("corral-spawner exec'd") { program = BuiltSpawner(); }
  SUBCASE("a fork of this process") {}
  return program;
}

bool Logged(const std::vector<std::string>& log, const std::string& part) {
  for (const std::string& line : log) {
    if (line.find(part) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("spawner: a shepherd plan round-trips field by field") {
  const ShepherdPlan plan = FullPlan();
  Result<ShepherdPlan> back = DecodeShepherdPlan(EncodeShepherdPlan(plan));
  REQUIRE_MESSAGE(back.has_value(), back.error().message());
  CHECK(back->key == plan.key);
  CHECK(back->paths.dir == plan.paths.dir);
  CHECK(back->paths.script == plan.paths.script);
  CHECK(back->paths.tmpdir == plan.paths.tmpdir);
  CHECK(back->paths.shepherd_pid == plan.paths.shepherd_pid);
  CHECK(back->paths.job_pgid == plan.paths.job_pgid);
  CHECK(back->paths.exit == plan.paths.exit);
  CHECK(back->job.switch_user);
  CHECK(back->job.login == "alice");
  CHECK(back->job.uid == 1001);
  CHECK(back->job.gid == 1002);
  CHECK(back->job.groups == plan.job.groups);
  CHECK(back->job.cwd == plan.job.cwd);
  CHECK(back->job.stdout_path == plan.job.stdout_path);
  CHECK(back->job.stderr_path == plan.job.stderr_path);
  CHECK(back->job.join);
  CHECK(back->job.search_path);
  CHECK(back->job.argv == plan.job.argv);
  CHECK(back->job.sh_argv == plan.job.sh_argv);
  CHECK(back->job.env == plan.job.env);
  CHECK(back->job.cpus == plan.job.cpus);
  CHECK(back->h_rt_ms == 60000);
  CHECK(back->kill_grace_ms == 250);
  CHECK(back->mem_limit_bytes == plan.mem_limit_bytes);
  CHECK(back->memory == MemoryMechanism::kCgroupV1);
  CHECK(back->cgroup_dir == plan.cgroup_dir);
  CHECK(back->sample_interval_ms == 99);
  CHECK(back->gpu_fence.cgroup_dir == plan.gpu_fence.cgroup_dir);
  CHECK(back->gpu_fence.deny == plan.gpu_fence.deny);
  CHECK(back->clock == nullptr);  // never travels: the spawner sets its own
}

TEST_CASE("spawner: a truncated, extended or corrupt plan is refused, never half-read") {
  const std::string bytes = EncodeShepherdPlan(FullPlan());
  for (size_t n = 0; n < bytes.size(); ++n) {
    Result<ShepherdPlan> cut = DecodeShepherdPlan(std::string_view(bytes).substr(0, n));
    REQUIRE_FALSE(cut.has_value());
    CHECK(cut.error().code() == Code::kInvalidArgument);
  }
  Result<ShepherdPlan> longer = DecodeShepherdPlan(bytes + "x");
  REQUIRE_FALSE(longer.has_value());
  CHECK(longer.error().message().find("trailing") != std::string::npos);

  std::string version = bytes;
  version[0] = 99;
  CHECK_FALSE(DecodeShepherdPlan(version).has_value());
  // The first string's length (paths.dir, after the version and three keys) made huge.
  std::string huge = bytes;
  for (int i = 0; i < 8; ++i) huge[1 + 24 + i] = static_cast<char>(i == 7 ? 0x7f : 0xff);
  Result<ShepherdPlan> bad = DecodeShepherdPlan(huge);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message().find("paths") != std::string::npos);

  ShepherdPlan no_argv = FullPlan();
  no_argv.job.argv.clear();
  CHECK_FALSE(DecodeShepherdPlan(EncodeShepherdPlan(no_argv)).has_value());
}

TEST_CASE("spawner: shepherds are the spawner's children, not the launcher's process's") {
  TempDir dir;
  Launched l = MakeLauncher(dir.path() + "/spool", SpawnerMode());
  const pid_t spawner = l.launcher->SpawnerPid();
  REQUIRE(spawner > 0);
  CHECK(spawner != getpid());
  Result<pid_t> shepherd = l.launcher->Launch(MakeJob(1, "#!/bin/sh\nexit 4\n", dir.path()));
  REQUIRE(shepherd.has_value());
  Result<std::string> stat = ReadSmallFile("/proc/" + std::to_string(*shepherd) + "/status");
  if (stat) {  // it may be gone already
    CHECK(stat->find("PPid:\t" + std::to_string(spawner) + "\n") != std::string::npos);
  }
  std::optional<AttemptEnd> end = WaitForEnd(*l.launcher, {1, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 4);
  CHECK(l.launcher->SpawnerPid() == spawner);
}

TEST_CASE("spawner: a job starts with no signal blocked or ignored, whatever the execd had") {
  TempDir dir;
  // As an execd does: signals blocked for its signalfd; and one ignored, for good measure.
  sigset_t blocked;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGUSR2);
  sigaddset(&blocked, SIGCHLD);
  sigset_t old_mask;
  REQUIRE(sigprocmask(SIG_BLOCK, &blocked, &old_mask) == 0);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old_usr1 {};
  REQUIRE(sigaction(SIGUSR1, &ignore, &old_usr1) == 0);
  Launched l = MakeLauncher(dir.path() + "/spool", SpawnerMode());
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGUSR1, &old_usr1, nullptr);

  Job job = MakeJob(11, "", dir.path());
  job.spec.binary = true;
  job.spec.args = {"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"};
  REQUIRE(l.launcher->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(*l.launcher, {11, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 0);
  Result<std::string> out = ReadSmallFile(dir.path() + "/s11.o11");
  REQUIRE(out.has_value());
  CHECK(*out == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
}

TEST_CASE("spawner: a killed spawner loses no job; the next launch starts a new spawner") {
  TempDir dir;
  const std::string spool = dir.path() + "/spool";
  const std::string fifo = dir.path() + "/go";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  const int go = open(fifo.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(go >= 0);
  Launched l = MakeLauncher(spool, SpawnerMode());
  PosixLauncher& launcher = *l.launcher;
  const pid_t first_spawner = launcher.SpawnerPid();

  // 1 waits for us; 2 ends at once, before the spawner dies, so its exit travels on the
  // spawner's socket (or, if not yet read, is found in the spool).
  REQUIRE(launcher.Launch(MakeJob(1, "#!/bin/sh\nread x < " + fifo + "\nexit 6\n", dir.path()))
              .has_value());
  REQUIRE(launcher.Launch(MakeJob(2, "#!/bin/sh\nexit 3\n", dir.path())).has_value());
  const std::string exit2 = PathsOf(spool, {2, 1}).exit;
  REQUIRE(WaitFor([&] { return ReadSmallFile(exit2).has_value(); }));
  KillSpawner(launcher);

  // The death is noticed, logged, and nothing is lost.
  std::optional<AttemptEnd> end2 = WaitForEnd(launcher, {2, 1});
  REQUIRE(end2.has_value());
  CHECK(end2->exit_code == 3);
  CHECK(end2->failure.empty());
  CHECK(Logged(*l.log, "the spawner (pid " + std::to_string(first_spawner) + ") died"));
  CHECK(launcher.RunningCount() == 1);  // 1, now watched through its pidfd
  CHECK(launcher.SpawnerPid() == 0);

  REQUIRE(write(go, "go\n", 3) == 3);
  std::optional<AttemptEnd> end1 = WaitForEnd(launcher, {1, 1});
  close(go);
  REQUIRE(end1.has_value());
  CHECK(end1->exit_code == 6);
  CHECK(end1->failure.empty());

  // A new spawner for the next job.
  REQUIRE(launcher.Launch(MakeJob(3, "#!/bin/sh\nexit 0\n", dir.path())).has_value());
  CHECK(launcher.SpawnerPid() > 0);
  CHECK(launcher.SpawnerPid() != first_spawner);
  CHECK(Logged(*l.log, "started a new spawner"));
  std::optional<AttemptEnd> end3 = WaitForEnd(launcher, {3, 1});
  REQUIRE(end3.has_value());
  CHECK(end3->exit_code == 0);
  CHECK(launcher.RunningCount() == 0);
  CHECK(launcher.Reap().empty());  // each end exactly once
}

TEST_CASE("spawner: a spawner killed while idle is replaced at the next launch, without a gap") {
  TempDir dir;
  Launched l = MakeLauncher(dir.path() + "/spool", SpawnerMode());
  PosixLauncher& launcher = *l.launcher;
  KillSpawner(launcher);  // not noticed yet: no Reap in between
  Result<pid_t> shepherd = launcher.Launch(MakeJob(9, "#!/bin/sh\nexit 2\n", dir.path()));
  REQUIRE_MESSAGE(shepherd.has_value(), shepherd.error().message());
  std::optional<AttemptEnd> end = WaitForEnd(launcher, {9, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 2);
  CHECK(Logged(*l.log, "died"));
  CHECK(Logged(*l.log, "started a new spawner"));
}

TEST_CASE("spawner: the execd's spawner is corral-spawner, exec'd, without the daemon's libraries") {
  TempDir dir;
  const std::string program = BuiltSpawner();
  Launched l = MakeLauncher(dir.path() + "/spool", program);
  const pid_t spawner = l.launcher->SpawnerPid();
  REQUIRE(spawner > 0);
  const std::string proc = "/proc/" + std::to_string(spawner);
  std::error_code ec;
  CHECK(std::filesystem::read_symlink(proc + "/exe", ec).string() == program);
  Result<std::string> maps = ReadSmallFile(proc + "/maps");
  REQUIRE(maps.has_value());
  CHECK(maps->find("libzmq") == std::string::npos);
  CHECK(maps->find("libsqlite3") == std::string::npos);
  CHECK(maps->find("yaml") == std::string::npos);
  Result<pid_t> shepherd = l.launcher->Launch(MakeJob(5, "#!/bin/sh\nexit 5\n", dir.path()));
  REQUIRE(shepherd.has_value());
  // In its loop now (it answered): nothing of this process leaks into it or its shepherds,
  // only stdio, its socket and its signalfd are open.
  std::vector<std::string> fds;
  for (const auto& entry : std::filesystem::directory_iterator(proc + "/fd")) {
    fds.push_back(entry.path().filename().string());
  }
  std::sort(fds.begin(), fds.end());
  CHECK(fds == std::vector<std::string>{"0", "1", "2", "3", "4"});
  std::optional<AttemptEnd> end = WaitForEnd(*l.launcher, {5, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 5);
  CHECK(end->start_time > 0);  // the system clock: an exec'd spawner has no other
}

TEST_CASE("spawner: a spawner started after an upgrade runs the program the launcher opened") {
  TempDir dir;
  const std::string program = dir.path() + "/corral-spawner";
  std::filesystem::copy_file(BuiltSpawner(), program);
  Launched l = MakeLauncher(dir.path() + "/spool", program);
  PosixLauncher& launcher = *l.launcher;
  // The installed file replaced by one that cannot run (a newer one could speak another plan
  // version): the next spawner must still be the file the launcher started with.
  REQUIRE(std::filesystem::remove(program));
  {
    std::ofstream junk(program);
    junk << "not a program\n";
  }
  REQUIRE(chmod(program.c_str(), 0755) == 0);
  KillSpawner(launcher);
  Result<pid_t> shepherd = launcher.Launch(MakeJob(8, "#!/bin/sh\nexit 8\n", dir.path()));
  REQUIRE_MESSAGE(shepherd.has_value(), shepherd.error().message());
  std::error_code ec;
  CHECK(std::filesystem::read_symlink("/proc/" + std::to_string(launcher.SpawnerPid()) + "/exe",
                                      ec)
            .string() == program + " (deleted)");
  std::optional<AttemptEnd> end = WaitForEnd(launcher, {8, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 8);
}

TEST_CASE("spawner: a missing corral-spawner, or one with a test's clock, is a clear error") {
  TempDir dir;
  Result<std::unique_ptr<PosixLauncher>> missing = PosixLauncher::Create(
      {.spool_dir = dir.path() + "/spool", .spawner_program = dir.path() + "/corral-spawner"});
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code() == Code::kUnavailable);
  CHECK(missing.error().message() == "cannot open the spawner " + dir.path() +
                                         "/corral-spawner: No such file or directory");
  const StoppedClock clock;
  Result<std::unique_ptr<PosixLauncher>> clocked =
      PosixLauncher::Create({.spool_dir = dir.path() + "/spool",
                             .clock = &clock,
                             .spawner_program = BuiltSpawner()});
  REQUIRE_FALSE(clocked.has_value());
  CHECK(clocked.error().code() == Code::kInvalidArgument);
}

// An exit the spawner reports while Launch waits for its answer is read with that answer:
// the socket then says nothing more, so the launcher must say an end is due (the execd's
// loop reaps at once). Before ReapDue the execd slept until some other job ended.
TEST_CASE("spawner: an exit read while the next job starts is due at once") {
  TempDir dir;
  Launched l = MakeLauncher(dir.path() + "/spool", SpawnerMode());
  REQUIRE(l.launcher->Launch(MakeJob(21, "#!/bin/sh\nexit 3\n", dir.path())).has_value());
  // Its exit record is in the socket, unread.
  auto readable = [&] {
    std::vector<pollfd> fds;
    for (int fd : l.launcher->WatchFds()) fds.push_back({fd, POLLIN, 0});
    return poll(fds.data(), fds.size(), 0) > 0;
  };
  REQUIRE(WaitFor(readable));
  CHECK_FALSE(l.launcher->ReapDue());
  REQUIRE(l.launcher->Launch(MakeJob(22, "#!/bin/sh\nexec sleep 60\n", dir.path())).has_value());
  CHECK_FALSE(readable());  // Launch took it off the socket ...
  CHECK(l.launcher->ReapDue());  // ... so the launcher itself must say so
  std::vector<AttemptEnd> ends = l.launcher->Reap();
  REQUIRE(ends.size() == 1);
  CHECK(ends[0].key == AttemptKey{21, 1});
  CHECK(ends[0].exit_code == 3);
  CHECK_FALSE(l.launcher->ReapDue());
  REQUIRE(l.launcher->Kill({22, 1}));
  REQUIRE(WaitForEnd(*l.launcher, {22, 1}).has_value());
}

}  // namespace corral
