// Arrays, sweeps and dependencies end to end: qsub -t/-tc/--sweep, the task environment
// and output names, qstat's array lines, qdel -t, results through $CORRAL_RESULT into
// qresults, and dependencies (--after-ok cancelling, -hold_jid ordering).
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "tests/e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

TEST_CASE("arrays_sweeps_and_dependencies") {
  TestCluster cluster({.nodes = 2, .cores = 2});
  auto env = cluster.Env();
  const std::string work = cluster.work();

  // 1. An array of 6 tasks, at most 2 at once, each logging its start and end.
  const std::string log = work + "/tc.log";
  WriteFile(work + "/arr.sh",
            "#!/bin/sh\n#$ -cwd\necho \"+\" >> " + log +
                "\necho id=$SGE_TASK_ID first=$SGE_TASK_FIRST last=$SGE_TASK_LAST "
                "step=$SGE_TASK_STEPSIZE corral=$CORRAL_TASK_ID\nsleep 0.2\necho \"-\" >> " +
                log + "\n");
  RunResult arr = Run({"qsub", "-t", "2-12:2", "-tc", "2", "arr.sh"}, env, work);
  REQUIRE_MESSAGE(arr.exit_code == 0, arr.err);
  CHECK(arr.out == "Your job-array 1.2-12:2 (\"arr.sh\") has been submitted\n");
  RunResult listed = Run({"qstat"}, env);
  CHECK(listed.out.find(" qw ") != std::string::npos);  // the pending ids' line
  std::vector<Job> done = cluster.WaitJobs({1}, 60000);
  REQUIRE(done.size() == 1);
  CHECK(done[0].state == JobState::kCompleted);
  CHECK(ReadFile(work + "/arr.sh.o1.6") == "id=6 first=2 last=12 step=2 corral=6\n");
  CHECK(std::filesystem::exists(work + "/arr.sh.o1.12"));
  CHECK_FALSE(std::filesystem::exists(work + "/arr.sh.o1.3"));
  int running = 0, most = 0;
  std::istringstream in(ReadFile(log));
  for (std::string sign; in >> sign;) {
    running += sign == "+" ? 1 : -1;
    most = std::max(most, running);
  }
  CHECK(most <= 2);  // -tc 2, though 4 cores were free
  RunResult acct = Run({"qacct", "-j", "1"}, env);
  CHECK(acct.out.find("taskid       12\n") != std::string::npos);

  // 2. qdel -t: the pending part of a range goes, running tasks in it are killed.
  RunResult slow = Run({"qsub", "-terse", "-cwd", "-t", "1-20", "-b", "y", "sleep", "30"}, env,
                       work);
  REQUIRE(slow.exit_code == 0);
  CHECK(slow.out == "2.1-20:1\n");
  REQUIRE(WaitUntil([&] { return Run({"qstat"}, env).out.find(" 5-20:1") != std::string::npos; },
                    20000));
  RunResult del = Run({"qdel", "2", "-t", "3-10"}, env);
  CHECK(del.exit_code == 0);
  RunResult after = Run({"qstat", "-j", "2"}, env);
  // Tasks 3-10 are neither pending nor running any more (11 and on may have started).
  const size_t at = after.out.find("corral_pending_tasks:       ");
  REQUIRE_MESSAGE(at != std::string::npos, after.out);
  const std::string pending = after.out.substr(at + 28, after.out.find('\n', at) - at - 28);
  CHECK_MESSAGE(std::stoi(pending) >= 11, pending);
  CHECK(pending.ends_with("-20:1"));
  CHECK(Run({"qdel", "2"}, env).exit_code == 0);
  std::vector<Job> gone = cluster.WaitJobs({2}, 30000);
  CHECK(gone[0].state == JobState::kCancelled);

  // 3. A sweep: every point a task; results land in one table.
  WriteFile(work + "/sweep.yaml", "grid:\n  filter: [median, gaussian]\n  size: [3, 5]\n");
  WriteFile(work + "/measure.sh",
            "#!/bin/sh\n#$ -cwd\nn=$((PARAM_SIZE * PARAM_SIZE))\n"
            "echo \"{\\\"pixels\\\": $n, \\\"filter\\\": \\\"$PARAM_FILTER\\\"}\" > $CORRAL_RESULT\n"
            "grep -q '\"size\"' $CORRAL_PARAMS\n");
  RunResult sweep = Run({"qsub", "-terse", "--sweep", "sweep.yaml", "measure.sh"}, env, work);
  REQUIRE_MESSAGE(sweep.exit_code == 0, sweep.err);
  CHECK(sweep.out == "3.1-4:1\n");
  CHECK(cluster.WaitJobs({3}, 30000)[0].state == JobState::kCompleted);
  RunResult table = Run({"qresults", "3", "--csv", "--sort", "-size,filter"}, env);
  CHECK(table.exit_code == 0);
  // Parameters in the sweep's order, then the fixed columns, then the results (a result
  // key named like a parameter is prefixed).
  CHECK_MESSAGE(table.out.rfind("task,filter,size,state,exit,runtime_s,node,result_filter,pixels\n",
                                0) == 0,
                table.out);
  std::vector<std::string> rows;
  std::istringstream lines(table.out);
  for (std::string line; std::getline(lines, line);) rows.push_back(line);
  REQUIRE(rows.size() == 5);
  CHECK(rows[1].rfind("4,gaussian,5,completed,0,", 0) == 0);  // -size, then filter
  CHECK(rows[2].rfind("2,median,5,completed,0,", 0) == 0);
  CHECK(rows[3].rfind("3,gaussian,3,", 0) == 0);
  CHECK(rows[4].rfind("1,median,3,", 0) == 0);
  CHECK(rows[4].ends_with(",median,9"));
  RunResult sql = Run({"qresults", "3", "--sql", "SELECT SUM(pixels) AS total FROM results"},
                      env);
  CHECK(sql.out == "total\n   68\n");

  // 3b. qresub --failed: a new array of exactly the tasks that failed.
  RunResult half = Run({"qsub", "-terse", "-cwd", "-t", "1-4", "-b", "y", "sh", "-c",
                        "test $SGE_TASK_ID -le 2"},
                       env, work);
  REQUIRE(half.exit_code == 0);
  const JobId half_id = std::stoll(half.out);
  CHECK(cluster.WaitJobs({half_id}, 30000)[0].state == JobState::kFailed);
  RunResult again = Run({"qresub", "-terse", "--failed", std::to_string(half_id)}, env);
  REQUIRE_MESSAGE(again.exit_code == 0, again.err);
  CHECK(again.out == std::to_string(half_id + 1) + ".3-4:1\n");
  cluster.WaitJobs({half_id + 1}, 30000);
  RunResult rerun = Run({"qresults", std::to_string(half_id + 1), "--csv"}, env);
  CHECK(rerun.out.find("\n3,failed,1,") != std::string::npos);
  CHECK(rerun.out.find("\n4,failed,1,") != std::string::npos);
  CHECK(rerun.out.find("\n1,") == std::string::npos);

  // 3c. qsub -sync y on an array: one line per task, the first non-zero status.
  RunResult sync = Run({"qsub", "-sync", "y", "-cwd", "-t", "1-2", "-b", "y", "sh", "-c",
                        "exit $((SGE_TASK_ID * 3 - 3))"},
                       env, work);
  CHECK(sync.exit_code == 3);
  const std::string sync_id = std::to_string(half_id + 2);
  CHECK(sync.err == "Job " + sync_id + ".1 exited with exit code 0.\nJob " + sync_id +
                        ".2 exited with exit code 3.\n");

  // 4. Dependencies: a failing job cancels its --after-ok dependant; -hold_jid waits.
  RunResult fails = Run({"qsub", "-terse", "-cwd", "-b", "y", "false"}, env, work);
  RunResult needs_ok = Run({"qsub", "-terse", "-cwd", "--after-ok", fails.out.substr(0, fails.out.size() - 1),
                            "-b", "y", "true"}, env, work);
  RunResult waits = Run({"qsub", "-terse", "-cwd", "-hold_jid", fails.out.substr(0, fails.out.size() - 1),
                         "-b", "y", "true"}, env, work);
  REQUIRE(needs_ok.exit_code == 0);
  REQUIRE(waits.exit_code == 0);
  std::vector<Job> deps =
      cluster.WaitJobs({std::stoll(fails.out), std::stoll(needs_ok.out), std::stoll(waits.out)}, 30000);
  CHECK(deps[0].state == JobState::kFailed);
  CHECK(deps[1].state == JobState::kCancelled);
  CHECK(deps[1].reason.find("dependency failed: job " + std::to_string(deps[0].id)) == 0);
  CHECK(deps[2].state == JobState::kCompleted);
  CHECK(deps[2].start_time >= deps[0].end_time);
  RunResult future = Run({"qsub", "-hold_jid", "999", "-b", "y", "true"}, env, work);
  CHECK(future.exit_code == 1);
  CHECK(future.err.find("job 999 does not exist yet") != std::string::npos);
}

