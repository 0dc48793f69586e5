// Real workflow clients on a real cluster: Snakemake 7 (Debian's package) driving the
// q-commands three ways (tests/e2e/data/Snakefile), and qwait, Corral's own blocking wait.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "tests/e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

namespace {

namespace fs = std::filesystem;

constexpr const char* kSnakemake = "/usr/bin/snakemake";  // Debian's, run by /usr/bin/python3
// A bound on one Snakemake run (about 15 s here, idle): generous, for a loaded machine.
constexpr int64_t kRunDeadlineMs = 120000;

// The workflow of tests/e2e/data, copied into a fresh directory of the cluster's work dir.
std::string NewRunDir(const TestCluster& cluster, const std::string& name) {
  const std::string dir = cluster.work() + "/" + name;
  fs::create_directories(dir);
  fs::copy_file(fs::path(__FILE__).parent_path() / "data" / "Snakefile", dir + "/Snakefile");
  return dir;
}

// The environment Snakemake and its jobs run in: the q-tools first, then Debian's Python
// (not a pyenv shim), CI=true for its 1 s status rounds instead of 10 s.
std::map<std::string, std::string> SnakemakeEnv(const TestCluster& cluster) {
  auto env = cluster.Env();
  env["CI"] = "true";
  env["PYTHONPATH"] = "";  // empty = unset for Python: nothing of another interpreter's
  env["PYTHONHOME"] = "";
  return env;
}

// The external job ids Snakemake logged ("Submitted job 3 with external jobid '42'.").
std::vector<std::string> ExternalIds(const std::string& log) {
  std::vector<std::string> ids;
  static const std::regex kSubmitted("with external jobid '([0-9]+)'");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), kSubmitted);
       it != std::sregex_iterator(); ++it) {
    ids.push_back((*it)[1]);
  }
  return ids;
}

// Stdout files of Corral jobs (NAME.oID) in `dir`: one per job Snakemake submitted.
int JobOutputFiles(const std::string& dir) {
  int n = 0;
  static const std::regex kStdout(R"(snakejob\..*\.o[0-9]+)");
  for (const auto& entry : fs::directory_iterator(dir)) {
    n += std::regex_match(entry.path().filename().string(), kStdout);
  }
  return n;
}

void CheckOutputs(const std::string& dir, const std::string& slots_of_2) {
  CHECK(ReadFile(dir + "/numbers.txt") == "1\n2\n3\n");
  CHECK(ReadFile(dir + "/squares/1.txt") == "1\n");
  CHECK(ReadFile(dir + "/squares/2.txt") == "4\n");
  CHECK(ReadFile(dir + "/squares/3.txt") == "9\n");
  CHECK(ReadFile(dir + "/sum.txt") == "14\n");
  // NSLOTS as Corral set it: -pe smp {threads} gives the 2-thread job two slots.
  CHECK(ReadFile(dir + "/squares/1.slots") == "1\n");
  CHECK(ReadFile(dir + "/squares/2.slots") == slots_of_2 + "\n");
  CHECK(ReadFile(dir + "/squares/3.slots") == "1\n");
  CHECK(JobOutputFiles(dir) == 5);  // numbers, 3 squares, sum: all ran on the cluster
}

// Runs `fn` with SIGINT at its default action, so that children started meanwhile get the
// default too (a SIGINT ignored by an ancestor would otherwise stay ignored in them).
template <typename Fn>
auto WithDefaultSigint(Fn fn) {
  struct sigaction dfl {};
  struct sigaction old {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGINT, &dfl, &old);
  auto result = fn();
  sigaction(SIGINT, &old, nullptr);
  return result;
}

// Threads of a live process (/proc/PID/status), 0 if it is gone.
int Threads(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("Threads:")) return std::stoi(line.substr(8));
  }
  return 0;
}

