// Jobs run as their owners, on real daemons (root only: it creates two throwaway users). A
// root execd runs each user's job with that user's uid, gid and groups; a job cannot read
// the execd's spool nor another user's job files, nor signal another user's job; users
// cannot qdel/qhold each other's jobs. An execd started as one of the users runs that
// user's jobs and refuses the other's with the reason.
#include <doctest/doctest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include "execd/launcher.h"
#include "tests/e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

namespace {

constexpr int64_t kJobTimeoutMs = 30000;

// A system user made for this test (useradd -M -r -U), removed with its group when the
// guard goes, also when a check has failed. Check ok() before use.
class TestUser {
 public:
  TestUser(std::string name, const std::vector<std::string>& extra_args) : name_(std::move(name)) {
    std::vector<std::string> argv = {"/usr/sbin/useradd", "-M", "-r", "-U", "-s", "/bin/sh"};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    argv.push_back(name_);
    RunResult made = Run(argv, {});
    created_ = made.exit_code == 0;
    error_ = made.err;
    if (const passwd* pw = created_ ? getpwnam(name_.c_str()) : nullptr) {
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
    }
  }
  ~TestUser() {
    if (!created_) return;
    // -f: a job process that is still being reaped must not keep the account around.
    Run({"/usr/sbin/userdel", "-f", name_}, {});
    Run({"/usr/sbin/groupdel", name_}, {});  // usually gone with the user already
  }
  TestUser(const TestUser&) = delete;
  TestUser& operator=(const TestUser&) = delete;

  bool ok() const { return created_ && uid_ != 0; }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }
  uid_t uid() const { return uid_; }
  gid_t gid() const { return gid_; }

 private:
  std::string name_;
  bool created_ = false;
  std::string error_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
};

// A directory of `user`'s (0755) for their jobs' cwd and output.
std::string WorkDirOf(const std::string& parent, const TestUser& user) {
  const std::string dir = parent + "/work-" + user.name();
  std::filesystem::create_directories(dir);
  REQUIRE(chown(dir.c_str(), user.uid(), user.gid()) == 0);
  chmod(dir.c_str(), 0755);
  return dir;
}

// `argv` run as `user` (uid, gid and groups; setpriv execs in place) in `cwd`.
RunResult RunAs(const TestUser& user, std::vector<std::string> argv,
                std::map<std::string, std::string> env, const std::string& cwd,
                const std::string& stdin_text = "") {
  std::vector<std::string> full = {
      "setpriv",       "--reuid", std::to_string(user.uid()), "--regid", std::to_string(user.gid()),
      "--init-groups", "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  env["HOME"] = cwd;
  env["USER"] = user.name();
  return Run(full, env, cwd, stdin_text);
}

// qsub -cwd of `script` as `user`; the job id.
JobId SubmitAs(const TestUser& user, const std::map<std::string, std::string>& env,
               const std::string& cwd, const std::string& name, const std::string& script) {
  RunResult r = RunAs(user, {"qsub", "-terse", "-cwd", "-N", name}, env, cwd, script);
  REQUIRE_MESSAGE(r.exit_code == 0, "qsub as " << user.name() << ": " << r.out << r.err);
  return std::stoll(r.out);
}

std::set<std::string> Words(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) out.insert(w);
  return out;
}

// The line of `text` that starts with `key`, without the key; "" if none.
std::string Field(const std::string& text, const std::string& key) {
  for (const std::string& line : Lines(text)) {
    if (line.starts_with(key)) return line.substr(key.size());
  }
  return "";
}

// An execd this test started itself (as another user): stopped by its pid, its jobs killed.
struct ExecdGuard {
  pid_t pid = 0;
  std::string spool;
  ~ExecdGuard() {
    if (pid > 0) Stop(pid);
    if (!spool.empty()) KillSpooledJobs(spool);
  }
};

