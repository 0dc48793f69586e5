// Fault tolerance on real daemons: dead and partitioned nodes, execd and scheduler
// restarts. The invariant everywhere: every acknowledged job ends exactly once, with the
// same id, and every attempt is visible.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "common/clock.h"
#include "tests/e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

namespace {

// The job scripts append "start J A" / "end J A" lines (job id, attempt) to runs.log.
const char* kLoggedJob =
    "#!/bin/sh\necho \"start $JOB_ID $CORRAL_ATTEMPT $CORRAL_NODE\" >> runs.log\n"
    "echo $$ > pid.$JOB_ID.$CORRAL_ATTEMPT\nsleep %s\n"
    "echo \"end $JOB_ID $CORRAL_ATTEMPT\" >> runs.log\n";

std::string LoggedJob(const std::string& seconds) {
  char buf[512];
  snprintf(buf, sizeof buf, kLoggedJob, seconds.c_str());
  return buf;
}

// (kind, job, attempt) -> count, from runs.log.
std::map<std::tuple<std::string, JobId, int>, int> Runs(const TestCluster& c) {
  std::map<std::tuple<std::string, JobId, int>, int> out;
  std::istringstream in(ReadFile(c.work() + "/runs.log"));
  for (std::string line; std::getline(in, line);) {
    std::istringstream w(line);
    std::string kind;
    JobId id = 0;
    int attempt = 0;
    w >> kind >> id >> attempt;
    ++out[{kind, id, attempt}];
  }
  return out;
}

Job Query(TestCluster& c, JobId id) {
  Client client = c.Connect();
  auto reply = client.Call(QueryRequest{{id}, "", true}, Slack(5000));
  REQUIRE(reply.has_value());
  auto& jobs = std::get<QueryReply>(*reply).jobs;
  REQUIRE(jobs.size() == 1);
  return jobs[0];
}

}  // namespace

TEST_CASE("execd_killed_with_jobs") {
  TestCluster cluster({.nodes = 2, .cores = 2, .heartbeat_ms = 200, .node_timeout_ms = 1500});
  std::vector<JobId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(cluster.Submit(LoggedJob("2"), "j" + std::to_string(i)));
  REQUIRE(WaitUntil([&] { return Runs(cluster).size() == 4; }, 10000));
  // kill -9 node1's execd and its jobs' process groups.
  std::vector<JobId> on_node1;
  for (JobId id : ids) {
    if (Query(cluster, id).node == "node1") on_node1.push_back(id);
  }
  REQUIRE(on_node1.size() == 2);
  cluster.StopExecd(1, SIGKILL);
  for (JobId id : on_node1) {
    kill(-std::stoi(ReadFile(cluster.work() + "/pid." + std::to_string(id) + ".1")), SIGKILL);
  }
  const TimeMs killed = SystemClock().Now();
  std::vector<Job> done = cluster.WaitJobs(ids, 60000);
  auto runs = Runs(cluster);
  TimeMs restarted = 0;
  for (const Job& job : done) {
    INFO("job " << job.id);
    CHECK(job.state == JobState::kCompleted);
    const bool moved = std::count(on_node1.begin(), on_node1.end(), job.id) > 0;
    CHECK(job.attempt == (moved ? 2 : 1));
    CHECK(job.attempts.size() == static_cast<size_t>(job.attempt));
    CHECK((runs[{"end", job.id, job.attempt}]) == 1);  // the run that counts, once
    if (moved) {
      CHECK(job.node == "node2");
      CHECK(job.attempts[0].node == "node1");
      CHECK(job.attempts[0].exit_reason == "node failed: node1 became unreachable");
      CHECK((runs[{"end", job.id, 1}]) == 0);
      restarted = std::max(restarted, job.attempts[1].start_time);
    }
  }
  MESSAGE("node death to jobs running elsewhere: " << (restarted - killed)
                                                   << " ms (node_timeout 1500 ms)");
}