// Exit code of a process started with Spawn, waiting for it up to `timeout_ms`
// (then killed: -1).
int ExitCode(pid_t pid, int64_t timeout_ms) {
  const int status = Stop(pid, 0, timeout_ms);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("snakemake_workflows") {
  REQUIRE_MESSAGE(access(kSnakemake, X_OK) == 0,
                  "Snakemake 7 is missing: apt-get install snakemake (scripts/setup.sh)");
  TestCluster cluster({.nodes = 2, .cores = 2});
  const auto env = SnakemakeEnv(cluster);
  const std::vector<std::string> common = {kSnakemake,       "--jobs", "4",
                                           "--latency-wait", "5",      "--nocolor"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = common;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  };

  {
    // 1. --cluster: qsub -terse's first stdout line is the id; completion is seen through
    //    the jobscript's marker files (no --cluster-status).
    const std::string dir = NewRunDir(cluster, "cluster");
    RunResult r = Run(with({"--cluster", "qsub -terse -cwd -V -pe smp {threads}"}), env, dir, "",
                      kRunDeadlineMs);
    REQUIRE_MESSAGE(r.exit_code == 0, r.out << r.err << cluster.Logs());
    CheckOutputs(dir, "2");
    const std::vector<std::string> ids = ExternalIds(r.err + r.out);
    CHECK(ids.size() == 5);
    for (const std::string& id : ids) {
      RunResult acct = Run({"qacct", "-j", id}, env, dir);
      CHECK_MESSAGE(acct.out.find("exit_status  0") != std::string::npos, acct.out);
    }
  }
  {
    // 2. --cluster-sync: qsub -sync y's exit code is the job's.
    const std::string dir = NewRunDir(cluster, "sync");
    RunResult r =
        Run(with({"--cluster-sync", "qsub -sync y -cwd -V"}), env, dir, "", kRunDeadlineMs);
    REQUIRE_MESSAGE(r.exit_code == 0, r.out << r.err << cluster.Logs());
    CheckOutputs(dir, "1");
  }
  {
    // 3. --cluster-cancel qdel: SIGINT while the three square jobs run; Snakemake qdels every
    //    job it submitted, within its 2 s limit per call.
    const std::string dir = NewRunDir(cluster, "cancel");
    const std::string log = dir + "/snakemake.log";
    std::vector<std::string> argv = {"/bin/sh", "-c", "cd '" + dir + "' && exec \"$@\"", "sh"};
    for (const std::string& a : with({"--cluster", "qsub -terse -cwd -V", "--cluster-cancel",
                                      "qdel", "--config", "nap=30"})) {
      argv.push_back(a);
    }
    const pid_t snakemake = WithDefaultSigint([&] { return Spawn(argv, log, env); });
    auto running = [&] {
      RunResult q = Run({"qstat"}, env, dir);
      int n = 0;
      for (const std::string& line : Lines(q.out)) n += line.find(" r ") != std::string::npos;
      return n;
    };
    // All four jobs submitted (its log says so) and the three squares running. qstat alone
    // is not enough: under the sanitizers the numbers job can still be listed as running
    // after Snakemake has seen its output, before the last square is submitted.
    const bool started = WaitUntil(
        [&] { return ExternalIds(ReadFile(log)).size() == 4 && running() == 3; }, kRunDeadlineMs);
    if (!started) Stop(snakemake);
    REQUIRE_MESSAGE(started, ReadFile(log) << cluster.Logs());
    kill(snakemake, SIGINT);
    const bool exited = WaitUntil([&] { return !Alive(snakemake); }, 20000);
    Stop(snakemake);
    REQUIRE_MESSAGE(exited, ReadFile(log));
    const std::string text = ReadFile(log);
    CHECK(text.find("Terminating processes on user request") != std::string::npos);

    // Every job it submitted has ended: the numbers job before the interrupt, the squares
    // by qdel (killed while running: exit_status 137, Grid Engine's failed 100).
    std::string left;
    const bool ended = WaitUntil([&] { return (left = Run({"qstat"}, env, dir).out).empty(); },
                                 30000);
    REQUIRE_MESSAGE(ended, ("still listed:\n" + left + text + cluster.Logs()));
    const std::vector<std::string> ids = ExternalIds(text);
    REQUIRE_MESSAGE(ids.size() == 4, text);
    for (const std::string& id : ids) {
      RunResult detail = Run({"qstat", "-j", id, "--json"}, env, dir);
      auto jobs = nlohmann::json::parse(detail.out)["jobs"];
      REQUIRE(jobs.size() == 1);
      const std::string name = jobs[0]["name"];
      RunResult acct = Run({"qacct", "-j", id}, env, dir);
      if (name.starts_with("snakejob.numbers.")) {
        CHECK(jobs[0]["state"] == "completed");
        continue;
      }
      CHECK_MESSAGE(name.starts_with("snakejob.square."), name);
      CHECK(jobs[0]["state"] == "cancelled");
      CHECK(acct.out.find("exit_status  137") != std::string::npos);
      CHECK(acct.out.find("failed       100 : assumedly after job") != std::string::npos);
    }
    CHECK(ReadFile(dir + "/numbers.txt") == "1\n2\n3\n");
    CHECK(!fs::exists(dir + "/squares/1.txt"));
    CHECK(!fs::exists(dir + "/sum.txt"));
  }
}

TEST_CASE("qwait_cli") {
  TestCluster cluster({.nodes = 1, .cores = 4});
  const auto env = cluster.Env();
  auto run = [&](std::vector<std::string> argv, int64_t timeout_ms = 30000) {
    return Run(argv, env, cluster.work(), "", timeout_ms);
  };
  auto submit = [&](std::vector<std::string> argv) {
    RunResult r = run(argv);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return Lines(r.out).at(0).substr(0, Lines(r.out).at(0).find('.'));
  };
  // Ends with exit code $2 once the file $1 exists.
  WriteFile(cluster.work() + "/gate.sh",
            "#!/bin/sh\nwhile [ ! -e \"$1\" ]; do sleep 0.05; done\nexit $2\n", 0755);

  RunResult help = run({"qwait", "-help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.starts_with("usage: qwait [--timeout SECONDS] [--json] job_id"));
  CHECK(run({"qwait", "--help"}).out == help.out);
  RunResult no_ids = run({"qwait"});
  CHECK(no_ids.exit_code == 1);
  CHECK(no_ids.err.starts_with("qwait: no job id given"));
  CHECK(run({"qwait", "--timeout", "soon", "1"}).exit_code == 1);
  CHECK(run({"qwait", "-x", "1"}).exit_code == 1);

  // Unknown ids fail at once, before anything is waited for.
  const std::string gated = submit({"qsub", "-terse", "-cwd", "gate.sh", "never", "0"});
  RunResult unknown = run({"qwait", gated, "99999", "99998"}, 10000);
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.out == "");
  CHECK(unknown.err == "error: job id 99999 not found\nerror: job id 99998 not found\n");

  // --timeout: exit 124 like timeout(1), the job named, and left running.
  RunResult timed = run({"qwait", "--timeout", "0.5", gated}, 10000);
  CHECK(timed.exit_code == 124);
  CHECK(timed.out == "");
  CHECK(timed.err == "qwait: timed out after 0.5 s; not ended: " + gated + "\n");
  RunResult zero = run({"qwait", "--timeout=0", gated}, 10000);
  CHECK(zero.exit_code == 124);

  // Ctrl-C: stops waiting (130), never deletes the job. Its wait threads (one per open
  // wait, beside the main thread) exist only once its signal handler is in place.
  const std::string qwait_log = cluster.dir() + "/qwait-int.log";
  const pid_t interrupted = WithDefaultSigint([&] {
    return Spawn({Bin("qwait"), gated}, qwait_log, env);
  });
  const bool handler_ready = WaitUntil([&] { return Threads(interrupted) >= 2; }, 10000);
  if (!handler_ready) Stop(interrupted);
  REQUIRE(handler_ready);
  kill(interrupted, SIGINT);
  CHECK(ExitCode(interrupted, 10000) == 130);
  CHECK(ReadFile(qwait_log) ==
        "qwait: interrupted; not seen to end: " + gated + " (not deleted; qdel deletes jobs)\n");
  RunResult still = run({"qstat", "-j", gated, "--json"});
  CHECK(nlohmann::json::parse(still.out)["jobs"][0]["state"] == "running");
  CHECK(run({"qdel", gated}).exit_code == 0);
  RunResult deleted = run({"qwait", gated}, 20000);
  CHECK(deleted.exit_code == 137);  // killed by qdel: 128 + SIGKILL, as qacct reports it
  CHECK(deleted.out == "Job " + gated + " exited because of signal SIGKILL\n");

  // One line per job as it ends, not when all have: b ends first and is printed while a
  // still runs. The exit status is that of the first failed job in the order given (a).
  const std::string a = submit({"qsub", "-terse", "-cwd", "gate.sh", "go-a", "5"});
  const std::string b = submit({"qsub", "-terse", "-cwd", "gate.sh", "go-b", "3"});
  const std::string c = submit({"qsub", "-terse", "-cwd", "-b", "y", "true"});
  cluster.WaitJobs({std::stoll(c)}, 10000);
  const std::string log = cluster.dir() + "/qwait.log";
  const pid_t waiting = Spawn({Bin("qwait"), a, b, c}, log, env);
  const std::string c_line = "Job " + c + " exited with exit code 0.\n";
  const std::string b_line = "Job " + b + " exited with exit code 3.\n";
  const std::string a_line = "Job " + a + " exited with exit code 5.\n";
  CHECK(WaitUntil([&] { return ReadFile(log) == c_line; }, 10000));  // ended before: at once
  WriteFile(cluster.work() + "/go-b", "");
  CHECK(WaitUntil([&] { return ReadFile(log) == c_line + b_line; }, 10000));
  CHECK(Alive(waiting));
  WriteFile(cluster.work() + "/go-a", "");
  CHECK(ExitCode(waiting, 10000) == 5);
  CHECK(ReadFile(log) == c_line + b_line + a_line);

  // Already-ended jobs, --json: one job object per line.
  RunResult json = run({"qwait", "--json", c, b});
  CHECK(json.exit_code == 3);
  const std::vector<std::string> objects = Lines(json.out);
  REQUIRE(objects.size() == 2);
  auto first = nlohmann::json::parse(objects[0]);
  CHECK(first["id"] == std::stoll(c));
  CHECK(first["state"] == "completed");
  CHECK(first["exit_code"] == 0);
  CHECK(nlohmann::json::parse(objects[1])["exit_code"] == 3);

  // A job deleted before it ran; an array (one line per task, its first failure's status).
  const std::string never = submit({"qsub", "-terse", "-h", "-cwd", "gate.sh", "never", "0"});
  CHECK(run({"qdel", never}).exit_code == 0);
  RunResult never_ran = run({"qwait", never});
  CHECK(never_ran.exit_code == 1);
  CHECK(never_ran.out.starts_with("Unable to run job " + never));
  const std::string array = submit({"qsub", "-terse", "-t", "1-3", "-cwd", "-b", "y", "sh", "-c",
                                    "exit $((SGE_TASK_ID == 2 ? 7 : 0))"});
  RunResult tasks = run({"qwait", array});
  CHECK(tasks.exit_code == 7);
  CHECK(tasks.out == "Job " + array + ".1 exited with exit code 0.\nJob " + array +
                         ".2 exited with exit code 7.\nJob " + array +
                         ".3 exited with exit code 0.\n");
}