TEST_CASE("scheduler_crash_with_running_array") {
  // The scheduler is killed while tasks run and others wait: after the restart every task
  // runs exactly once (the execds re-report their running tasks by job, task and attempt).
  TestCluster cluster({.nodes = 2, .cores = 2, .heartbeat_ms = 200});
  auto env = cluster.Env();
  const std::string log = cluster.work() + "/runs.log";
  RunResult sub = Run({"qsub", "-terse", "-cwd", "-t", "1-12", "-tc", "3", "-b", "y", "sh", "-c",
                       "echo start $SGE_TASK_ID $CORRAL_ATTEMPT >> " + log + "; sleep 0.4"},
                      env, cluster.work());
  REQUIRE_MESSAGE(sub.exit_code == 0, sub.err);
  const JobId id = std::stoll(sub.out);
  REQUIRE(WaitUntil([&] { return Lines(ReadFile(log)).size() >= 4; }, 30000));
  cluster.StopScheduler(SIGKILL);
  cluster.StartScheduler();
  std::vector<Job> done = cluster.WaitJobs({id}, 120000);
  REQUIRE(done.size() == 1);
  CHECK(done[0].state == JobState::kCompleted);
  std::map<std::string, int> starts;
  for (const std::string& line : Lines(ReadFile(log))) ++starts[line];
  CHECK(starts.size() == 12);
  for (int t = 1; t <= 12; ++t) {
    INFO("task " << t);
    CHECK(starts["start " + std::to_string(t) + " 1"] == 1);  // once, first attempt
  }
  RunResult table = Run({"qresults", std::to_string(id), "--sql",
                         "SELECT COUNT(*) AS ok FROM results WHERE state = 'completed'"},
                        env);
  CHECK(table.out == "ok\n12\n");
}
