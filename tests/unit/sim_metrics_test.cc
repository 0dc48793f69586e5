// corral-sim's output side: the metric formulas on hand-computed numbers (wait, bounded
// slowdown with tau = 10 s, utilization, makespan, warm-up), the per-user shares, the
// SVG, the CSV and JSON, the command line, and one whole run from a file to files.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sim/cli.h"
#include "sim/metrics.h"
#include "sim/plot.h"
#include "sim/report.h"
#include "temp_dir.h"

using namespace corral;
using namespace corral::sim;

namespace {

SimJob MakeJob(int64_t id, int64_t submit, int64_t run, int size, std::string user = "u1") {
  SimJob j;
  j.swf_id = id;
  j.submit_s = submit;
  j.run_s = run;
  j.estimate_s = run;
  j.size = size;
  j.user = std::move(user);
  j.group = "g1";
  return j;
}

JobOutcome Ran(int64_t start, int64_t run) {
  JobOutcome o;
  o.start_s = start;
  o.end_s = start + run;
  o.node = 0;
  return o;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("sim metrics: bounded slowdown with tau = 10 s") {
  CHECK(BoundedSlowdown(0, 5) == 1.0);                      // 5/10 < 1: bounded below by 1
  CHECK(BoundedSlowdown(5, 1) == 1.0);                      // 6/10
  CHECK(BoundedSlowdown(90, 10) == 10.0);                   // 100/10
  CHECK(BoundedSlowdown(30, 60) == 1.5);                    // 90/60
  CHECK(BoundedSlowdown(100, 1) == doctest::Approx(10.1));  // 101/max(1, 10)
  CHECK(BoundedSlowdown(100, 1, 1) == 101.0);
}

TEST_CASE("sim metrics: wait, slowdown, utilization, makespan and the warm-up") {
  // P = 4. A: submit 0, starts 0, runs 100 on 2. B: submit 10, starts 30, runs 5 on 1.
  // C: submit 20, starts 100, runs 50 on 4. D never ran.
  const std::vector<SimJob> jobs = {MakeJob(1, 0, 100, 2), MakeJob(2, 10, 5, 1),
                                    MakeJob(3, 20, 50, 4), MakeJob(4, 30, 10, 1)};
  const std::vector<JobOutcome> out = {Ran(0, 100), Ran(30, 5), Ran(100, 50), JobOutcome{}};
  Metrics m = ComputeMetrics(jobs, out, 4);
  CHECK(m.jobs == 3);
  CHECK(m.averaged == 3);
  CHECK(m.mean_wait_s == doctest::Approx((0 + 20 + 80) / 3.0));
  // bsld: A 100/100 = 1; B (20 + 5)/10 = 2.5; C (80 + 50)/50 = 2.6
  CHECK(m.mean_bsld == doctest::Approx((1 + 2.5 + 2.6) / 3));
  CHECK(m.mean_response_s == doctest::Approx((100 + 25 + 130) / 3.0));
  CHECK(m.max_wait_s == 80);
  CHECK(m.core_seconds == 405);  // 200 + 5 + 200
  CHECK(m.makespan_s == 150);    // last end 150 - first submit 0
  CHECK(m.utilization == doctest::Approx(405.0 / (4 * 150)));
  // Warm-up 34%: floor(0.34 x 3) = 1 job left out, the first to end (B at 35).
  m = ComputeMetrics(jobs, out, 4, 34);
  CHECK(m.averaged == 2);
  CHECK(m.mean_wait_s == doctest::Approx(40));
  CHECK(m.mean_bsld == doctest::Approx(1.8));
  CHECK(m.utilization == doctest::Approx(405.0 / (4 * 150)));  // the warm-up is for means only
  CHECK(ComputeMetrics(jobs, std::vector<JobOutcome>(4), 4).jobs == 0);
}

TEST_CASE("sim metrics: per-user usage against the share tree's targets") {
  Result<Policy> policy = ParsePolicy(R"(
fairshare:
  tree:
    physics: {shares: 60, users: {alice: 3, bob: 1}}
    chemistry: {shares: 40, users: [carol]}
)",
                                      "p.yaml");
  REQUIRE(policy.has_value());
  const std::vector<SimJob> jobs = {MakeJob(1, 0, 100, 2, "alice"), MakeJob(2, 0, 100, 1, "bob"),
                                    MakeJob(3, 0, 100, 1, "dave")};
  SimResult r;
  r.jobs = {Ran(0, 100), Ran(0, 100), Ran(0, 100)};
  r.accounts = {"physics", "physics", "default"};
  const std::vector<UserShare> shares = UserShares(jobs, r, *policy);
  REQUIRE(shares.size() == 3);
  CHECK(shares[0].user == "alice");
  CHECK(shares[0].share == doctest::Approx(0.5));
  // With dave the implicit default group (1 share) exists: groups 60 + 40 + 1.
  CHECK(shares[0].target == doctest::Approx(60.0 / 101 * 0.75));
  CHECK(shares[1].user == "bob");  // ties on usage: by name
  CHECK(shares[1].target == doctest::Approx(60.0 / 101 * 0.25));
  CHECK(shares[2].user == "dave");
  CHECK(shares[2].group == "default");
  CHECK(shares[2].target == doctest::Approx(1.0 / 101));
}

TEST_CASE("sim plot: an SVG with both panels, an escaped title, and an empty timeline") {
  const std::vector<TimelinePoint> t = {{0, 4, 0}, {50, 2, 3}, {100, 0, 0}};
  const std::string svg = TimelineSvg(t, 4, "a & <b>");
  CHECK(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(svg.find("</svg>") == svg.size() - 7);
  CHECK(svg.find("a &amp; &lt;b&gt;") != std::string::npos);
  CHECK(svg.find("utilization (%)") != std::string::npos);
  CHECK(svg.find("queued jobs") != std::string::npos);
  CHECK(svg.find("time since the first event (minutes)") != std::string::npos);  // 100 s
  const std::string empty = TimelineSvg({}, 4, "none");
  CHECK(empty.find("</svg>") != std::string::npos);
}

TEST_CASE("sim report: CSV rows, JSON document and text") {
  const std::vector<SimJob> jobs = {MakeJob(7, 0, 100, 2), MakeJob(8, 10, 5, 1),
                                    MakeJob(9, 10, 5, 1)};
  SimResult r;
  r.jobs = {Ran(0, 100), Ran(30, 5), JobOutcome{}};
  r.jobs[2].refused = true;
  r.accounts = {"default", "default", "default"};
  std::string csv = CsvHeader();
  AppendJobsCsv(jobs, r, "", csv);
  CHECK(csv ==
        "window,job,user,group,account,submit,start,end,wait,run,estimate,size,bsld,node,status\n"
        ",7,u1,g1,default,0,0,100,0,100,100,2,1.0000,1,ran\n"
        ",8,u1,g1,default,10,30,35,20,5,5,1,2.5000,1,ran\n"
        ",9,u1,g1,default,10,,,,5,5,1,,,refused\n");

  Report report;
  report.trace = "t.swf";
  report.machine = {1, 4};
  report.notes.machine_from = "--procs";
  report.policy = ReferencePolicy(PlannerKind::kEasy);
  RunReport run;
  run.metrics = ComputeMetrics(jobs, r.jobs, 4);
  run.users = UserShares(jobs, r, report.policy);
  report.runs.push_back(run);
  const nlohmann::json j = nlohmann::json::parse(ReportJson(report));
  CHECK(j["machine"]["procs"] == 4);
  CHECK(j["planner"]["algorithm"] == "easy");
  CHECK(j["metrics"]["jobs"] == 2);
  CHECK(j["metrics"]["mean_wait_s"] == 10.0);
  CHECK(j["users"].size() == 1);
  CHECK(j["policy"].is_null());
  const std::string text = ReportText(report);
  CHECK(text.find("mean bounded slowdown    1.75 (tau = 10 s)") != std::string::npos);
  CHECK(text.find("examines every queued job") != std::string::npos);
}

TEST_CASE("sim cli: options and their errors") {
  Result<Options> o =
      ParseArgs({"--trace", "t.swf", "--planner", "easy", "--procs", "64", "--windows", "3,5",
                 "--window-size", "10", "--warmup", "1", "--json"});
  REQUIRE(o.has_value());
  CHECK(o->trace == "t.swf");
  CHECK(o->planner == "easy");
  CHECK(o->procs == 64);
  CHECK(o->windows == std::vector<int64_t>{3, 5});
  CHECK(o->window_size == 10);
  CHECK(o->warmup_percent == 1.0);
  CHECK(o->json);
  CHECK(ParseArgs({"--help"})->help);
  auto error = [](std::vector<std::string> args) {
    Result<Options> r = ParseArgs(args);
    REQUIRE_FALSE(r.has_value());
    return r.error().message();
  };
  CHECK(error({}) == "--trace FILE is required");
  CHECK(error({"--trace"}) == "--trace needs a value");
  CHECK(error({"--trace", "t", "--bogus", "1"}) == "unknown option '--bogus' (see --help)");
  CHECK(error({"--trace", "t", "--planner", "sjf"}) ==
        "--planner: expected fcfs, easy or conservative, got 'sjf'");
  CHECK(error({"--trace", "t", "--procs", "0"}) ==
        "--procs: expected an integer in [1, 1073741824], got '0'");
  CHECK(error({"--trace", "t", "--windows", "1,x", "--window-size", "3"}) ==
        "--windows: expected an integer in [0, 1073741824], got 'x'");
  CHECK(error({"--trace", "t", "--windows", "1"}) == "--windows and --window-size go together");
  CHECK(error({"--trace", "t", "--warmup", "100"}) ==
        "--warmup: expected a percentage in [0, 100), got '100'");
  CHECK(error({"--trace", "t", "--policy", "p", "--compare", "a", "b"}) ==
        "--compare runs its own two policies: drop --policy");
  CHECK(error({"--trace", "t", "--compare", "a"}) == "--compare needs two policy files");
}

TEST_CASE("sim cli: a whole run from an SWF file to the report, CSV and SVG") {
  corral::testing::TempDir dir;
  const std::string trace = dir.path() + "/t.swf";
  std::ofstream(trace) << "; MaxProcs: 4\n"
                          "1 0 -1 10 2 -1 -1 2 10 -1 1 1 1 -1 -1 -1 -1 -1\n"
                          "2 1 -1 5 4 -1 -1 4 5 -1 1 2 1 -1 -1 -1 -1 -1\n"
                          "3 2 -1 3 1 -1 -1 1 3 -1 1 1 1 -1 -1 -1 -1 -1\n"
                          "4 3 -1 0 1 -1 -1 1 3 -1 1 1 1 -1 -1 -1 -1 -1\n";
  const std::string csv = dir.path() + "/jobs.csv";
  const std::string svg = dir.path() + "/plot.svg";
  Result<Options> o =
      ParseArgs({"--trace", trace, "--planner", "easy", "--jobs", csv, "--plot", svg, "--json"});
  REQUIRE(o.has_value());
  Result<std::string> out = RunSim(*o);
  REQUIRE(out.has_value());
  const nlohmann::json j = nlohmann::json::parse(*out);
  CHECK(j["conventions"]["skipped_run_time_le_0"] == 1);
  CHECK(j["metrics"]["jobs"] == 3);
  CHECK(j["metrics"]["mean_wait_s"] == 3.0);  // waits 0, 9, 0 (the textbook case)
  const std::string rows = Slurp(csv);
  CHECK(rows.find(",3,u1,g1,default,2,2,5,0,3,3,1,") != std::string::npos);  // backfilled at once
  CHECK(Slurp(svg).find("</svg>") != std::string::npos);

  // Windows: each from an empty machine; the mean over windows.
  o = ParseArgs(
      {"--trace", trace, "--planner", "fcfs", "--windows", "0,1", "--window-size", "2", "--json"});
  REQUIRE(o.has_value());
  out = RunSim(*o);
  REQUIRE(out.has_value());
  const nlohmann::json w = nlohmann::json::parse(*out);
  REQUIRE(w["windows"].size() == 2);
  CHECK(w["windows"][0]["metrics"]["mean_wait_s"] == 4.5);  // J2 waits 9
  CHECK(w["windows"][1]["metrics"]["mean_wait_s"] == 2.0);  // J2 at 1, J3 waits for it: 6 - 2
  CHECK(w["mean_over_windows"]["mean_wait_s"] == 3.25);

  o = ParseArgs({"--trace", dir.path() + "/missing.swf"});
  REQUIRE(o.has_value());
  CHECK_FALSE(RunSim(*o).has_value());
}