TEST_CASE("partitioned_execd_is_fenced") {
  TestCluster cluster({.nodes = 2, .cores = 1, .heartbeat_ms = 200, .node_timeout_ms = 1500});
  // One long job lands on node1 (the first node with room).
  JobId id = cluster.Submit(LoggedJob("4"), "long");
  REQUIRE(WaitUntil([&] { return Runs(cluster).size() == 1; }, 10000));
  REQUIRE(Query(cluster, id).node == "node1");
  // node1's execd stops answering (a partition, as the scheduler sees it); its job runs on.
  kill(cluster.execd_pid(1), SIGSTOP);
  REQUIRE(WaitUntil([&] { return Query(cluster, id).attempt == 2; }, 10000));
  CHECK(Query(cluster, id).node == "node2");
  // The partition heals while attempt 1 still runs: it must be killed, its result ignored.
  kill(cluster.execd_pid(1), SIGCONT);
  const pid_t stale = std::stoi(ReadFile(cluster.work() + "/pid." + std::to_string(id) + ".1"));
  CHECK(WaitUntil([&] { return !Alive(stale); }, 10000));
  std::vector<Job> done = cluster.WaitJobs({id}, 30000);
  REQUIRE(done.size() == 1);
  CHECK(done[0].state == JobState::kCompleted);
  CHECK(done[0].attempt == 2);
  REQUIRE(done[0].attempts.size() == 2);
  CHECK(done[0].attempts[0].exit_reason.find("node failed") != std::string::npos);
  auto runs = Runs(cluster);
  CHECK((runs[{"end", id, 1}]) == 0);  // the stale attempt never finished
  CHECK((runs[{"end", id, 2}]) == 1);
  // The late exit of attempt 1 (SIGKILL) did not overwrite the job's result.
  CHECK(done[0].exit_code == 0);
}

TEST_CASE("execd_restart_keeps_jobs") {
  TestCluster cluster({.nodes = 1, .cores = 4, .heartbeat_ms = 200, .node_timeout_ms = 5000});
  std::vector<JobId> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(cluster.Submit(LoggedJob("1.5"), "k" + std::to_string(i)));
  REQUIRE(WaitUntil([&] { return Runs(cluster).size() == 4; }, 10000));
  cluster.StopExecd(1, SIGKILL);
  cluster.StartExecd(1);
  std::vector<Job> done = cluster.WaitJobs(ids, 30000);
  auto runs = Runs(cluster);
  for (const Job& job : done) {
    INFO("job " << job.id);
    CHECK(job.state == JobState::kCompleted);
    CHECK(job.attempt == 1);  // the same run, re-attached: never restarted
    CHECK((runs[{"start", job.id, 1}]) == 1);
    CHECK((runs[{"end", job.id, 1}]) == 1);
  }
}

// The execd's children named corral-spawner (from /proc: field 4 of stat is the ppid).
static std::vector<pid_t> SpawnersOf(pid_t execd) {
  std::vector<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.empty() || name[0] < '1' || name[0] > '9') continue;
    const std::string stat = ReadFile(entry.path().string() + "/stat");
    const size_t open = stat.find('(');
    const size_t close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 2 >= stat.size())
      continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == execd && state != "Z" &&
        stat.substr(open + 1, close - open - 1) == "corral-spawner") {
      out.push_back(static_cast<pid_t>(std::stol(name)));
    }
  }
  return out;
}

