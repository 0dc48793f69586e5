// Golden tests of Grid Engine's formats (shared/sge-compat.md) against the real q-commands on
// a real cluster: qsub's lines, the qstat table byte for byte, qstat -j, qdel's lines and exit
// codes, qacct -j; and qstat parsed exactly as Nextflow's SGE executor parses it.
#include <doctest/doctest.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <ctime>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "tests/e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

namespace {


// Left-justified in `width` columns, cut to `width` (printf's %-W.Ws).
std::string Left(const std::string& s, size_t width) {
  std::string out = s.substr(0, width);
  return out + std::string(width - out.size(), ' ');
}
// Right-justified in `width` columns (printf's %Wd for the numbers used here).
std::string Right(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

std::string UserName() {
  const passwd* pw = getpwuid(getuid());
  return pw != nullptr ? pw->pw_name : std::to_string(getuid());
}

// qstat's "MM/DD/YYYY HH:MM:SS" (sge_time.c) of a JSON time in seconds, local time.
std::string SgeDate(double seconds) {
  const std::time_t t = static_cast<std::time_t>(std::floor(seconds));
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%m/%d/%Y %H:%M:%S", &tm);
  return buf;
}

// One row of the qstat table as sge-compat.md §3.1 gives it, built field by field:
// id %7d, prior %7.5f, name %-10.10s, user %-12.12s, state %-5.5s, date, queue %-30.30s,
// slots %5d, ja-task-ID (7 blanks for a plain job).
std::string Row(const std::string& id, const std::string& name, const std::string& user,
                const std::string& state, const std::string& date, const std::string& queue,
                int slots, const std::string& task) {
  return Right(id, 7) + " " + "0.00000" + " " + Left(name, 10) + " " + Left(user, 12) + " " +
         Left(state, 5) + " " + date + " " + Left(queue, 30) + " " +
         Right(std::to_string(slots), 5) + " " + (task.empty() ? std::string(7, ' ') : task) + "\n";
}

// The qacct -j line of a numeric field: key in 13 columns, value left-justified in 20.
std::string AcctLine(const std::string& key, const std::string& value) {
  return Left(key, 13) + Left(value, 20);
}

bool HasLine(const std::string& text, const std::string& line) {
  for (const std::string& l : Lines(text)) {
    if (l == line) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("sge_golden_formats") {
  TestCluster cluster({.nodes = 1, .cores = 2});
  const auto env = cluster.Env();
  auto run = [&](std::vector<std::string> argv, int64_t timeout_ms = 30000) {
    return Run(argv, env, cluster.work(), "", timeout_ms);
  };
  auto json_of = [&](const std::string& id) {
    RunResult r = run({"qstat", "-j", id, "--json"});
    REQUIRE(r.exit_code == 0);
    auto jobs = nlohmann::json::parse(r.out)["jobs"];
    for (const auto& j : jobs) {
      if (std::to_string(j["id"].get<long long>()) == id && j["task"].is_null()) return j;
    }
    FAIL("no JSON record of job " << id << " in " << r.out);
    return nlohmann::json();
  };
  const std::string user = UserName();
  WriteFile(cluster.work() + "/run.sh", "#!/bin/sh\nsleep 60\n", 0755);

  // Golden rule 6: no jobs => no output at all, exit 0.
  RunResult empty = run({"qstat"});
  CHECK(empty.exit_code == 0);
  CHECK(empty.out == "");
  CHECK(empty.err == "");

  // §2.4: the submit lines. A 2-slot job fills the node, so the others stay pending.
  RunResult first = run({"qsub", "-cwd", "-N", "golden_run", "-pe", "smp", "2", "run.sh"});
  REQUIRE(first.exit_code == 0);
  CHECK(first.err == "");
  REQUIRE(first.out.starts_with("Your job "));
  const std::string running = first.out.substr(9, first.out.find(' ', 9) - 9);
  CHECK(first.out == "Your job " + running + " (\"golden_run\") has been submitted\n");

  RunResult terse = run({"qsub", "-terse", "-cwd", "-N", "pending_job_name", "run.sh"});
  REQUIRE(terse.exit_code == 0);
  CHECK(terse.err == "");
  const std::string pending = Lines(terse.out).at(0);
  CHECK(terse.out == pending + "\n");
  CHECK(std::stoll(pending) == std::stoll(running) + 1);  // plain decimal ids, in order

  RunResult held_sub = run({"qsub", "-terse", "-h", "-cwd", "run.sh"});  // named after the script
  REQUIRE(held_sub.exit_code == 0);
  const std::string held = Lines(held_sub.out).at(0);

  RunResult array_sub = run({"qsub", "-t", "1-3", "-cwd", "-N", "arr", "run.sh"});
  REQUIRE(array_sub.exit_code == 0);
  CHECK(array_sub.err == "");
  REQUIRE(array_sub.out.starts_with("Your job-array "));
  const std::string array = array_sub.out.substr(15, array_sub.out.find('.') - 15);
  CHECK(array_sub.out == "Your job-array " + array + ".1-3:1 (\"arr\") has been submitted\n");

  RunResult stepped_sub = run({"qsub", "-terse", "-t", "2-10:4", "-cwd", "run.sh"});
  REQUIRE(stepped_sub.exit_code == 0);
  const std::string stepped = stepped_sub.out.substr(0, stepped_sub.out.find('.'));
  CHECK(stepped_sub.out == stepped + ".2-10:4\n");

  // Rule 1: warnings on stderr, stdout exactly the id line.
  RunResult warned = run({"qsub", "-terse", "-h", "-cwd", "-l", "tmpdir=<TBD>", "run.sh"});
  CHECK(warned.exit_code == 0);
  CHECK(warned.err.find("tmpdir") != std::string::npos);
  const std::string warned_id = Lines(warned.out).at(0);
  CHECK(warned.out == warned_id + "\n");
  CHECK(run({"qdel", warned_id}).exit_code == 0);

  // §2.3: an unknown option: nothing on stdout, a reason on stderr, exit 1.
  RunResult bad = run({"qsub", "-frobnicate", "run.sh"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.out == "");
  CHECK(bad.err != "");

  // §3.1: the table, byte for byte. Running jobs first, then pending ones by id.
  REQUIRE_MESSAGE(WaitUntil([&] { return json_of(running)["state"] == "running"; }, 15000),
                  cluster.Logs());
  const std::string header =
      "job-ID  prior   name       user         state submit/start at     queue           "
      "               slots ja-task-ID ";
  REQUIRE(header.size() == 114);
  // Each field of a row starts under its header label.
  const std::map<std::string, size_t> columns = {
      {"job-ID", 0},           {"prior", 8},  {"name", 16},  {"user", 27},       {"state", 40},
      {"submit/start at", 46}, {"queue", 66}, {"slots", 97}, {"ja-task-ID", 103}};
  // Not a structured binding: clang 14 cannot capture one in CHECK_MESSAGE's lambda.
  for (const auto& column : columns) {
    CHECK_MESSAGE(header.find(column.first) == column.second, column.first);
  }

  auto date_of = [&](const std::string& id, const char* field) {
    return SgeDate(json_of(id)[field].get<double>());
  };
  const std::string expected =
      header + "\n" + std::string(113, '-') + "\n" +
      Row(running, "golden_run", user, "r", date_of(running, "start_time"), "all.q@node1", 2, "") +
      Row(pending, "pending_job_name", user, "qw", date_of(pending, "submit_time"), "", 1, "") +
      Row(held, "run.sh", user, "hqw", date_of(held, "submit_time"), "", 1, "") +
      Row(array, "arr", user, "qw", date_of(array, "submit_time"), "", 1, "1-3:1") +
      Row(stepped, "run.sh", user, "qw", date_of(stepped, "submit_time"), "", 1, "2-10:4");
  RunResult table = run({"qstat"});
  CHECK(table.exit_code == 0);
  CHECK(table.err == "");
  CHECK(table.out == expected);
  // The other selections of the default listing print the same bytes.
  CHECK(run({"qstat", "-u", user}).out == expected);
  CHECK(run({"qstat", "-s", "pr"}).out == expected);
  const std::vector<std::string> rows = Lines(table.out);
  REQUIRE(rows.size() == 7);
  CHECK(rows[2].size() == 110);  // a plain job's row: 103 columns of fields + 7 blanks

  // §3.2: qstat -j, found and missing.
  RunResult detail = run({"qstat", "-j", running});
  CHECK(detail.exit_code == 0);
  CHECK(detail.err == "");
  const std::vector<std::string> detail_lines = Lines(detail.out);
  REQUIRE(detail_lines.size() > 3);
  CHECK(detail_lines[0] == std::string(62, '='));
  CHECK(detail_lines[1] == "job_number:                 " + running);
  CHECK(HasLine(detail.out, "job_name:                   golden_run"));
  CHECK(HasLine(detail.out, "owner:                      " + user));
  CHECK(HasLine(detail.out, "cwd:                        " + cluster.work()));
  for (size_t i = 1; i < detail_lines.size(); ++i) {
    // "key:" then blanks to column 28, where the value starts (show_job.c).
    const std::string& l = detail_lines[i];
    const size_t colon = l.find(':');
    CHECK_MESSAGE((colon != std::string::npos && colon < 27 && l.size() >= 28 &&
                   l.find_first_not_of(' ', colon + 1) >= 28),
                  l);
  }
  RunResult missing = run({"qstat", "-j", "99999"});
  CHECK(missing.exit_code == 1);
  CHECK(missing.out == "");
  CHECK(missing.err == "Following jobs do not exist: \n99999\n");
  RunResult two_missing = run({"qstat", "-j", "99998,99999"});
  CHECK(two_missing.exit_code == 1);
  CHECK(two_missing.err == "Following jobs do not exist: \n99998, 99999\n");

  // §4: qdel's lines: pending, several at once, running; errors exit 1.
  RunResult del_pending = run({"qdel", pending});
  CHECK(del_pending.exit_code == 0);
  CHECK(del_pending.out == user + " has deleted job " + pending + "\n");
  CHECK(del_pending.err == "");
  RunResult del_mixed = run({"qdel", held, "424242"});
  CHECK(del_mixed.exit_code == 1);
  CHECK(del_mixed.out ==
        user + " has deleted job " + held + "\ndenied: job \"424242\" does not exist\n");
  RunResult del_arrays = run({"qdel", array + "," + stepped});
  CHECK(del_arrays.exit_code == 0);
  CHECK(del_arrays.out ==
        user + " has deleted job " + array + "\n" + user + " has deleted job " + stepped + "\n");
  RunResult del_running = run({"qdel", running});
  CHECK(del_running.exit_code == 0);
  CHECK(del_running.out == user + " has registered the job " + running + " for deletion\n");
  cluster.WaitJobs({std::stoll(running)}, 15000);
  // Rule 7: a finished job leaves qstat at once. Nothing is left: no output at all.
  RunResult after = run({"qstat"});
  CHECK(after.exit_code == 0);
  CHECK(after.out == "");
  // A second qdel of a gone job (dask calls qdel twice) fails cleanly, and within the 2 s
  // Snakemake's --cluster-cancel allows it (a Run deadline, as subprocess's timeout=2).
  RunResult again = run({"qdel", running}, 2000);
  CHECK(again.exit_code == 1);
  CHECK(again.out == "denied: job \"" + running + "\" does not exist\n");
  CHECK(again.err == "");

  // §2.4 -sync y: submit line on stdout, end line on stderr, the job's exit code.
  RunResult sync =
      run({"qsub", "-sync", "y", "-cwd", "-N", "syncer", "-b", "y", "sh", "-c", "exit 4"});
  CHECK(sync.exit_code == 4);
  REQUIRE(sync.out.starts_with("Your job "));
  const std::string synced = sync.out.substr(9, sync.out.find(' ', 9) - 9);
  CHECK(sync.out == "Your job " + synced + " (\"syncer\") has been submitted\n");
  CHECK(sync.err == "Job " + synced + " exited with exit code 4.\n");
  CHECK(run({"qstat"}).out == "");

  // §5: qacct -j: 62 '=', then key in 13 columns; exit_status with two spaces after it.
  RunResult acct = run({"qacct", "-j", synced});
  CHECK(acct.exit_code == 0);
  CHECK(acct.err == "");
  const std::vector<std::string> acct_lines = Lines(acct.out);
  REQUIRE(!acct_lines.empty());
  CHECK(acct_lines[0] == std::string(62, '='));
  CHECK(HasLine(acct.out, AcctLine("jobnumber", synced)));
  CHECK(HasLine(acct.out, AcctLine("jobname", "syncer")));
  CHECK(HasLine(acct.out, "failed       0    "));
  CHECK(HasLine(acct.out, AcctLine("exit_status", "4")));
  CHECK(acct.out.find("exit_status  4") != std::string::npos);  // the profile's regex
  // A job killed while running (qdel): signal deaths report 128+signo.
  RunResult killed = run({"qacct", "-j", running});
  CHECK(killed.exit_code == 0);
  CHECK(HasLine(killed.out, AcctLine("exit_status", "137")));
  RunResult acct_missing = run({"qacct", "-j", "99999"});
  CHECK(acct_missing.exit_code == 1);
  CHECK(acct_missing.out == "");
  CHECK(acct_missing.err == "error: job id 99999 not found\n");
}

// Nextflow's SGE executor (nextflow-io/nextflow SgeExecutor.groovy parseQueueStatus and
// DECODE_STATUS): skip two lines, split each row on blanks, keep rows of more than 5
// columns, id = column 0, state = column 4, decoded through this table. A row it drops or a
// state it cannot decode makes Nextflow think the job has ended.
TEST_CASE("nextflow_qstat_states") {
  const std::map<std::string, std::string> kDecode = {
      {"t", "RUNNING"},  {"r", "RUNNING"}, {"R", "RUNNING"}, {"hr", "RUNNING"},
      {"qw", "PENDING"}, {"h", "PENDING"}, {"w", "PENDING"}, {"P", "PENDING"},
      {"N", "PENDING"},  {"S", "HOLD"},    {"s", "HOLD"},    {"T", "HOLD"},
      {"Tr", "HOLD"},    {"hqw", "HOLD"},  {"Eqw", "ERROR"}, {"E", "ERROR"}};
  // "dr" (running, qdel pending) is Grid Engine's own code, and Nextflow maps it to nothing
  // there too: checkActiveStatus() then says "not active", which is the truth for a job that
  // is being killed. It is the one state allowed outside the table.
  const std::string kBeingDeleted = "dr";

  TestCluster cluster({.nodes = 1, .cores = 2});
  const auto env = cluster.Env();
  auto run = [&](std::vector<std::string> argv, const std::string& cwd = "") {
    return Run(argv, env, cwd.empty() ? cluster.work() : cwd);
  };
  // Parses like parseQueueStatus; every row must survive (more than 5 columns).
  auto parse = [&](const std::string& text) {
    std::multimap<std::string, std::string> states;  // id -> state (array rows share an id)
    size_t index = 0;
    for (const std::string& row : Lines(text)) {
      if (index++ < 2) continue;
      std::vector<std::string> cols;
      std::istringstream words(row);
      for (std::string w; words >> w;) cols.push_back(w);
      CHECK_MESSAGE(cols.size() > 5, "Nextflow would drop this row: '" << row << "'");
      if (cols.size() > 5) states.emplace(cols[0], cols[4]);
    }
    return states;
  };
  std::set<std::string> seen;  // every state Corral showed
  auto observe = [&](const std::string& id, const std::string& want_state,
                     const std::string& want_nextflow) {
    for (const auto& args :
         {std::vector<std::string>{"qstat"}, std::vector<std::string>{"qstat", "-q", "all.q"}}) {
      RunResult r = run(args);
      REQUIRE(r.exit_code == 0);
      CHECK(r.err == "");  // Nextflow merges stderr into what it parses
      auto states = parse(r.out);
      bool found = false;
      for (auto [it, end] = states.equal_range(id); it != end; ++it) {
        seen.insert(it->second);
        if (it->second != want_state) continue;
        found = true;
        auto decoded = kDecode.find(it->second);
        CHECK(want_nextflow == (decoded == kDecode.end() ? "" : decoded->second));
      }
      CHECK_MESSAGE(found, "job " << id << " not shown as " << want_state << ":\n" << r.out);
    }
  };
  auto submit = [&](std::vector<std::string> argv, const std::string& cwd = "") {
    RunResult r = run(argv, cwd);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return Lines(r.out).back().substr(0, Lines(r.out).back().find('.'));
  };
  // Runs until the file named by its argument exists.
  WriteFile(cluster.work() + "/hold.sh", "#!/bin/sh\nwhile [ ! -e \"$1\" ]; do sleep 0.1; done\n",
            0755);

  // A Nextflow task as it submits one: its header (SgeExecutorTest's golden header, with
  // the task name's parentheses), `qsub -terse .command.run` in the task directory,
  // the id taken from the last line of the output.
  const std::string task_dir = cluster.work() + "/nf-task";
  std::filesystem::create_directories(task_dir);
  WriteFile(task_dir + "/.command.run",
            "#!/bin/bash\n#$ -N nf-say_hello_(1)\n#$ -o " + task_dir +
                "/.command.log\n#$ -j y\n#$ -terse\n#$ -notify\n#$ -l h_rt=00:05:00\n"
                "NXF_CHDIR=" +
                task_dir +
                "\ncd $NXF_CHDIR\n"
                "while [ ! -e ../release ]; do sleep 0.1; done\necho hello; echo $? > .exitcode\n",
            0755);
  RunResult nf = run({"qsub", "-terse", ".command.run"}, task_dir);
  REQUIRE_MESSAGE(nf.exit_code == 0, nf.err);
  const std::string nf_last = Lines(nf.err + nf.out).back();
  REQUIRE(nf_last.find_first_not_of("0123456789") == std::string::npos);  // parseJobId: isLong
  const std::string nf_task = nf_last;                                    // one core

  // The plain jobs end when "release" exists; the arrays' tasks only when deleted.
  const std::string sleeper = submit({"qsub", "-terse", "-cwd", "hold.sh", "release"});
  const std::string waiting = submit({"qsub", "-terse", "-cwd", "hold.sh", "release"});
  const std::string held = submit({"qsub", "-terse", "-h", "-cwd", "hold.sh", "release"});
  const std::string array = submit({"qsub", "-terse", "-t", "1-4", "-cwd", "hold.sh", "never"});
  const std::string held_array =
      submit({"qsub", "-terse", "-h", "-t", "1-2", "-cwd", "hold.sh", "never"});
  REQUIRE(WaitUntil([&] { return run({"qstat"}).out.find(" r ") != std::string::npos; }, 15000));
  REQUIRE(WaitUntil(
      [&] {
        auto states = parse(run({"qstat"}).out);
        return states.find(nf_task) != states.end() && states.find(nf_task)->second == "r" &&
               states.find(sleeper) != states.end() && states.find(sleeper)->second == "r";
      },
      15000));
  observe(nf_task, "r", "RUNNING");
  observe(waiting, "qw", "PENDING");
  observe(held, "hqw", "HOLD");
  observe(array, "qw", "PENDING");  // the array's pending tasks
  observe(held_array, "hqw", "HOLD");

  // Running array tasks: free the cores (the plain jobs end), then two tasks run, each a row.
  CHECK(run({"qdel", waiting, held}).exit_code == 0);
  WriteFile(cluster.work() + "/release", "");
  cluster.WaitJobs({std::stoll(nf_task), std::stoll(sleeper)}, 15000);
  CHECK(ReadFile(task_dir + "/.exitcode") == "0\n");
  CHECK(ReadFile(task_dir + "/.command.log") == "hello\n");
  REQUIRE(WaitUntil([&] { return run({"qstat"}).out.find(" r ") != std::string::npos; }, 15000));
  observe(array, "r", "RUNNING");
  observe(array, "qw", "PENDING");  // tasks 3-4 still wait

  // Being deleted (dr): stop the node's execd so the kill's outcome is not reported yet.
  const std::string victim = array;
  {
    struct Resume {  // even when a REQUIRE throws: the cluster must be able to stop
      pid_t pid;
      ~Resume() { kill(pid, SIGCONT); }
    } resume{cluster.execd_pid(1)};
    kill(resume.pid, SIGSTOP);
    RunResult del = run({"qdel", victim});
    CHECK(del.exit_code == 0);
    observe(victim, kBeingDeleted, "");
  }
  CHECK(run({"qdel", held_array}).exit_code == 0);
  cluster.WaitJobs({std::stoll(victim), std::stoll(held_array)}, 15000);
  CHECK(run({"qstat"}).out == "");

  // Every state shown is one Nextflow decodes, or dr (see above).
  for (const std::string& state : seen) {
    CHECK_MESSAGE((kDecode.count(state) == 1 || state == kBeingDeleted),
                  "Corral showed state '" << state << "', which Nextflow cannot map");
  }
  CHECK(seen == std::set<std::string>{"r", "qw", "hqw", "dr"});
}
