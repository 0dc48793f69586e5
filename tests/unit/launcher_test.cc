// PosixLauncher with real processes (shepherd, job, kill, reap) in temporary directories,
// and the pure Grid Engine rules for output paths and the job environment. Every wait is a
// poll() timeout bounded by a deadline; no test sleeps. Shepherd-specific behaviour (exit
// files, limits, recovery after a restart) is in shepherd_test.cc.
#include "temp_dir.h"
#include "test_files.h"
#include "execd/launcher.h"

#include <doctest/doctest.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "common/clock.h"
#include "execd/inventory.h"
#include "execd/spool.h"
#include "tests/unit/launcher_wait.h"

namespace corral {
using corral::testing::PauseMs;
using corral::testing::ReadFile;
using corral::testing::TempDir;

namespace {

namespace fs = std::filesystem;

constexpr int64_t kDeadlineMs = 5000;  // far above what any of these jobs needs

Job MakeJob(JobId id, int attempt, const std::string& name, const std::string& script,
            const std::string& cwd) {
  Job job;
  job.id = id;
  job.attempt = attempt;
  job.uid = getuid();
  job.gid = getgid();
  job.spec.name = name;
  job.spec.script = script;
  job.spec.cwd = cwd;
  return job;
}

std::unique_ptr<PosixLauncher> MakeLauncher(const std::string& spool) {
  Result<std::unique_ptr<PosixLauncher>> launcher =
      PosixLauncher::Create({spool, JobHost{"node7", "host7.example"}});
  REQUIRE(launcher.has_value());
  return std::move(*launcher);
}

// True once `pid` is gone or a zombie (this container's init may never reap it).
bool ProcessDead(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() &&
         (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X');
}

TEST_CASE("launcher: script gets the Grid Engine environment, default output files, exit code") {
  TempDir dir;
  auto launcher = MakeLauncher(dir.path() + "/spool");
  Job job = MakeJob(42, 2, "envtest",
                    "#!/bin/sh\n"
                    "echo JOB_ID=$JOB_ID\n"
                    "echo JOB_NAME=$JOB_NAME\n"
                    "echo NSLOTS=$NSLOTS\n"
                    "echo CORRAL_ATTEMPT=$CORRAL_ATTEMPT\n"
                    "echo CORRAL_NODE=$CORRAL_NODE\n"
                    "echo SGE_TASK_ID=$SGE_TASK_ID\n"
                    "echo SGE_O_WORKDIR=$SGE_O_WORKDIR\n"
                    "echo PATH=$PATH\n"
                    "echo PWD=$(pwd)\n"
                    "echo ARGS=$*\n"
                    "test -d \"$TMPDIR\" && echo TMPDIR=ok\n"
                    "echo oops >&2\n"
                    "exit 3\n",
                    dir.path());
  job.spec.request.cores = 4;
  job.spec.args = {"a", "b"};
  job.spec.env = {{"SGE_O_WORKDIR", "/submit/dir"}};

  Result<pid_t> pid = launcher->Launch(job);
  REQUIRE(pid.has_value());
  CHECK(launcher->RunningCount() == 1);
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {42, 2});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 3);
  CHECK(end->signal == 0);
  CHECK(launcher->RunningCount() == 0);

  CHECK(ReadFile(dir.path() + "/envtest.o42") ==
        "JOB_ID=42\nJOB_NAME=envtest\nNSLOTS=4\nCORRAL_ATTEMPT=2\nCORRAL_NODE=node7\n"
        "SGE_TASK_ID=undefined\nSGE_O_WORKDIR=/submit/dir\n"
        "PATH=/usr/local/bin:/usr/ucb:/bin:/usr/bin\nPWD=" +
            dir.path() + "\nARGS=a b\nTMPDIR=ok\n");
  CHECK(ReadFile(dir.path() + "/envtest.e42") == "oops\n");

