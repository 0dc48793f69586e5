// What corral-sim prints: the text summary, the --json document, the --jobs CSV, and the
// --compare table. Formatting only; the numbers come from metrics.h and simulator.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "policies/policy_config.h"
#include "sim/metrics.h"
#include "sim/simulator.h"
#include "sim/workload.h"

namespace corral::sim {

// One simulation: the whole trace, or one window of it.
struct RunReport {
  std::string label;     // "" for the whole trace, else "jobs 1981-3004"
  size_t first_job = 0;  // index of its first job in Workload::jobs
  Metrics metrics;
  SimStats stats;
  std::vector<UserShare> users;
  std::map<int64_t, std::string> stuck;  // SimResult::stuck
};

struct Report {
  std::string trace;  // the file
  Machine machine;
  WorkloadNotes notes;
  std::string policy_file;  // "" = none (reference policy)
  Policy policy;            // as run (planner settings included)
  double warmup_percent = 0;
  bool arrivals_first = true;
  std::vector<RunReport> runs;  // one, or one per window
};

// The human-readable summary; at most `max_users` per-user rows (0: none).
std::string ReportText(const Report& report, size_t max_users = 15);

// The same as one JSON document (every user), indented.
std::string ReportJson(const Report& report);

// Two runs of one trace under two policies, metric by metric and user by user (at most
// `max_users` rows, most usage under `a` first).
std::string CompareText(const Report& a, const Report& b, size_t max_users = 15);
std::string CompareJson(const Report& a, const Report& b);

// Per job: window,job,user,group,account,submit,start,end,wait,run,estimate,size,bsld,node,
// status. job is the SWF job number, group the SWF group, account the fair-share group it
// was charged to; times in seconds from the trace's time 0; start, end, wait, bsld and node
// (1-based) are empty for jobs that never ran; status is ran | refused | never_started.
// `window` is the run's label (empty for a whole trace). Appends one run's rows to `out`;
// call CsvHeader() once first.
std::string CsvHeader();
void AppendJobsCsv(const std::vector<SimJob>& jobs, const SimResult& result,
                   const std::string& window, std::string& out);

}  // namespace corral::sim