TEST_CASE("execd_spawner_killed_keeps_jobs") {
  TestCluster cluster({.nodes = 1, .cores = 4, .heartbeat_ms = 200, .node_timeout_ms = 5000});
  std::vector<JobId> ids;
  for (int i = 0; i < 4; ++i)
    ids.push_back(cluster.Submit(LoggedJob("1.5"), "s" + std::to_string(i)));
  REQUIRE(WaitUntil([&] { return Runs(cluster).size() == 4; }, 10000));
  const std::vector<pid_t> spawners = SpawnersOf(cluster.execd_pid(1));
  REQUIRE_MESSAGE(spawners.size() == 1, cluster.Logs());
  // The program beside the execd, exec'd (not a fork of the execd).
  std::error_code ec;
  CHECK(std::filesystem::read_symlink("/proc/" + std::to_string(spawners[0]) + "/exe", ec) ==
        std::filesystem::canonical(Bin("corral-spawner")));
  REQUIRE(kill(spawners[0], SIGKILL) == 0);
  // The running jobs end once each, in their first attempt; later jobs get a new spawner.
  std::vector<Job> done = cluster.WaitJobs(ids, 30000);
  ids.push_back(cluster.Submit(LoggedJob("0"), "after"));
  std::vector<Job> after = cluster.WaitJobs({ids.back()}, 30000);
  done.insert(done.end(), after.begin(), after.end());
  auto runs = Runs(cluster);
  REQUIRE(done.size() == 5);
  for (const Job& job : done) {
    INFO("job " << job.id << "\n" << cluster.Logs());
    CHECK(job.state == JobState::kCompleted);
    CHECK(job.attempt == 1);
    CHECK((runs[{"start", job.id, 1}]) == 1);
    CHECK((runs[{"end", job.id, 1}]) == 1);
  }
  std::string logs;  // whole, not Logs()'s tails
  for (const auto& entry : std::filesystem::directory_iterator(cluster.dir())) {
    if (entry.path().extension() == ".log") logs += ReadFile(entry.path());
  }
  CHECK_MESSAGE(
      logs.find("the spawner (pid " + std::to_string(spawners[0]) + ") died") != std::string::npos,
      logs);
  const std::vector<pid_t> now = SpawnersOf(cluster.execd_pid(1));
  REQUIRE(now.size() == 1);
  CHECK(now[0] != spawners[0]);
}

// An execd installed without corral-spawner beside it stops at once and says what is missing,
// before it registers or takes any job.
TEST_CASE("execd_needs_corral_spawner_beside_it") {
  TempDir dir;
  const std::string execd = dir.path + "/corral-execd";
  std::filesystem::copy_file(Bin("corral-execd"), execd);
  std::filesystem::permissions(execd, std::filesystem::perms::owner_all);
  RunResult run = Run({execd, "--scheduler", "tcp://127.0.0.1:" + std::to_string(FreePort()),
                       "--node", "lonely", "--spool", dir.path + "/spool"},
                      {}, dir.path, "", Slack(30000));
  CHECK(run.exit_code == 1);
  CHECK_MESSAGE(run.err.find(dir.path + "/corral-spawner: No such file or directory "
                             "(corral-spawner must be installed next to corral-execd)") !=
                    std::string::npos,
                run.err);
  CHECK_FALSE(std::filesystem::exists(dir.path + "/spool/jobs"));
}

TEST_CASE("scheduler_crash_during_submit_burst") {
  TestCluster cluster({.nodes = 1, .cores = 1});
  // 4 clients submit 500 held jobs each; the scheduler is killed mid-burst.
  std::vector<pid_t> clients;
  for (int c = 0; c < 4; ++c) {
    clients.push_back(Spawn({Bin("corral-submit-load"), "--endpoint", cluster.ipc(), "--count",
                             "500", "--hold", "--cwd", cluster.work(), "--acked",
                             cluster.work() + "/acked." + std::to_string(c), "--timeout-ms",
                             "2000"},
                            cluster.dir() + "/client" + std::to_string(c) + ".log"));
  }
  REQUIRE(WaitUntil([&] { return ReadFile(cluster.work() + "/acked.3").size() > 600; }, 30000));
  cluster.StopScheduler(SIGKILL);
  cluster.StartScheduler();
  for (pid_t pid : clients) {
    int status = 0;
    REQUIRE(WaitUntil([&] { return waitpid(pid, &status, WNOHANG) == pid; }, 120000));
  }
  std::set<JobId> acked;
  size_t lines = 0;
  for (int c = 0; c < 4; ++c) {
    std::istringstream in(ReadFile(cluster.work() + "/acked." + std::to_string(c)));
    for (std::string line; std::getline(in, line); ++lines) acked.insert(std::stoll(line));
  }
  CHECK(acked.size() == lines);  // no id acknowledged twice
  Client client = cluster.Connect();
  auto reply = client.Call(QueryRequest{{}, "", true}, Slack(10000));
  REQUIRE_MESSAGE(reply.has_value(), (reply ? std::string() : reply.error().ToString()) << "\n" << cluster.Logs());
  std::set<JobId> existing;
  for (const Job& job : std::get<QueryReply>(*reply).jobs) existing.insert(job.id);
  for (JobId id : acked) CHECK_MESSAGE(existing.count(id) == 1, "acknowledged job " << id);
  // At most the requests in flight at the kill (one per client) exist without an ack.
  CHECK(existing.size() <= acked.size() + 4);
  CHECK(existing.size() >= acked.size());
  MESSAGE(acked.size() << " of 2000 acknowledged across the kill; " << existing.size()
                       << " jobs exist");
}