  // The spooled script and TMPDIR stay until the exit is acknowledged.
  const std::string attempt_dir = dir.path() + "/spool/jobs/42.2";
  CHECK(fs::exists(attempt_dir + "/script"));
  CHECK(launcher->Release({42, 2}).ok());
  CHECK_FALSE(fs::exists(attempt_dir));
}

TEST_CASE("launcher: script without #! runs under /bin/sh; -j y; -o names a directory") {
  TempDir dir;
  auto launcher = MakeLauncher(dir.path() + "/spool");
  fs::create_directory(dir.path() + "/logs");
  Job job = MakeJob(7, 1, "plain", "echo out\necho err >&2\n", dir.path());
  job.spec.join = true;
  job.spec.stdout_path = ":logs";  // DRMAA-style empty host, relative to cwd, a directory

  REQUIRE(launcher->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {7, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 0);
  CHECK(ReadFile(dir.path() + "/logs/plain.o7") == "out\nerr\n");
  CHECK_FALSE(fs::exists(dir.path() + "/plain.e7"));
  CHECK_FALSE(fs::exists(dir.path() + "/logs/plain.e7"));
}

TEST_CASE("launcher: binary job is found in the job's PATH") {
  TempDir dir;
  auto launcher = MakeLauncher(dir.path() + "/spool");
  Job job = MakeJob(8, 1, "bin", "", dir.path());
  job.spec.binary = true;
  job.spec.args = {"sh", "-c", "echo node=$CORRAL_NODE; exit 5"};
  job.spec.env = {{"PATH", "/nonexistent:/bin:/usr/bin"}};

  REQUIRE(launcher->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {8, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 5);
  CHECK(ReadFile(dir.path() + "/bin.o8") == "node=node7\n");
}

TEST_CASE("launcher: a missing cwd is a start failure naming the directory") {
  TempDir dir;
  auto launcher = MakeLauncher(dir.path() + "/spool");
  const std::string missing = dir.path() + "/no/such/dir";
  Job job = MakeJob(9, 1, "badcwd", "#!/bin/sh\nexit 0\n", missing);

  // The shepherd finds out, not the execd: the launch itself succeeds.
  REQUIRE(launcher->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {9, 1});
  REQUIRE(end.has_value());
  CHECK(end->failure == "cannot chdir to " + missing + ": No such file or directory");
  CHECK(end->exit_code == 1);
  CHECK(launcher->RunningCount() == 0);
  CHECK(launcher->Reap().empty());
}

TEST_CASE("launcher: pre-fork failures are returned by Launch") {
  TempDir dir;
  auto launcher = MakeLauncher(dir.path() + "/spool");
  Job job = MakeJob(13, 1, "nobin", "", dir.path());
  job.spec.binary = true;  // and no command
  Result<pid_t> pid = launcher->Launch(job);
  REQUIRE_FALSE(pid.has_value());
  CHECK(pid.error().message() == "binary job without a command");
  CHECK(launcher->RunningCount() == 0);
}

TEST_CASE("launcher: kill takes down the whole process group, reported as 137 / signal 9") {
  TempDir dir;
  auto launcher = MakeLauncher(dir.path() + "/spool");
  const std::string pid_file = dir.path() + "/grandchild.pid";
  Job job = MakeJob(10, 1, "sleeper",
                    "#!/bin/sh\nsleep 100 &\necho $! > " + pid_file + ".tmp\nmv " + pid_file +
                        ".tmp " + pid_file + "\nwait\n",
                    dir.path());

  REQUIRE(launcher->Launch(job).has_value());
  const int64_t deadline = MonotonicNowMs() + kDeadlineMs;
  while (!fs::exists(pid_file) && MonotonicNowMs() < deadline) PauseMs(2);
  REQUIRE(fs::exists(pid_file));
  const pid_t grandchild = std::stoi(ReadFile(pid_file));
  CHECK_FALSE(ProcessDead(grandchild));

  CHECK(launcher->Kill({10, 1}));
  CHECK_FALSE(launcher->Kill({10, 99}));
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {10, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 137);
  CHECK(end->signal == 9);
  while (!ProcessDead(grandchild) && MonotonicNowMs() < deadline) PauseMs(2);
  CHECK(ProcessDead(grandchild));
}

// ---- job owners ------------------------------------------------------------------------

TEST_CASE("launcher: an execd runs its owners' jobs: any but root's as root, its own without") {
  Job job = MakeJob(3, 1, "who", "", "/w");
  job.uid = 1001;
  job.owner = "bob";
  CHECK(CheckJobOwner(job, 0, "root", false).ok());

  job.uid = 0;
  job.owner = "root";
  CHECK(CheckJobOwner(job, 0, "root", true).ok());
  const Status root_refused = CheckJobOwner(job, 0, "root", false);
  CHECK(root_refused.code() == Code::kPermissionDenied);
  CHECK(root_refused.message() ==
        "refused: this node does not run jobs of root (uid 0); submit as another user, or set "
        "allow_root_jobs: true in the node's execd configuration");

  // Without root: its own user only, whatever allow_root_jobs says.
  job.uid = 1000;
  job.owner = "alice";
  CHECK(CheckJobOwner(job, 1000, "alice", false).ok());
  job.uid = 1001;
  job.owner = "bob";
  const Status other = CheckJobOwner(job, 1000, "alice", true);
  CHECK(other.code() == Code::kPermissionDenied);
  CHECK(other.message() ==
        "refused: the execd on this node runs as alice (uid 1000), not as root, and so runs only "
        "that user's jobs; this job belongs to bob (uid 1001)");
  job.uid = 0;
  job.owner = "";
  CHECK(CheckJobOwner(job, 1000, "", true).message() ==
        "refused: the execd on this node runs as (uid 1000), not as root, and so runs only that "
        "user's jobs; this job belongs to (uid 0)");
}

// An account of this machine to run test jobs as (Debian has nobody and daemon).
struct Account {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};

std::optional<Account> FindAccount(const char* name) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwnam_r(name, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return std::nullopt;
  }
  return Account{pw.pw_uid, pw.pw_gid, pw.pw_name};
}

Job JobOf(const Account& who, JobId id, const std::string& name, const std::string& script,
          const std::string& cwd) {
  Job job = MakeJob(id, 1, name, script, cwd);
  job.uid = who.uid;
  job.gid = who.gid;
  job.owner = who.name;
  return job;
}

// /proc/self/status's "Groups:" line for `who`: the kernel sorts the list.
std::string GroupsLine(const Account& who) {
  std::vector<gid_t> groups(256);
  int n = static_cast<int>(groups.size());
  REQUIRE(getgrouplist(who.name.c_str(), who.gid, groups.data(), &n) >= 0);
  groups.resize(static_cast<size_t>(n));
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  std::string line = "Groups:\t";
  for (gid_t g : groups) line += std::to_string(g) + " ";
  return line;
}

mode_t ModeOf(const std::string& path, uid_t* uid = nullptr, gid_t* gid = nullptr) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return 0;
  if (uid != nullptr) *uid = st.st_uid;
  if (gid != nullptr) *gid = st.st_gid;
  return st.st_mode & 07777;
}

TEST_CASE("launcher: as root, the job runs as its owner: ids, groups, no capabilities") {
  if (geteuid() != 0) return;  // switching users needs root
  const std::optional<Account> nobody = FindAccount("nobody");
  if (!nobody) return;
  TempDir dir;
  chmod(dir.path().c_str(), 0777);  // nobody writes its output here
  auto launcher = MakeLauncher(dir.path() + "/spool");
  Job job = JobOf(*nobody, 11, "asuser",
                  "#!/bin/sh\n"
                  "grep -E '^(Uid|Gid|Groups|CapPrm|CapEff):' /proc/self/status\n"
                  "echo USER=$USER LOGNAME=$LOGNAME HOME=$HOME\n"
                  "touch \"$TMPDIR/x\" && echo tmp-ok\n",
                  dir.path());
  job.spec.env = {{"USER", "root"}, {"HOME", "/root"}};  // qsub -V from root's shell

  REQUIRE(launcher->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {11, 1});
  REQUIRE(end.has_value());
  CHECK(end->failure == "");
  CHECK(end->exit_code == 0);
  const std::string uid = std::to_string(nobody->uid);
  const std::string gid = std::to_string(nobody->gid);
  CHECK(ReadFile(dir.path() + "/asuser.o11") ==
        "Uid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid + "\n" +  // real, eff, saved, fs
            "Gid:\t" + gid + "\t" + gid + "\t" + gid + "\t" + gid + "\n" + GroupsLine(*nobody) +
            "\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
            "USER=nobody LOGNAME=nobody HOME=/nonexistent\ntmp-ok\n");
  // The output file was created by the job, so it is the owner's.
  uid_t owner = 0;
  ModeOf(dir.path() + "/asuser.o11", &owner);
  CHECK(owner == nobody->uid);
}

TEST_CASE("launcher: as root, cwd and output files are opened with the owner's rights only") {
  if (geteuid() != 0) return;
  const std::optional<Account> nobody = FindAccount("nobody");
  if (!nobody) return;
  TempDir dir;
  chmod(dir.path().c_str(), 0777);
  auto launcher = MakeLauncher(dir.path() + "/spool");
  const std::string private_dir = dir.path() + "/private";  // root's, 0700
  REQUIRE(mkdir(private_dir.c_str(), 0700) == 0);
  std::ofstream(private_dir + "/secret") << "root's\n";
  std::ofstream(dir.path() + "/rootfile") << "root's\n";  // 0644 in a directory anyone writes
  REQUIRE(symlink((private_dir + "/secret").c_str(), (dir.path() + "/link").c_str()) == 0);
  REQUIRE(symlink((private_dir + "/new").c_str(), (dir.path() + "/dangling").c_str()) == 0);

  struct Case {
    std::string stdout_path;
    std::string cwd;
    std::string failure;
  };
  const Case cases[] = {
      // Root could truncate it; its owner cannot.
      {dir.path() + "/rootfile", dir.path(),
       "cannot open output file " + dir.path() + "/rootfile: Permission denied"},
      // A symlink the job planted towards a file it could not open itself.
      {dir.path() + "/link", dir.path(),
       "cannot open output file " + dir.path() + "/link: Permission denied"},
      // ... or towards a file it could not create itself.
      {dir.path() + "/dangling", dir.path(),
       "cannot open output file " + dir.path() + "/dangling: Permission denied"},
      {"", private_dir, "cannot chdir to " + private_dir + ": Permission denied"},
  };
  JobId id = 30;
  for (const Case& c : cases) {
    CAPTURE(c.failure);
    Job job = JobOf(*nobody, ++id, "out", "#!/bin/sh\necho written\n", c.cwd);
    job.spec.stdout_path = c.stdout_path;
    REQUIRE(launcher->Launch(job).has_value());
    std::optional<AttemptEnd> end = WaitForEnd(*launcher, {id, 1});
    REQUIRE(end.has_value());
    CHECK(end->failure == c.failure);
    CHECK(end->exit_code == 1);
  }
  CHECK(ReadFile(dir.path() + "/rootfile") == "root's\n");
  CHECK(ReadFile(private_dir + "/secret") == "root's\n");
  CHECK_FALSE(fs::exists(private_dir + "/new"));
}

TEST_CASE("launcher: as root, a job reads its own spooled files and nothing else there") {
  if (geteuid() != 0) return;
  const std::optional<Account> nobody = FindAccount("nobody");
  const std::optional<Account> daemon = FindAccount("daemon");
  if (!nobody || !daemon || nobody->gid == daemon->gid) return;
  TempDir dir;
  chmod(dir.path().c_str(), 0777);
  const std::string spool = dir.path() + "/spool";
  auto launcher = MakeLauncher(spool);

  // Job 40 (daemon) leaves a file in its TMPDIR and waits to be killed.
  const std::string ready = dir.path() + "/ready";
  std::string wait_script = "#!/bin/sh\necho private > \"$TMPDIR/mine\"\n";
  wait_script += "echo $$ > " + ready + ".tmp\nmv " + ready + ".tmp " + ready + "\n";
  wait_script += "exec sleep 100\n";
  Job other = JobOf(*daemon, 40, "other", wait_script, dir.path());
  REQUIRE(launcher->Launch(other).has_value());
  const int64_t deadline = MonotonicNowMs() + kDeadlineMs;
  while (!fs::exists(ready) && MonotonicNowMs() < deadline) PauseMs(2);
  REQUIRE(fs::exists(ready));
  const std::string other_pid = ReadFile(ready).substr(0, ReadFile(ready).find('\n'));

  // Job 41 (nobody) tries everything it should not be able to do, and one thing it should.
  const std::string jobs = spool + "/jobs";
  std::string script =
      "#!/bin/sh\n"
      "try() { what=$1; shift; if \"$@\" >/dev/null 2>&1; then echo \"$what: yes\"; "
      "else echo \"$what: no\"; fi; }\n";
  script += "try 'list the spool' ls " + jobs + "\n";
  script += "try 'read own script' cat " + jobs + "/41.1/script\n";
  script += "try 'read own shepherd.pid' cat " + jobs + "/41.1/shepherd.pid\n";
  script += "try 'write own exit' sh -c 'echo exit_code=0 > " + jobs + "/41.1/exit'\n";
  script += "try 'read the other script' cat " + jobs + "/40.1/script\n";
  script += "try 'read the other TMPDIR' cat " + jobs + "/40.1/tmp/mine\n";
  script += "try 'read the other job.pgid' cat " + jobs + "/40.1/job.pgid\n";
  script += "try 'kill the other job' kill -KILL $1\n";
  Job probe = JobOf(*nobody, 41, "probe", script, dir.path());
  probe.spec.args = {other_pid};
  REQUIRE(launcher->Launch(probe).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {41, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 0);
  CHECK(ReadFile(dir.path() + "/probe.o41") ==
        "list the spool: no\n"
        "read own script: yes\n"
        "read own shepherd.pid: no\n"
        "write own exit: no\n"
        "read the other script: no\n"
        "read the other TMPDIR: no\n"
        "read the other job.pgid: no\n"
        "kill the other job: no\n");
  CHECK(ReadFile(dir.path() + "/probe.e41") == "");

  // The modes that make it so.
  uid_t uid = 99;
  gid_t gid = 99;
  CHECK(ModeOf(spool) == 0711);
  CHECK(ModeOf(jobs) == 0711);
  CHECK(ModeOf(jobs + "/41.1", &uid, &gid) == 0710);
  CHECK(uid == 0);
  CHECK(gid == nobody->gid);
  for (const char* record : {"shepherd.pid", "job.pgid", "exit"}) {
    CAPTURE(record);
    CHECK(ModeOf(jobs + "/41.1/" + record, &uid) == 0600);
    CHECK(uid == 0);
  }
  CHECK(ModeOf(jobs + "/41.1/script", &uid) == 0700);
  CHECK(uid == nobody->uid);
  CHECK(ModeOf(jobs + "/41.1/tmp", &uid) == 0700);
  CHECK(uid == nobody->uid);
  CHECK(ModeOf(jobs + "/41.1/result.json", &uid) == 0600);
  CHECK(uid == nobody->uid);

  CHECK(launcher->Kill({40, 1}));
  end = WaitForEnd(*launcher, {40, 1});
  REQUIRE(end.has_value());
  CHECK(end->signal == SIGKILL);  // from the launcher, not from job 41
}

TEST_CASE("launcher: as root, jobs of root need allow_root_jobs; owners need a passwd entry") {
  if (geteuid() != 0) return;
  TempDir dir;
  Result<std::unique_ptr<PosixLauncher>> strict = PosixLauncher::Create(
      {.spool_dir = dir.path() + "/spool", .host = {"node7", "host7"}, .allow_root_jobs = false});
  REQUIRE(strict.has_value());
  Job job = MakeJob(50, 1, "rootjob", "#!/bin/sh\nexit 0\n", dir.path());
  job.uid = 0;
  job.gid = 0;
  job.owner = "root";
  Result<pid_t> pid = (*strict)->Launch(job);
  REQUIRE_FALSE(pid.has_value());
  CHECK(pid.error().code() == Code::kPermissionDenied);
  CHECK(pid.error().message().starts_with("refused: this node does not run jobs of root"));
  CHECK((*strict)->RunningCount() == 0);

  // An owner this node does not know: the job cannot run as anyone.
  const uid_t ghost = 3'999'999;
  REQUIRE(getpwuid(ghost) == nullptr);
  job.id = 51;
  job.uid = ghost;
  job.gid = ghost;
  job.owner = "ghost";
  pid = (*strict)->Launch(job);
  REQUIRE_FALSE(pid.has_value());
  CHECK(pid.error().message() ==
        "user id 3999999 (ghost) is not known on this node (no passwd entry)");
}

TEST_CASE("launcher: release removes TMPDIR without following the job's symlinks") {
  TempDir dir;
  auto launcher = MakeLauncher(dir.path() + "/spool");
  const std::string keep = dir.path() + "/keep";
  fs::create_directory(keep);
  std::ofstream(keep + "/file") << "kept\n";
  const std::string script = "#!/bin/sh\nln -s " + keep + " \"$TMPDIR/link\"\n" +
                             "mkdir -p \"$TMPDIR/a/b/c\"\nln -s " + keep +
                             "/file \"$TMPDIR/a/b/c/f\"\n";
  Job job = MakeJob(60, 1, "links", script, dir.path());
  REQUIRE(launcher->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {60, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 0);
  CHECK(launcher->Release({60, 1}).ok());
  CHECK_FALSE(fs::exists(dir.path() + "/spool/jobs/60.1"));
  CHECK(ReadFile(keep + "/file") == "kept\n");
}

TEST_CASE("launcher: a spool others can write to, or that is not its own, is refused") {
  TempDir dir;
  const std::string shared = dir.path() + "/shared";
  fs::create_directory(shared);
  chmod(shared.c_str(), 01777);  // like /tmp
  Result<std::unique_ptr<PosixLauncher>> launcher =
      PosixLauncher::Create({.spool_dir = shared, .host = {"n", "h"}});
  REQUIRE_FALSE(launcher.has_value());
  CHECK(launcher.error().message() ==
        "the spool directory " + shared +
            " is writable by other users (mode 1777); give corral-execd a directory of its own, "
            "or chmod go-w it");
  CHECK(ModeOf(shared) == 01777);  // checked, never changed

  // A new one is made 0711.
  launcher = PosixLauncher::Create({.spool_dir = dir.path() + "/new", .host = {"n", "h"}});
  REQUIRE(launcher.has_value());
  CHECK(ModeOf(dir.path() + "/new") == 0711);

  if (geteuid() != 0) return;
  const std::string theirs = dir.path() + "/theirs";
  fs::create_directory(theirs);
  REQUIRE(chown(theirs.c_str(), 65534, 65534) == 0);
  launcher = PosixLauncher::Create({.spool_dir = theirs, .host = {"n", "h"}});
  REQUIRE_FALSE(launcher.has_value());
  CHECK(launcher.error().message() ==
        "the spool directory " + theirs +
            " belongs to uid 65534; it must belong to the user corral-execd runs as (uid 0)");
}

// ---- pure rules ------------------------------------------------------------------------

TEST_CASE("launcher: output paths follow Grid Engine's rules") {
  Job job = MakeJob(5, 1, "sim", "", "/srv/run");
  const JobUser user{"alice", "/home/alice", "/bin/bash"};
  const JobHost host{"n1", "n1.example"};
  auto no_dirs = [](const std::string&) { return false; };
  auto out = [&](const std::string& requested) {
    return ResolveOutputPath(requested, 'o', job, user, host, no_dirs);
  };

  CHECK(out("") == "/srv/run/sim.o5");
  CHECK(ResolveOutputPath("", 'e', job, user, host, no_dirs) == "/srv/run/sim.e5");
  CHECK(out("log.txt") == "/srv/run/log.txt");
  CHECK(out("/abs/log.txt") == "/abs/log.txt");
  CHECK(out("logs/") == "/srv/run/logs/sim.o5");
  CHECK(out("host1:/abs/log.txt") == "/abs/log.txt");
  CHECK(out(":/abs/logs/") == "/abs/logs/sim.o5");
  CHECK(out("/a:b/c") == "/a:b/c");  // a ':' after a '/' belongs to the file name
  CHECK(out("$HOME/$JOB_NAME.$JOB_ID.$TASK_ID") == "/home/alice/sim.5.undefined");
  CHECK(out("/x/$USER-$HOSTNAME") == "/x/alice-n1.example");
  CHECK(out("/x/$UNKNOWN") == "/x/$UNKNOWN");
  auto logs_is_dir = [](const std::string& p) { return p == "/srv/run/logs"; };
  CHECK(ResolveOutputPath("logs", 'e', job, user, host, logs_is_dir) == "/srv/run/logs/sim.e5");

  job.spec.cwd = "";  // no -cwd: the home directory, as in Grid Engine
  CHECK(out("") == "/home/alice/sim.o5");
}

TEST_CASE("launcher: job environment keeps the submit environment and overrides the rest") {
  Job job = MakeJob(12, 3, "envjob", "", "/w");
  job.owner = "alice";
  job.spec.request.cores = 2;
  job.spec.env = {{"PATH", "/opt/bin:/bin"},
                  {"SGE_O_HOME", "/home/alice"},
                  {"JOB_ID", "999"},
                  {"HOME", "/submit/home"},
                  {"FOO", "bar"}};
  const JobHost host{"n1", "n1.example"};
  const JobFiles files{"/w/envjob.o12", "/w/envjob.o12", "/spool/jobs/12.3/tmp"};

  std::map<std::string, std::string> env =
      BuildJobEnvironment(job, JobUser{"alice", "/home/alice", "/bin/zsh"}, host, files, {});
  CHECK(env["PATH"] == "/opt/bin:/bin");
  CHECK(env["FOO"] == "bar");
  CHECK(env["SGE_O_HOME"] == "/home/alice");
  CHECK(env["JOB_ID"] == "12");
  CHECK(env["HOME"] == "/home/alice");
  CHECK(env["USER"] == "alice");
  CHECK(env["LOGNAME"] == "alice");
  CHECK(env["SHELL"] == "/bin/zsh");
  CHECK(env["NSLOTS"] == "2");
  CHECK(env["NHOSTS"] == "1");
  CHECK(env["QUEUE"] == "all.q");
  CHECK(env["HOSTNAME"] == "n1.example");
  CHECK(env["ENVIRONMENT"] == "BATCH");
  CHECK(env["TMPDIR"] == "/spool/jobs/12.3/tmp");
  CHECK(env["SGE_STDERR_PATH"] == "/w/envjob.o12");
  CHECK(env["CORRAL_NODE"] == "n1");
  CHECK(env["CORRAL_ATTEMPT"] == "3");
  CHECK(env["SGE_TASK_STEPSIZE"] == "undefined");

  // Unknown user: names from the submit environment, Grid Engine's default PATH.
  job.spec.env = {{"USER", "bob"}, {"HOME", "/home/bob"}};
  env = BuildJobEnvironment(job, JobUser{}, host, files, {});
  CHECK(env["USER"] == "bob");
  CHECK(env["HOME"] == "/home/bob");
  CHECK(env["SHELL"] == "/bin/sh");
  CHECK(env["PATH"] == "/usr/local/bin:/usr/ucb:/bin:/usr/bin");
}

TEST_CASE("launcher: job environment describes the allocation, over the submit environment") {
  Job job = MakeJob(14, 1, "alloc", "", "/w");
  job.spec.request.cores = 3;
  job.spec.env = {{"OMP_NUM_THREADS", "64"}, {"CUDA_VISIBLE_DEVICES", "0,1,2,3"}};
  const JobHost host{"n1", "n1.example"};
  const JobFiles files{"/w/o", "/w/e", "/t"};

  // An older scheduler: no allocation, so nothing bound and no GPU visible.
  std::map<std::string, std::string> env = BuildJobEnvironment(job, JobUser{}, host, files, {});
  CHECK(env["OMP_NUM_THREADS"] == "3");
  CHECK(env["NSLOTS"] == "3");
  CHECK(env["CORRAL_CORES"] == "");
  CHECK(env["CORRAL_CPUS"] == "");
  CHECK(env.at("CUDA_VISIBLE_DEVICES") == "");
  CHECK(env.at("CORRAL_GPUS") == "");
  CHECK(env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID");

  job.alloc_cores = {4, 5, 6};
  job.alloc_gpus = {2, 3};
  env = BuildJobEnvironment(job, JobUser{}, host, files, {1, 8, 9});
  CHECK(env["OMP_NUM_THREADS"] == "3");
  CHECK(env["CORRAL_CORES"] == "4,5,6");
  CHECK(env["CORRAL_CPUS"] == "1,8,9");
  CHECK(env["CUDA_VISIBLE_DEVICES"] == "2,3");
  CHECK(env["CORRAL_GPUS"] == "2,3");
}

// ---- CPU binding and GPU environment, with real processes ------------------------------

// The job prints its Cpus_allowed_list (as the kernel sees it) and its allocation variables.
constexpr char kShowAllocation[] =
    "#!/bin/sh\n"
    "sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status\n"
    "echo CORRAL_CORES=$CORRAL_CORES\n"
    "echo CORRAL_CPUS=$CORRAL_CPUS\n"
    "echo OMP_NUM_THREADS=$OMP_NUM_THREADS\n"
    "echo CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}\n"
    "echo CORRAL_GPUS=${CORRAL_GPUS-unset}\n";

// Cpus_allowed_list of this (test) process.
std::string OwnCpusAllowed() {
  std::istringstream status(ReadFile("/proc/self/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("Cpus_allowed_list:")) {
      const size_t value = line.find_first_not_of(" \t", sizeof("Cpus_allowed_list:") - 1);
      return value == std::string::npos ? "" : line.substr(value);
    }
  }
  return "";
}

TEST_CASE("launcher: a job with core index 0 is bound to the first CPU of the execd's list") {
  TempDir dir;
  auto launcher = MakeLauncher(dir.path() + "/spool");
  const std::vector<int> cpus = AllowedCpus();
  REQUIRE_FALSE(cpus.empty());
  const std::string first = std::to_string(cpus[0]);
  Job job = MakeJob(20, 1, "bound", kShowAllocation, dir.path());
  job.alloc_cores = {0};

  REQUIRE(launcher->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {20, 1});
  REQUIRE(end.has_value());
  CHECK(end->failure == "");
  CHECK(end->exit_code == 0);
  CHECK(ReadFile(dir.path() + "/bound.o20") ==
        first + "\nCORRAL_CORES=0\nCORRAL_CPUS=" + first +
            "\nOMP_NUM_THREADS=1\nCUDA_VISIBLE_DEVICES=\nCORRAL_GPUS=\n");
  // The binding happens in the job child: the execd (here: the test) keeps its mask.
  CHECK(AllowedCpus() == cpus);
}

TEST_CASE("launcher: core indices beyond the CPUs wrap around (an oversubscribed node)") {
  TempDir dir;
  const std::vector<int> cpus = AllowedCpus();
  auto launcher = MakeLauncher(dir.path() + "/spool");
  // Index n of n CPUs is CPU cpus[0] again; index 1 (when there is a second CPU) is cpus[1].
  Job job = MakeJob(21, 1, "wrap", kShowAllocation, dir.path());
  const int second = cpus.size() > 1 ? 1 : 0;
  job.alloc_cores = {static_cast<int>(cpus.size()) + second};
  REQUIRE(launcher->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {21, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 0);
  const std::string cpu = std::to_string(cpus[static_cast<size_t>(second)]);
  CHECK(ReadFile(dir.path() + "/wrap.o21")
            .starts_with(cpu + "\nCORRAL_CORES=" + std::to_string(job.alloc_cores[0]) +
                         "\nCORRAL_CPUS=" + cpu + "\n"));
}

TEST_CASE("launcher: a job with GPUs 2,3 sees them in CUDA_VISIBLE_DEVICES and CORRAL_GPUS") {
  TempDir dir;
  auto launcher = MakeLauncher(dir.path() + "/spool");
  Job job = MakeJob(22, 1, "gpu", kShowAllocation, dir.path());
  job.spec.request.cores = 2;
  job.alloc_cores = {0, 1};
  job.alloc_gpus = {2, 3};
  job.spec.env = {{"CUDA_VISIBLE_DEVICES", "0,1,2,3,4,5,6,7"}};  // qsub -V from a GPU host

  REQUIRE(launcher->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {22, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 0);
  const std::string out = ReadFile(dir.path() + "/gpu.o22");
  CHECK(out.find("\nCORRAL_CORES=0,1\n") != std::string::npos);
  CHECK(out.find("\nOMP_NUM_THREADS=2\n") != std::string::npos);
  CHECK(out.find("\nCUDA_VISIBLE_DEVICES=2,3\n") != std::string::npos);
  CHECK(out.find("\nCORRAL_GPUS=2,3\n") != std::string::npos);
}

TEST_CASE("launcher: without core indices the job is not bound") {
  TempDir dir;
  auto launcher = MakeLauncher(dir.path() + "/spool");
  Job job = MakeJob(23, 1, "free", kShowAllocation, dir.path());
  job.spec.request.cores = 4;
  REQUIRE(launcher->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(*launcher, {23, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 0);
  CHECK(ReadFile(dir.path() + "/free.o23") ==
        OwnCpusAllowed() +
            "\nCORRAL_CORES=\nCORRAL_CPUS=\nOMP_NUM_THREADS=4\nCUDA_VISIBLE_DEVICES=\n"
            "CORRAL_GPUS=\n");
}

TEST_CASE("launcher: a binding the kernel refuses is a start failure naming the CPUs") {
  TempDir dir;
  // A CPU list that is not this machine's (as if the execd's mask had shrunk since).
  Result<std::unique_ptr<PosixLauncher>> launcher = PosixLauncher::Create(
      {.spool_dir = dir.path() + "/spool", .host = {"node7", "host7"}, .cpus = {4000}});
  REQUIRE(launcher.has_value());
  Job job = MakeJob(24, 1, "nocpu", "#!/bin/sh\nexit 0\n", dir.path());
  job.alloc_cores = {0};
  REQUIRE((*launcher)->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(**launcher, {24, 1});
  REQUIRE(end.has_value());
  CHECK(end->failure == "cannot bind to CPUs 4000: Invalid argument");
  CHECK(end->exit_code == 1);

  job.id = 25;
  job.alloc_cores = {-1};
  Result<pid_t> pid = (*launcher)->Launch(job);
  REQUIRE_FALSE(pid.has_value());
  CHECK(pid.error().message() == "cannot bind to cores -1: invalid core index -1");
}

}  // namespace
}  // namespace corral