bool NodeUp(TestCluster& cluster, const std::string& name) {
  Client client = cluster.Connect();
  Result<Message> reply = client.Call(NodesRequest{}, Slack(2000));
  if (!reply || !std::holds_alternative<NodesReply>(*reply)) return false;
  for (const Node& node : std::get<NodesReply>(*reply).nodes) {
    if (node.name == name && node.state == NodeState::kUp) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("jobs_run_as_their_owner") {
  if (geteuid() != 0) {
    MESSAGE("jobs_run_as_their_owner: skipped, it needs root (to create users and switch to them)");
    return;
  }
  const std::string suffix = std::to_string(getpid());
  // A first, so that B (a member of A's group) goes first and A's group can go with A.
  TestUser a("corral-a-" + suffix, {});
  REQUIRE_MESSAGE(a.ok(), "useradd failed: " << a.error());
  TestUser b("corral-b-" + suffix, {"-G", a.name()});
  REQUIRE_MESSAGE(b.ok(), "useradd failed: " << b.error());

  // ---- a root execd runs each job as its owner -----------------------------------------
  {
    TestCluster cluster({.nodes = 1, .cores = 2});
    // Users reach the ipc socket (0777) and the execd's spool (0711) through the cluster's
    // directory, which mkdtemp made 0700.
    REQUIRE(chmod(cluster.dir().c_str(), 0711) == 0);
    const auto env = cluster.Env();
    const std::string work_a = WorkDirOf(cluster.dir(), a);
    const std::string work_b = WorkDirOf(cluster.dir(), b);
    const std::string jobs = cluster.dir() + "/spool-node1/jobs";

    // B's job: its ids, a private file in its TMPDIR, then it waits to be deleted.
    const JobId b_job = SubmitAs(b, env, work_b, "waiter",
                                 "id -u; id -g; echo groups $(id -G)\n"
                                 "echo secret > \"$TMPDIR/mine\"\n"
                                 "echo $$ > pid.tmp && mv pid.tmp pid\n"
                                 "exec sleep 120\n");
    const bool b_started =
        WaitUntil([&] { return std::filesystem::exists(work_b + "/pid"); }, kJobTimeoutMs);
    REQUIRE_MESSAGE(b_started, "B's job did not start\n" << cluster.Logs());
    const std::string b_pid = Lines(ReadFile(work_b + "/pid")).at(0);
    const std::string b_out = ReadFile(work_b + "/waiter.o" + std::to_string(b_job));
    CHECK(Lines(b_out).at(0) == std::to_string(b.uid()));
    CHECK(Lines(b_out).at(1) == std::to_string(b.gid()));
    // Its own group and, from the group database, A's.
    CHECK(Words(Field(b_out, "groups ")) ==
          std::set<std::string>{std::to_string(b.gid()), std::to_string(a.gid())});

    // A's job tries B's job and the execd's spool.
    const std::string b_dir = jobs + "/" + std::to_string(b_job) + ".1";
    std::string probe =
        "id -u; id -g; echo groups $(id -G)\n"
        "try() { what=$1; shift; if \"$@\" >/dev/null 2>&1; then echo \"$what: yes\"; "
        "else echo \"$what: no\"; fi; }\n";
    probe += "own=" + jobs + "/$JOB_ID.$CORRAL_ATTEMPT\n";
    probe += "try 'read own script' cat \"$own/script\"\n";
    probe += "try 'write own TMPDIR' touch \"$TMPDIR/x\"\n";
    probe += "try 'list the spool' ls " + jobs + "\n";
    probe += "try 'read own shepherd.pid' cat \"$own/shepherd.pid\"\n";
    probe += "try 'forge own exit' sh -c \"echo exit_code=0 > $own/exit\"\n";
    probe += "try 'read B script' cat " + b_dir + "/script\n";
    probe += "try 'read B TMPDIR' cat " + b_dir + "/tmp/mine\n";
    probe += "try 'read B job.pgid' cat " + b_dir + "/job.pgid\n";
    probe += "try 'read the execd key' cat " + cluster.node_secret_key(1) + "\n";
    probe += "echo kill: $(kill -KILL " + b_pid + " 2>&1 && echo delivered)\n";
    probe += "echo killpg: $(kill -KILL -" + b_pid + " 2>&1 && echo delivered)\n";
    const JobId a_job = SubmitAs(a, env, work_a, "probe", probe);
    std::vector<Job> done = cluster.WaitJobs({a_job}, kJobTimeoutMs);
    REQUIRE(done.size() == 1);
    CHECK(done[0].state == JobState::kCompleted);
    CHECK(done[0].reason == "");
    const std::string a_out = ReadFile(work_a + "/probe.o" + std::to_string(a_job));
    const std::vector<std::string> lines = Lines(a_out);
    REQUIRE_MESSAGE(lines.size() == 14,
                    a_out << ReadFile(work_a + "/probe.e" + std::to_string(a_job)));
    CHECK(lines[0] == std::to_string(a.uid()));
    CHECK(lines[1] == std::to_string(a.gid()));
    CHECK(Words(lines[2]) == std::set<std::string>{"groups", std::to_string(a.gid())});
    CHECK(lines[3] == "read own script: yes");
    CHECK(lines[4] == "write own TMPDIR: yes");
    CHECK(lines[5] == "list the spool: no");
    CHECK(lines[6] == "read own shepherd.pid: no");
    CHECK(lines[7] == "forge own exit: no");
    CHECK(lines[8] == "read B script: no");
    CHECK(lines[9] == "read B TMPDIR: no");
    CHECK(lines[10] == "read B job.pgid: no");
    CHECK(lines[11] == "read the execd key: no");
    CHECK(lines[12].starts_with("kill: "));
    CHECK(lines[12].find("Operation not permitted") != std::string::npos);
    CHECK(lines[13].starts_with("killpg: "));
    CHECK(lines[13].find("Operation not permitted") != std::string::npos);
    CHECK(kill(std::stoi(b_pid), 0) == 0);  // B's job still runs

    // The output file was created by the job, as its owner.
    struct stat out_stat {};
    REQUIRE(stat((work_a + "/probe.o" + std::to_string(a_job)).c_str(), &out_stat) == 0);
    CHECK(out_stat.st_uid == a.uid());

    // A cannot delete or hold B's job; the scheduler answers as Grid Engine does.
    const std::string id = std::to_string(b_job);
    RunResult qdel = RunAs(a, {"qdel", id}, env, work_a);
    CHECK(qdel.exit_code == 1);
    CHECK(qdel.out == a.name() +
                          " - you do not have the necessary privileges to delete the job \"" + id +
                          "\"\n");
    RunResult qhold = RunAs(a, {"qhold", id}, env, work_a);
    CHECK(qhold.exit_code == 1);
    CHECK(qhold.out == a.name() +
                           " - you do not have the necessary privileges to modify the job \"" + id +
                           "\"\n");
    CHECK(kill(std::stoi(b_pid), 0) == 0);

    // B can.
    RunResult own = RunAs(b, {"qdel", id}, env, work_b);
    CHECK(own.exit_code == 0);
    CHECK(own.out == b.name() + " has registered the job " + id + " for deletion\n");
    done = cluster.WaitJobs({b_job}, kJobTimeoutMs);
    REQUIRE(done.size() == 1);
    CHECK(done[0].state == JobState::kCancelled);
  }

  // ---- an execd without root runs its own user's jobs only ------------------------------
  {
    // Nodes in clear (no CURVE keys to hand to the user's execd): what is tested here is
    // whom an execd runs jobs for, not how it reaches the scheduler.
    TestCluster cluster({.nodes = 0, .curve = false});
    REQUIRE(chmod(cluster.dir().c_str(), 0711) == 0);
    const auto env = cluster.Env();
    const std::string work_a = WorkDirOf(cluster.dir(), a);
    const std::string work_b = WorkDirOf(cluster.dir(), b);
    ExecdGuard execd;
    execd.spool = cluster.dir() + "/spool-" + a.name();
    REQUIRE(mkdir(execd.spool.c_str(), 0700) == 0);
    REQUIRE(chown(execd.spool.c_str(), a.uid(), a.gid()) == 0);
    execd.pid = Spawn(
        {"/usr/bin/setpriv", "--reuid", std::to_string(a.uid()), "--regid", std::to_string(a.gid()),
         "--init-groups", "--", Bin("corral-execd"), "--scheduler", cluster.node_endpoint(),
         "--node", "usernode", "--spool", execd.spool, "--cores", "2", "--memory", "4G"},
        cluster.dir() + "/execd-usernode.log");
    REQUIRE_MESSAGE(WaitUntil([&] { return NodeUp(cluster, "usernode"); }, 15000),
                    "the unprivileged execd did not register\n"
                        << cluster.Logs());

    const JobId refused = SubmitAs(b, env, work_b, "other", "echo ran\n");
    const JobId own = SubmitAs(a, env, work_a, "own", "id -u\n");
    std::vector<Job> done = cluster.WaitJobs({refused, own}, kJobTimeoutMs);
    REQUIRE(done.size() == 2);
    std::sort(done.begin(), done.end(), [](const Job& x, const Job& y) { return x.id < y.id; });
    CHECK(done[0].state == JobState::kFailed);
    CHECK(done[0].reason == "refused: the execd on this node runs as " + a.name() + " (uid " +
                                std::to_string(a.uid()) +
                                "), not as root, and so runs only that user's jobs; this job "
                                "belongs to " +
                                b.name() + " (uid " + std::to_string(b.uid()) + ")");
    CHECK_FALSE(std::filesystem::exists(work_b + "/other.o" + std::to_string(refused)));
    CHECK(done[1].state == JobState::kCompleted);
    CHECK(ReadFile(work_a + "/own.o" + std::to_string(own)) == std::to_string(a.uid()) + "\n");
    // The owner sees the reason.
    RunResult qstat = RunAs(b, {"qstat", "-j", std::to_string(refused), "--json"}, env, work_b);
    CHECK(qstat.out.find("refused: the execd on this node runs as " + a.name()) !=
          std::string::npos);
  }
}
