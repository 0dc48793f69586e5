// qacct -o: usage totals per owner over a time range, from finished job records. Pure:
// the job list and the range in, the table or JSON text out.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/types.h"

namespace corral {

struct OwnerTotals {
  std::string owner;
  int64_t jobs = 0;          // finished jobs that ran (had at least one attempt)
  int64_t failed = 0;        // of which did not exit 0 (failed, cancelled, killed)
  double wallclock_s = 0;    // sum over every attempt of end - start
  double cpu_s = 0;          // user + system CPU of the jobs' last attempts
  double core_hours = 0;     // sum of wall time x cores allocated
  double gpu_hours = 0;      // sum of wall time x GPUs allocated
  int64_t max_rss_kb = 0;    // largest peak resident set of any job
};

// Totals per owner (sorted by name) of the finished jobs whose end time is in
// [from, to) (0 = unbounded), restricted to `owner` unless it is empty.
std::vector<OwnerTotals> TotalsByOwner(std::span<const Job> jobs, std::string_view owner,
                                      TimeMs from, TimeMs to);

// Grid Engine-like table: "OWNER ... " header, a line of '=', one line per owner.
std::string OwnerTotalsTable(std::span<const OwnerTotals> totals);
// {"owners":[{"owner","jobs","failed","wallclock_s","cpu_s","core_hours","gpu_hours",
// "max_rss_kb"}...],"from":secs|null,"to":secs|null}
std::string OwnerTotalsJson(std::span<const OwnerTotals> totals, TimeMs from, TimeMs to);

// The finished jobs and array tasks that ran, ended in [from, to) (0 = unbounded), as a
// Standard Workload Format trace (Parallel Workloads Archive, version 2.2) for
// corral-sim: header comments (UnixStartTime = the first submit, MaxProcs =
// `max_procs`), then one line per run in submit order, numbered 1..N: submit and wait
// (seconds from the start), run time of the last attempt, processors (cores), CPU time per
// processor, max RSS (KB), requested processors and time (h_rt, -1 if none) and memory
// (KB), status (1 exit 0, 0 failed, 5 cancelled), uid, gid; the rest -1. Array tasks
// need their spec (FillTaskSpecs).
std::string SwfExport(std::span<const Job> jobs, TimeMs from, TimeMs to, int max_procs);

// A qacct -b/-e time: Grid Engine's [[CC]YY]MMDDhhmm[.SS] in local time, as epoch ms.
// `now` supplies the year when it is left out.
Result<TimeMs> ParseQacctTime(std::string_view text, TimeMs now);

}  // namespace corral
