// qacct -o: per-owner totals over a time range, their table and JSON, and Grid Engine's
// -b/-e time syntax.
#include <doctest/doctest.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include "qtools/accounting.h"
#include "sim/swf.h"

using namespace corral;

namespace {

constexpr TimeMs kHour = 3600 * 1000;

Job Finished(JobId id, std::string owner, JobState state, TimeMs start, TimeMs end, int cores,
             int gpus = 0) {
  Job job;
  job.id = id;
  job.owner = std::move(owner);
  job.state = state;
  job.spec.request = {cores, 0, gpus};
  job.start_time = start;
  job.end_time = end;
  job.attempts = {{1, "n1", start, end, "exited with code 0"}};
  job.cpu_ms = 1500;
  job.max_rss_kb = 1000 * id;
  return job;
}

}  // namespace

TEST_CASE("accounting: totals per owner over every attempt, within the time range") {
  std::vector<Job> jobs = {
      Finished(1, "alice", JobState::kCompleted, 0, kHour, 2),
      Finished(2, "alice", JobState::kFailed, kHour, 3 * kHour, 1, 2),
      Finished(3, "bob", JobState::kCompleted, 0, kHour / 2, 4),
  };
  // A job that ran twice: its first attempt was lost with a node after half an hour.
  jobs[1].attempts.insert(jobs[1].attempts.begin(), {1, "n2", 0, kHour / 2, "node failed"});
  jobs[1].attempts[1].number = 2;
  Job never = Finished(4, "alice", JobState::kCancelled, 0, 0, 1);
  never.attempts.clear();  // cancelled while queued: it used nothing
  jobs.push_back(never);
  Job running = Finished(5, "alice", JobState::kRunning, 0, 0, 1);
  jobs.push_back(running);

  std::vector<OwnerTotals> all = TotalsByOwner(jobs, "", 0, 0);
  REQUIRE(all.size() == 2);
  CHECK(all[0].owner == "alice");
  CHECK(all[0].jobs == 2);
  CHECK(all[0].failed == 1);
  CHECK(all[0].wallclock_s == doctest::Approx(3600 + 1800 + 7200));
  CHECK(all[0].core_hours == doctest::Approx(2 * 1.0 + 1 * 0.5 + 1 * 2.0));
  CHECK(all[0].gpu_hours == doctest::Approx(2 * 0.5 + 2 * 2.0));
  CHECK(all[0].cpu_s == doctest::Approx(3.0));
  CHECK(all[0].max_rss_kb == 2000);
  CHECK(all[1].owner == "bob");
  CHECK(all[1].core_hours == doctest::Approx(2.0));

  // Jobs count in the range in which they ended: [from, to).
  std::vector<OwnerTotals> early = TotalsByOwner(jobs, "alice", 0, 2 * kHour);
  REQUIRE(early.size() == 1);
  CHECK(early[0].jobs == 1);
  CHECK(TotalsByOwner(jobs, "alice", kHour + 1, 0)[0].jobs == 1);
  CHECK(TotalsByOwner(jobs, "carol", 0, 0).empty());

  const std::string table = OwnerTotalsTable(all);
  CHECK(table.rfind("OWNER            JOBS    WALLCLOCK          CPU", 0) == 0);
  CHECK(table.find("\nalice               2        12600        3.000        4.500        5.000        1         2000\n") !=
        std::string::npos);
  const std::string json = OwnerTotalsJson(all, kHour, 0);
  CHECK(json.find("\"owner\":\"bob\"") != std::string::npos);
  CHECK(json.find("\"from\":3600.0") != std::string::npos);
  CHECK(json.find("\"to\":null") != std::string::npos);
}

TEST_CASE("accounting: qacct -b/-e times are [[CC]YY]MMDDhhmm[.SS] in local time") {
  const char* old_tz = std::getenv("TZ");
  const std::string saved = old_tz ? old_tz : "";
  setenv("TZ", "UTC", 1);
  tzset();
  const TimeMs now = 1790000000000;  // 2026-09-21 UTC
  CHECK(ParseQacctTime("202611231530", now).value() == 1795447800000);
  CHECK(ParseQacctTime("2611231530.05", now).value() == 1795447805000);
  CHECK(ParseQacctTime("11231530", now).value() == 1795447800000);  // this year
  CHECK(ParseQacctTime("1123", now).error().message() ==
        "'1123' is not a time of the form [[CC]YY]MMDDhhmm[.SS]");
  CHECK_FALSE(ParseQacctTime("13231530", now).has_value());  // month 13
  CHECK_FALSE(ParseQacctTime("11231530.5", now).has_value());
  if (old_tz) {
    setenv("TZ", saved.c_str(), 1);
  } else {
    unsetenv("TZ");
  }
  tzset();
}

TEST_CASE("accounting: qacct --swf writes a trace corral-sim reads back") {
  std::vector<Job> jobs = {
      Finished(1, "alice", JobState::kCompleted, 10 * 1000, 70 * 1000, 2),
      Finished(2, "bob", JobState::kFailed, 20 * 1000, 25 * 1000, 1),
  };
  jobs[0].submit_time = 5 * 1000;
  jobs[0].uid = 1000;
  jobs[0].spec.h_rt_s = 120;
  jobs[1].submit_time = 8 * 1000;
  jobs[1].uid = 1001;
  Job never = Finished(3, "alice", JobState::kCancelled, 0, 0, 1);
  never.attempts.clear();  // never ran: not in the trace
  jobs.push_back(never);
  const std::string swf = SwfExport(jobs, 0, 0, 4);
  Result<sim::SwfTrace> trace = sim::ParseSwf(swf, "qacct.swf");
  REQUIRE_MESSAGE(trace.has_value(), (trace ? "" : trace.error().message()));
  CHECK(trace->max_procs == 4);
  REQUIRE(trace->records.size() == 2);
  const sim::SwfRecord& a = trace->records[0];
  CHECK(a.job_number == 1);
  CHECK(a.submit_s == 0);
  CHECK(a.wait_s == 5);
  CHECK(a.run_s == 60);
  CHECK(a.allocated_procs == 2);
  CHECK(a.requested_s == 120);
  CHECK(a.status == 1);
  CHECK(a.user == 1000);
  const sim::SwfRecord& b = trace->records[1];
  CHECK(b.submit_s == 3);
  CHECK(b.requested_s == -1);
  CHECK(b.status == 0);
}
