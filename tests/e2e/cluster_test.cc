// End to end on a real cluster: a scheduler and execds on loopback/ipc in a temp dir,
// real SQLite, real job processes. Bulk submissions go through the client library in
// this process (process starts are expensive here); the q-tools are exercised where
// their own behaviour is the point.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "tests/e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

TEST_CASE("cluster_runs_jobs") {
  TestCluster cluster({.nodes = 2, .cores = 2});
  // 50 jobs: each prints its id and node, and exits with id % 3.
  std::vector<JobId> ids;
  for (int i = 0; i < 50; ++i) {
    ids.push_back(cluster.Submit(
        "#!/bin/sh\necho \"job $JOB_ID on $CORRAL_NODE slots $NSLOTS\"\necho err >&2\n"
        "exit $(( JOB_ID % 3 ))\n",
        "t" + std::to_string(i)));
  }
  // And two through the real qsub, with directives and -terse.
  WriteFile(cluster.work() + "/hello.sh",
            "#!/bin/sh\n#$ -N hello\n#$ -cwd\necho \"hello from $JOB_NAME\"\n", 0755);
  RunResult q = Run({"qsub", "-terse", "hello.sh"}, cluster.Env(), cluster.work());
  REQUIRE_MESSAGE(q.exit_code == 0, q.err);
  ids.push_back(std::stoll(q.out));
  RunResult q2 = Run({"qsub", "-cwd", "-b", "y", "-N", "bin", "/bin/echo", "binary", "job"},
                     cluster.Env(), cluster.work());
  REQUIRE_MESSAGE(q2.exit_code == 0, q2.err);
  CHECK(q2.out.rfind("Your job ", 0) == 0);
  CHECK(q2.out.find("(\"bin\") has been submitted\n") != std::string::npos);
  ids.push_back(std::stoll(q2.out.substr(9)));

  std::vector<Job> done = cluster.WaitJobs(ids, 120000);
  REQUIRE(done.size() == ids.size());
  std::set<std::string> nodes_used;
  for (const Job& job : done) {
    INFO("job " << job.id << " " << job.spec.name);
    const std::string out = ReadFile(cluster.work() + "/" + job.spec.name + ".o" +
                                     std::to_string(job.id));
    if (job.spec.name == "hello") {
      CHECK(out == "hello from hello\n");
      CHECK(job.state == JobState::kCompleted);
      continue;
    }
    if (job.spec.name == "bin") {
      CHECK(out == "binary job\n");
      continue;
    }
    CHECK(out == "job " + std::to_string(job.id) + " on " + job.node + " slots 1\n");
    CHECK(ReadFile(cluster.work() + "/" + job.spec.name + ".e" + std::to_string(job.id)) ==
          "err\n");
    REQUIRE(job.exit_code.has_value());
    CHECK(*job.exit_code == job.id % 3);
    CHECK(job.state == (job.id % 3 == 0 ? JobState::kCompleted : JobState::kFailed));
    CHECK(job.attempt == 1);
    CHECK(job.start_time >= job.submit_time);
    CHECK(job.end_time >= job.start_time);
    nodes_used.insert(job.node);
  }
  CHECK(nodes_used == std::set<std::string>{"node1", "node2"});
}

TEST_CASE("qdel_kills_process_group") {
  TestCluster cluster({.nodes = 1, .cores = 2});
  // The job starts a grandchild in the background and records both pids.
  JobId id = cluster.Submit(
      "#!/bin/sh\nsleep 300 &\necho $! > grandchild.pid\necho $$ > job.pid\nwait\n", "victim");
  const std::string job_pid_file = cluster.work() + "/job.pid";
  const std::string child_pid_file = cluster.work() + "/grandchild.pid";
  REQUIRE_MESSAGE(WaitUntil([&] { return !ReadFile(job_pid_file).empty() &&
                                         !ReadFile(child_pid_file).empty(); },
                            20000),
                  cluster.Logs());
  const pid_t job_pid = std::stoi(ReadFile(job_pid_file));
  const pid_t child_pid = std::stoi(ReadFile(child_pid_file));
  CHECK(Alive(job_pid));
  CHECK(Alive(child_pid));

  RunResult del = Run({"qdel", std::to_string(id)}, cluster.Env());
  CHECK(del.exit_code == 0);
  CHECK(del.out.find("has registered the job " + std::to_string(id) + " for deletion") !=
        std::string::npos);
  std::vector<Job> done = cluster.WaitJobs({id}, 20000);
  REQUIRE(done.size() == 1);
  CHECK(done[0].state == JobState::kCancelled);
  CHECK(done[0].exit_signal == SIGKILL);
  CHECK(WaitUntil([&] { return !Alive(job_pid) && !Alive(child_pid); }, 5000));

  // A second qdel of the finished job fails fast and cleanly.
  RunResult again = Run({"qdel", std::to_string(id)}, cluster.Env());
  CHECK(again.exit_code == 1);
  CHECK(again.out.find("does not exist") != std::string::npos);
}

TEST_CASE("scheduler_crash_restart") {
  TestCluster cluster({.nodes = 2, .cores = 2, .heartbeat_ms = 300});
  // A separate client process keeps submitting and records every acknowledged id.
  const std::string acked_file = cluster.work() + "/acked";
  WriteFile(cluster.work() + "/job.sh",
            "#!/bin/sh\necho \"ran $JOB_ID attempt $CORRAL_ATTEMPT\" >> runs.log\nsleep 0.2\n");
  pid_t submitter = Spawn({Bin("corral-submit-load"), "--endpoint", cluster.ipc(), "--count",
                           "400", "--script", cluster.work() + "/job.sh", "--cwd",
                           cluster.work(), "--acked", acked_file, "--timeout-ms", "1000"},
                          cluster.dir() + "/submitter.log");
  // Let jobs start and submissions flow, then kill -9 the scheduler mid-stream.
  REQUIRE(WaitUntil([&] { return ReadFile(acked_file).size() > 100 &&
                                 !ReadFile(cluster.work() + "/runs.log").empty(); },
                    30000));
  cluster.StopScheduler(SIGKILL);
  cluster.StartScheduler();
  int status = 0;
  REQUIRE(WaitUntil([&] { return waitpid(submitter, &status, WNOHANG) == submitter; }, 120000));
  CHECK(WIFEXITED(status));  // exit 3 is expected: requests in flight at the kill

  std::vector<JobId> acked;
  std::istringstream lines(ReadFile(acked_file));
  for (std::string line; std::getline(lines, line);) acked.push_back(std::stoll(line));
  REQUIRE(acked.size() >= 100);
  std::vector<Job> done = cluster.WaitJobs(acked, 180000);
  std::map<JobId, int> runs;
  std::istringstream log(ReadFile(cluster.work() + "/runs.log"));
  for (std::string line; std::getline(log, line);) {
    std::istringstream words(line);
    std::string ran;
    JobId id = 0;
    words >> ran >> id;
    ++runs[id];
  }
  REQUIRE(done.size() == acked.size());  // every acknowledged job exists and finished
  int completed = 0;
  for (const Job& job : done) {
    INFO("job " << job.id);
    CHECK(job.state == JobState::kCompleted);
    CHECK(runs[job.id] == 1);  // ran exactly once
    CHECK(job.attempt == 1);
    completed += job.state == JobState::kCompleted;
  }
  CHECK(completed == static_cast<int>(acked.size()));
  std::set<JobId> unique(acked.begin(), acked.end());
  CHECK(unique.size() == acked.size());
  MESSAGE("acknowledged " << acked.size() << " jobs across a kill -9 of the scheduler");
}