TEST_CASE("scheduler_restart_with_running_jobs") {
  TestCluster cluster({.nodes = 2, .cores = 4, .heartbeat_ms = 200});
  std::vector<JobId> ids;
  for (int i = 0; i < 100; ++i) ids.push_back(cluster.Submit(LoggedJob("0.3"), "r" + std::to_string(i)));
  REQUIRE(WaitUntil([&] { return Runs(cluster).size() >= 30; }, 30000));
  cluster.StopScheduler(SIGTERM);
  cluster.StartScheduler();
  std::vector<Job> done = cluster.WaitJobs(ids, 120000);
  REQUIRE(done.size() == 100);
  auto runs = Runs(cluster);
  for (const Job& job : done) {
    INFO("job " << job.id);
    CHECK(job.state == JobState::kCompleted);
    CHECK(job.attempt == 1);
    CHECK((runs[{"start", job.id, 1}]) == 1);
    CHECK((runs[{"end", job.id, 1}]) == 1);
  }
}

TEST_CASE("drain_and_rerun_policy") {
  TestCluster cluster({.nodes = 2, .cores = 1, .heartbeat_ms = 200, .node_timeout_ms = 1500});
  auto env = cluster.Env();
  auto run = [&](std::vector<std::string> argv) { return Run(argv, env, cluster.work()); };
  // qmod -d: node2 takes no work; qhost says so.
  RunResult mod = run({"qmod", "-d", "all.q@node2"});
  CHECK(mod.exit_code == 0);
  CHECK(mod.out.find("changed state of \"all.q@node2\" (disabled)") != std::string::npos);
  RunResult hosts = run({"qhost"});
  std::string node2_line = hosts.out.substr(hosts.out.find("\nnode2"));
  node2_line = node2_line.substr(1, node2_line.find('\n', 1));
  CHECK(node2_line.find(" down ") != std::string::npos);
  // A -r n job runs on node1; a second job waits: node1 is full and node2 is drained.
  WriteFile(cluster.work() + "/long.sh", "#!/bin/sh\necho $$ > pid.$JOB_ID\nsleep 60\n");
  JobId once = std::stoll(run({"qsub", "-terse", "-cwd", "-r", "n", "long.sh"}).out);
  REQUIRE(WaitUntil([&] { return !ReadFile(cluster.work() + "/pid." + std::to_string(once)).empty(); },
                    10000));
  JobId waiting = std::stoll(run({"qsub", "-terse", "-cwd", "-b", "y", "true"}).out);
  CHECK(WaitUntil([&] { return run({"qstat"}).out.find(" qw ") != std::string::npos; }, 2000));
  CHECK(run({"qmod", "-e", "node2"}).exit_code == 0);
  std::vector<Job> done = cluster.WaitJobs({waiting}, 10000);
  CHECK(done.at(0).node == "node2");
  // node1 dies with its job: a -r n job is not requeued; it fails with "node failed".
  cluster.StopExecd(1, SIGKILL);
  kill(-std::stoi(ReadFile(cluster.work() + "/pid." + std::to_string(once))), SIGKILL);
  done = cluster.WaitJobs({once}, 15000);
  CHECK(done.at(0).state == JobState::kFailed);
  CHECK(done.at(0).reason == "node failed");
  CHECK(done.at(0).attempts.size() == 1);
  CHECK(run({"qacct", "-j", std::to_string(once)}).out.find("reason=node failed") !=
        std::string::npos);
  CHECK(run({"qhost"}).out.find("unreachable") != std::string::npos);
}
