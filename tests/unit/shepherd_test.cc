// Shepherds with real processes: the exit file they leave (exit, kill, start failure), the
// wall-clock limit (SIGTERM, then SIGKILL), and a launcher re-attaching to the spool after
// the execd "died" (its PosixLauncher destroyed while shepherds run on). Also the spool's
// file formats. Every wait is bounded by a deadline; no test sleeps.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "temp_dir.h"
#include "test_files.h"
#include "common/clock.h"
#include "execd/launcher.h"
#include "execd/spool.h"
#include "tests/unit/launcher_wait.h"

namespace corral {
using corral::testing::PauseMs;
using corral::testing::TempDir;

namespace {

namespace fs = std::filesystem;

constexpr int64_t kDeadlineMs = 5000;  // far above what any of these jobs needs
constexpr TimeMs kNow = 1'700'000'000'000;

class FixedClock final : public Clock {
 public:
  TimeMs Now() const override { return kNow; }
};
const FixedClock kClock;

bool WaitFor(const std::function<bool()>& done) {
  const int64_t deadline = MonotonicNowMs() + kDeadlineMs;
  while (!done()) {
    if (MonotonicNowMs() >= deadline) return false;
    PauseMs(2);
  }
  return true;
}

std::string Read(const std::string& path) {
  Result<std::string> text = ReadSmallFile(path);
  return text ? *text : "";
}

Job MakeJob(JobId id, const std::string& script, const std::string& cwd, int64_t h_rt_s = 0) {
  Job job;
  job.id = id;
  job.attempt = 1;
  job.uid = getuid();
  job.gid = getgid();
  job.spec.name = "j" + std::to_string(id);
  job.spec.script = script;
  job.spec.cwd = cwd;
  job.spec.h_rt_s = h_rt_s;
  return job;
}

std::unique_ptr<PosixLauncher> MakeLauncher(const std::string& spool) {
  Result<std::unique_ptr<PosixLauncher>> launcher = PosixLauncher::Create(
      {.spool_dir = spool, .host = {"node7", "host7"}, .kill_grace_ms = 200, .clock = &kClock});
  REQUIRE(launcher.has_value());
  return std::move(*launcher);
}

bool Gone(pid_t pid) {
  const std::string stat = Read("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  return stat.empty() ||
         (paren + 2 < stat.size() && (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X'));
}

// A shepherd forked by a launcher that no longer exists was its spawner's child, and went to
// init with it (which, in a container, may never reap it): wait until it has exited.
void WaitOrphanGone(pid_t pid) {
  CHECK(WaitFor([&] { return Gone(pid); }));
}

AttemptEnd ExitFileOf(const std::string& spool, const AttemptKey& key) {
  Result<AttemptEnd> end = ParseExitFile(Read(PathsOf(spool, key).exit), key);
  REQUIRE_MESSAGE(end.has_value(), end.error().message());
  return *end;
}

TEST_CASE("shepherd: the exit file records the job's code, times and usage") {
  TempDir dir;
  const std::string spool = dir.path() + "/spool";
  auto launcher = MakeLauncher(spool);
  Result<pid_t> shepherd = launcher->Launch(MakeJob(1, "#!/bin/sh\nexit 3\n", dir.path()));
  REQUIRE(shepherd.has_value());
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {1, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 3);
  CHECK(end->signal == 0);
  CHECK(end->start_time == kNow);
  CHECK(end->end_time == kNow);
  CHECK(end->max_rss_kb > 0);
  CHECK(end->failure.empty());
  CHECK(end->reason.empty());

  const AttemptPaths paths = PathsOf(spool, {1, 1});
  const AttemptEnd file = ExitFileOf(spool, {1, 1});
  CHECK(file.exit_code == 3);
  CHECK(file.cpu_ms == end->cpu_ms);
  CHECK(file.max_rss_kb == end->max_rss_kb);
  Result<ProcessId> recorded = ParseProcessId(Read(paths.shepherd_pid));
  REQUIRE(recorded.has_value());
  CHECK(recorded->pid == *shepherd);
  CHECK(recorded->start_ticks > 0);
  Result<ProcessId> leader = ParseProcessId(Read(paths.job_pgid));
  REQUIRE(leader.has_value());
  CHECK(leader->pid != *shepherd);  // the job's group is not the shepherd's
  CHECK_FALSE(fs::exists(paths.exit + ".tmp"));
  CHECK(Gone(*shepherd));
}

TEST_CASE("shepherd: a kill reaches the job's group; the shepherd survives to record 137/9") {
  TempDir dir;
  const std::string spool = dir.path() + "/spool";
  auto launcher = MakeLauncher(spool);
  const std::string pid_file = dir.path() + "/grandchild.pid";
  REQUIRE(launcher
              ->Launch(MakeJob(2,
                               "#!/bin/sh\nsleep 100 &\necho $! > " + pid_file + ".tmp\nmv " +
                                   pid_file + ".tmp " + pid_file + "\nwait\n",
                               dir.path()))
              .has_value());
  REQUIRE(WaitFor([&] { return fs::exists(pid_file); }));
  const pid_t grandchild = std::stoi(Read(pid_file));

  CHECK(launcher->Kill({2, 1}));
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {2, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 137);
  CHECK(end->signal == 9);
  CHECK(end->failure.empty());
  const AttemptEnd file = ExitFileOf(spool, {2, 1});
  CHECK(file.exit_code == 137);
  CHECK(file.signal == 9);
  CHECK(WaitFor([&] { return Gone(grandchild); }));
}

TEST_CASE("shepherd: a job that cannot be executed leaves its reason in the exit file") {
  TempDir dir;
  const std::string spool = dir.path() + "/spool";
  auto launcher = MakeLauncher(spool);
  Job job = MakeJob(3, "", dir.path());
  job.spec.binary = true;
  job.spec.args = {"/nonexistent/program", "x"};
  REQUIRE(launcher->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {3, 1});
  REQUIRE(end.has_value());
  const std::string why = "cannot execute /nonexistent/program: No such file or directory";
  CHECK(end->failure == why);
  CHECK(end->exit_code == 1);
  CHECK(ExitFileOf(spool, {3, 1}).failure == why);
}

TEST_CASE("shepherd: h_rt sends SIGTERM, then SIGKILL after the grace period") {
  TempDir dir;
  const std::string spool = dir.path() + "/spool";
  auto launcher = MakeLauncher(spool);  // grace 200 ms
  const std::string log = dir.path() + "/signals";
  // Survives SIGTERM (logging it), so that only the SIGKILL ends it.
  REQUIRE(
      launcher
          ->Launch(MakeJob(
              4, "#!/bin/sh\ntrap 'echo TERM >> " + log + "' TERM\nwhile :; do sleep 0.05; done\n",
              dir.path(), /*h_rt_s=*/1))
          .has_value());
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {4, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 137);
  CHECK(end->signal == 9);
  CHECK(end->reason == "wall time exceeded");
  CHECK(end->failure.empty());
  CHECK(Read(log).starts_with("TERM\n"));
  CHECK(ExitFileOf(spool, {4, 1}).reason == "wall time exceeded");
}

TEST_CASE("shepherd: a new launcher re-attaches to a running attempt and reports its end once") {
  TempDir dir;
  const std::string spool = dir.path() + "/spool";
  const std::string fifo = dir.path() + "/go";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  // O_RDWR never blocks on a FIFO, and keeps what we write until the job reads it.
  const int go = open(fifo.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(go >= 0);
  const std::string script = "#!/bin/sh\nread x < " + fifo +
                             "\ni=0\nwhile [ $i -lt 20000 ]; do i=$((i+1)); done\nexit 7\n";

  pid_t shepherd = 0;
  {
    auto first = MakeLauncher(spool);
    Result<pid_t> pid = first->Launch(MakeJob(5, script, dir.path()));
    REQUIRE(pid.has_value());
    shepherd = *pid;
  }  // the "execd" is gone; its shepherd is not

  auto second = MakeLauncher(spool);
  Result<Recovery> recovered = second->Recover();
  REQUIRE(recovered.has_value());
  CHECK(recovered->running == std::vector<AttemptKey>{{5, 1}});
  CHECK(recovered->ended.empty());
  CHECK(second->RunningCount() == 1);
  CHECK(second->WatchFds().size() == 2);  // its spawner's socket and the shepherd's pidfd
  CHECK_FALSE(second->NeedsPolling());
  CHECK(second->Reap().empty());

  const int64_t released_at = MonotonicNowMs();
  REQUIRE(write(go, "go\n", 3) == 3);
  std::optional<AttemptEnd> end = WaitForEnd(*second, {5, 1});
  MESSAGE("re-attached launcher saw the end " << MonotonicNowMs() - released_at
                                              << " ms after the job was let go");
  close(go);
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 7);
  CHECK(end->signal == 0);
  CHECK(end->cpu_ms >= 0);
  CHECK(end->max_rss_kb > 0);
  CHECK(end->start_time == kNow);
  CHECK(second->RunningCount() == 0);
  CHECK(second->Reap().empty());  // exactly once
  WaitOrphanGone(shepherd);
  CHECK(second->Release({5, 1}).ok());
  CHECK_FALSE(fs::exists(PathsOf(spool, {5, 1}).dir));
}

TEST_CASE("shepherd: an exit written while the execd was away is recovered as ended") {
  TempDir dir;
  const std::string spool = dir.path() + "/spool";
  pid_t shepherd = 0;
  {
    auto first = MakeLauncher(spool);
    Result<pid_t> pid = first->Launch(MakeJob(6, "#!/bin/sh\nexit 5\n", dir.path()));
    REQUIRE(pid.has_value());
    shepherd = *pid;
  }
  REQUIRE(WaitFor([&] { return fs::exists(PathsOf(spool, {6, 1}).exit); }));
  WaitOrphanGone(shepherd);

  auto second = MakeLauncher(spool);
  Result<Recovery> recovered = second->Recover();
  REQUIRE(recovered.has_value());
  CHECK(recovered->running.empty());
  REQUIRE(recovered->ended.size() == 1);
  CHECK(recovered->ended[0].key == AttemptKey{6, 1});
  CHECK(recovered->ended[0].exit_code == 5);
  CHECK(recovered->ended[0].end_time == kNow);
  CHECK(second->RunningCount() == 0);
  CHECK(second->Reap().empty());
  // The directory stays until the scheduler has the exit.
  CHECK(fs::exists(PathsOf(spool, {6, 1}).dir));
}

TEST_CASE("shepherd: a shepherd killed with SIGKILL makes its attempt lost, and its job goes") {
  TempDir dir;
  const std::string spool = dir.path() + "/spool";
  const std::string script = "#!/bin/sh\nsleep 100\n";
  auto first = MakeLauncher(spool);
  Result<pid_t> watched = first->Launch(MakeJob(7, script, dir.path()));
  Result<pid_t> orphaned = first->Launch(MakeJob(8, script, dir.path()));
  REQUIRE(watched.has_value());
  REQUIRE(orphaned.has_value());
  Result<ProcessId> job8 = ParseProcessId(Read(PathsOf(spool, {8, 1}).job_pgid));
  REQUIRE(job8.has_value());

  // While the execd runs: the shepherd is its child, reaped without an exit file.
  kill(*watched, SIGKILL);
  std::optional<AttemptEnd> end = WaitForEnd(*first, {7, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 1);
  CHECK(end->failure ==
        "lost: the shepherd of attempt 7.1 died without an exit status (killed by signal 9)");

  // While the execd is away: found at the next start.
  first.reset();
  kill(*orphaned, SIGKILL);
  WaitOrphanGone(*orphaned);
  auto second = MakeLauncher(spool);
  Result<Recovery> recovered = second->Recover();
  REQUIRE(recovered.has_value());
  CHECK(recovered->running.empty());
  REQUIRE(recovered->ended.size() == 2);  // 7.1 too: not yet released
  CHECK(recovered->ended[1].key == AttemptKey{8, 1});
  CHECK(recovered->ended[1].failure ==
        "lost: the shepherd of attempt 8.1 died without an exit status");
  // Nobody would report on its job any more: it was killed.
  CHECK(WaitFor([&] { return Gone(job8->pid); }));
}

// ---- spool formats ---------------------------------------------------------------------

TEST_CASE("shepherd: spool names and files round-trip; bad input is refused") {
  CHECK(ParseAttemptName("42.3") == AttemptKey{42, 3});
  CHECK_FALSE(ParseAttemptName("42").has_value());
  CHECK_FALSE(ParseAttemptName("042.3").has_value());
  CHECK_FALSE(ParseAttemptName("42.0").has_value());
  CHECK_FALSE(ParseAttemptName("42.3.tmp").has_value());
  CHECK_FALSE(ParseAttemptName("x.1").has_value());

  AttemptEnd end{.key = {9, 2},
                 .exit_code = 143,
                 .signal = 15,
                 .cpu_ms = 12,
                 .max_rss_kb = 3400,
                 .start_time = 100,
                 .end_time = 200,
                 .failure = "line one\nback\\slash",
                 .reason = "wall time exceeded"};
  Result<AttemptEnd> back = ParseExitFile(FormatExitFile(end), {9, 2});
  REQUIRE(back.has_value());
  CHECK(back->exit_code == 143);
  CHECK(back->signal == 15);
  CHECK(back->cpu_ms == 12);
  CHECK(back->max_rss_kb == 3400);
  CHECK(back->start_time == 100);
  CHECK(back->end_time == 200);
  CHECK(back->failure == end.failure);
  CHECK(back->reason == end.reason);
  CHECK(ParseExitFile("exit_code=0\nnew_field=1\n", {1, 1}).has_value());
  CHECK(ParseExitFile("signal=9\n", {1, 1}).error().code() == Code::kInvalidArgument);
  CHECK(ParseExitFile("exit_code=x\n", {1, 1}).error().code() == Code::kInvalidArgument);
  CHECK(ParseExitFile("exit_code=0\ngarbage\n", {1, 1}).error().message() == "line 2: no '='");

  const ProcessId id{1234, 5678, "abc-def"};
  CHECK(ParseProcessId(FormatProcessId(id)) == id);
  CHECK_FALSE(ParseProcessId("pid=0\n").has_value());
  Result<ProcessId> self = IdentifyProcess(getpid());
  REQUIRE(self.has_value());
  CHECK(StillRunning(*self));
  ProcessId reused = *self;
  reused.start_ticks += 1;  // same pid, another process
  CHECK_FALSE(StillRunning(reused));
}

TEST_CASE("shepherd: its records are the execd's alone (0600)") {
  TempDir dir;
  const std::string spool = dir.path() + "/spool";
  auto launcher = MakeLauncher(spool);
  REQUIRE(launcher->Launch(MakeJob(70, "#!/bin/sh\nexit 0\n", dir.path())).has_value());
  REQUIRE(WaitForEnd(*launcher, {70, 1}).has_value());
  const AttemptPaths paths = PathsOf(spool, {70, 1});
  for (const std::string& record : {paths.shepherd_pid, paths.job_pgid, paths.exit}) {
    CAPTURE(record);
    struct stat st {};
    REQUIRE(stat(record.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
  }
}

TEST_CASE("shepherd: RemoveTree removes a tree and never what its symlinks point to") {
  TempDir dir;
  const std::string outside = dir.path() + "/outside";
  fs::create_directories(outside + "/sub");
  std::ofstream(outside + "/sub/file") << "stays\n";
  const std::string tree = dir.path() + "/tree";
  fs::create_directories(tree + "/a/b/c");
  std::ofstream(tree + "/a/b/c/f") << "goes\n";
  fs::create_directory_symlink(outside, tree + "/a/dirlink");
  fs::create_symlink(outside + "/sub/file", tree + "/a/b/filelink");
  REQUIRE(mkfifo((tree + "/a/fifo").c_str(), 0600) == 0);

  CHECK(RemoveTree(tree).ok());
  CHECK_FALSE(fs::exists(tree));
  CHECK(Read(outside + "/sub/file") == "stays\n");
  CHECK(RemoveTree(tree).ok());  // already gone
  // A symlink given as the path itself is removed, not followed.
  fs::create_directory_symlink(outside, dir.path() + "/top");
  CHECK(RemoveTree(dir.path() + "/top").ok());
  CHECK(fs::exists(outside + "/sub/file"));
}

}  // namespace
}  // namespace corral
