// The q-tools as existing workflow tools see them, on a real cluster: exact Grid Engine
// lines, stdout vs stderr, exit codes (shared/sge-compat.md), and the local cluster CLI.
#include <doctest/doctest.h>
#include <signal.h>

#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

namespace {


std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace

TEST_CASE("qtools_formats") {
  TestCluster cluster({.nodes = 1, .cores = 2});
  auto env = cluster.Env();
  auto run = [&](std::vector<std::string> argv, const std::string& in = "") {
    return Run(argv, env, cluster.work(), in);
  };

  // No jobs: qstat prints nothing at all and succeeds.
  RunResult empty = run({"qstat"});
  CHECK(empty.exit_code == 0);
  CHECK(empty.out.empty());
  CHECK(nlohmann::json::parse(run({"qstat", "--json"}).out)["jobs"].empty());

  // A running and a held job, seen the way Nextflow parses qstat: skip two header lines,
  // split on whitespace, column 0 = id, column 4 = state.
  RunResult running = run({"qsub", "-terse", "-cwd", "-b", "y", "-N", "sleeper", "sleep", "60"});
  REQUIRE(running.exit_code == 0);
  const std::string run_id = Lines(running.out).at(0);
  RunResult held = run({"qsub", "-h", "-cwd", "-b", "y", "-N", "a_rather_long_name", "true"});
  REQUIRE(held.exit_code == 0);
  CHECK(held.out.rfind("Your job ", 0) == 0);
  CHECK(held.out.find(" (\"a_rather_long_name\") has been submitted\n") != std::string::npos);
  const std::string held_id = Words(held.out).at(2);
  REQUIRE(WaitUntil([&] { return run({"qstat"}).out.find(" r ") != std::string::npos; }, 10000));
  RunResult table = run({"qstat"});
  std::vector<std::string> lines = Lines(table.out);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] ==
        "job-ID  prior   name       user         state submit/start at     queue           "
        "               slots ja-task-ID ");
  CHECK(lines[1] == std::string(113, '-'));
  std::map<std::string, std::string> states;
  for (size_t i = 2; i < lines.size(); ++i) {
    auto cols = Words(lines[i]);
    REQUIRE(cols.size() > 5);
    states[cols[0]] = cols[4];
  }
  CHECK(states[run_id] == "r");
  CHECK(states[held_id] == "hqw");
  CHECK(table.out.find("a_rather_l ") != std::string::npos);  // names cut to 10 columns
  CHECK(table.out.find("all.q@node1") != std::string::npos);

  // qstat -j: found (exit 0) / missing (exit 1, Grid Engine's stderr text).
  RunResult detail = run({"qstat", "-j", run_id});
  CHECK(detail.exit_code == 0);
  CHECK(detail.out.rfind(std::string(62, '=') + "\njob_number:                 " + run_id + "\n",
                         0) == 0);
  RunResult missing = run({"qstat", "-j", "99999"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.out.empty());
  CHECK(missing.err == "Following jobs do not exist: \n99999\n");

  // qhold/qrls, then qdel of pending and running jobs, and a second qdel.
  CHECK(run({"qrls", held_id}).exit_code == 0);
  RunResult del = run({"qdel", run_id});
  CHECK(del.exit_code == 0);
  CHECK(Lines(del.out).at(0) == "root has registered the job " + run_id + " for deletion");
  RunResult again = run({"qdel", "424242"});
  CHECK(again.exit_code == 1);
  CHECK(again.out == "denied: job \"424242\" does not exist\n");
  cluster.WaitJobs({std::stoll(run_id)}, 10000);

  // Finished jobs: gone from plain qstat, present with -s z and in --json with their end.
  CHECK(run({"qstat", "-j", run_id}).exit_code == 1);
  auto json = nlohmann::json::parse(run({"qstat", "-j", run_id, "--json"}).out);
  REQUIRE(json["jobs"].size() == 1);
  CHECK(json["jobs"][0]["state"] == "cancelled");
  CHECK(json["jobs"][0]["exit_code"] == 137);
  CHECK(run({"qstat", "-s", "z"}).out.find(run_id) != std::string::npos);

  // qsub -sync y: the submit line on stdout, the exit line on stderr, the job's code.
  RunResult sync = run({"qsub", "-sync", "y", "-cwd", "-b", "y", "sh", "-c", "exit 4"});
  CHECK(sync.exit_code == 4);
  const std::string sync_id = Words(sync.out).at(2);
  CHECK(sync.err.find("Job " + sync_id + " exited with exit code 4.") != std::string::npos);
  // qacct -j: "exit_status  N" with two spaces, as the Snakemake SGE profile greps.
  RunResult acct = run({"qacct", "-j", sync_id});
  CHECK(acct.exit_code == 0);
  CHECK(acct.out.find("exit_status  4") != std::string::npos);
  CHECK(run({"qacct", "-j", "99999"}).err == "error: job id 99999 not found\n");

  // A script from stdin with directives on any line, comments after them.
  RunResult stdin_job = run({"qsub", "-terse"}, "#!/bin/sh\necho one\n#$ -N piped  # named\n#$ -cwd\n");
  REQUIRE(stdin_job.exit_code == 0);
  JobId piped = std::stoll(stdin_job.out);
  cluster.WaitJobs({piped}, 10000);
  CHECK(ReadFile(cluster.work() + "/piped.o" + std::to_string(piped)) == "one\n");

  // Bad input: nothing on stdout, a reason on stderr, exit 1, nothing submitted.
  WriteFile(cluster.work() + "/bad.sh", "#!/bin/sh\necho x\n#$ -cwd\n#$ -frobnicate\n");
  RunResult bad = run({"qsub", "bad.sh"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.out.empty());
  CHECK(bad.err.find("bad.sh:4") != std::string::npos);
  RunResult huge = run({"qsub", "-pe", "smp", "8", "-cwd", "-b", "y", "true"});
  CHECK(huge.exit_code == 1);
  CHECK(huge.out.empty());
  CHECK(huge.err == "Unable to run job: no node has 8 cores; largest has 2.\nExiting.\n");
  RunResult unknown = run({"qsub", "-cwd", "-l", "tmpdir=<TBD>", "-b", "y", "true"});
  CHECK(unknown.exit_code == 0);  // unknown -l names: a warning, never a failure
  CHECK(unknown.err.find("tmpdir") != std::string::npos);
  CHECK(unknown.out.find("has been submitted") != std::string::npos);
}

TEST_CASE("local_cluster_cli") {
  TempDir dir;
  const std::string cluster = dir.path + "/c";
  const std::map<std::string, std::string> env = {{"PATH", "/usr/bin:/bin"}};
  RunResult up = Run({Bin("corral"), "local", "up", "--dir", cluster, "--nodes", "2", "--cpus",
                      "1", "--heartbeat", "0.2", "--node-timeout", "2"},
                     env, "", "", 60000);
  REQUIRE_MESSAGE(up.exit_code == 0, (up.out + up.err));
  const std::string sched_pid = ReadFile(cluster + "/run/scheduler.pid");
  REQUIRE(!sched_pid.empty());
  CHECK(std::filesystem::exists(cluster + "/run/execd-node1.pid"));
  CHECK(std::filesystem::exists(cluster + "/run/execd-node2.pid"));

  RunResult envs = Run({Bin("corral"), "local", "env", "--dir", cluster}, env);
  CHECK(envs.exit_code == 0);
  CHECK(envs.out.find("export CORRAL_SCHEDULER=") != std::string::npos);
  CHECK(envs.out.find("ipc://" + cluster + "/run/scheduler.sock") != std::string::npos);

  // Running again starts nothing new.
  RunResult again = Run({Bin("corral"), "local", "up", "--dir", cluster}, env, "", "", 60000);
  CHECK(again.exit_code == 0);
  CHECK(ReadFile(cluster + "/run/scheduler.pid") == sched_pid);
  CHECK(again.out.find("already running") != std::string::npos);

  // kill -9 of the scheduler, then up again: it comes back on the same port and the
  // execds (not restarted) reconnect to it.
  const std::string execd_pid = ReadFile(cluster + "/run/execd-node1.pid");
  const pid_t spid = std::stoi(sched_pid);
  kill(spid, SIGKILL);
  REQUIRE(WaitUntil([&] { return !Alive(spid); }, 5000));
  RunResult restart = Run({Bin("corral"), "local", "up", "--dir", cluster}, env, "", "", 60000);
  CHECK_MESSAGE(restart.exit_code == 0, (restart.out + restart.err));
  CHECK(ReadFile(cluster + "/run/execd-node1.pid") == execd_pid);

  std::map<std::string, std::string> qenv = {
      {"CORRAL_SCHEDULER", "ipc://" + cluster + "/run/scheduler.sock"},
      {"PATH", std::string(CORRAL_BIN_DIR) + ":/usr/bin:/bin"}};
  RunResult sync = Run({"qsub", "-sync", "y", "-cwd", "-b", "y", "true"}, qenv, dir.path);
  CHECK_MESSAGE(sync.exit_code == 0, sync.err);

  // A job still running when the cluster goes down is ended with it.
  WriteFile(dir.path + "/long.sh", "#!/bin/sh\necho $$ > long.pid\nsleep 300\n");
  CHECK(Run({"qsub", "-cwd", "long.sh"}, qenv, dir.path).exit_code == 0);
  REQUIRE(WaitUntil([&] { return !ReadFile(dir.path + "/long.pid").empty(); }, 10000));
  const pid_t long_pid = std::stoi(ReadFile(dir.path + "/long.pid"));

  RunResult down = Run({Bin("corral"), "local", "down", "--dir", cluster}, env, "", "", 60000);
  CHECK(down.exit_code == 0);
  CHECK(!Alive(std::stoi(execd_pid)));
  CHECK(down.out.find("killed 1 job(s) still running") != std::string::npos);
  CHECK(WaitUntil([&] { return !Alive(long_pid); }, 5000));
  CHECK(!std::filesystem::exists(cluster + "/run/scheduler.pid"));
  RunResult bad = Run({Bin("corral"), "local", "up", "--frobnicate"}, env);
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("frobnicate") != std::string::npos);
}
