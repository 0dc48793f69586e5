// Grid Engine's text, byte for byte where clients parse it (sge-compat.md §3-5): the
// qstat table and -j detail, qdel/qhold/qrls answer lines, qacct -j, qhost. Pure
// functions of their arguments (times are rendered in the local time zone, as GE does).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/protocol.h"
#include "common/types.h"

namespace corral {

// "qw" queued, "hqw" held, "r" running, "dr" running with a qdel pending, "z" finished.
std::string_view SgeStateCode(const Job& job);

// "MM/DD/YYYY HH:MM:SS" (qstat), and ctime's "Tue Jan  2 10:11:12 2024" (qstat -j, qacct).
std::string FormatSgeDate(TimeMs t);
std::string FormatCtime(TimeMs t);

// The two header lines: 114 characters with a trailing blank, then 113 dashes.
std::string QstatHeader();
// One job line: `%7d %7.5f %-10.10s %-12.12s %-5.5s <date> %-30.30s %5d ` + 7 blanks.
// Priority is always 0.00000 until priority policies exist.
std::string QstatRow(const Job& job);
// Array tasks come from the scheduler without a spec (their array's applies): gives each
// task in `jobs` the name, request, range and cwd of its array when that is in `jobs` too.
void FillTaskSpecs(std::vector<Job>& jobs);
// The same for one task, given its array's spec.
void FillTaskSpec(const JobSpec& array, Job& task);
// qstat -j of an array, after its detail: counts of its tasks by state ("corral_tasks:
// pending=N running=N completed=N failed=N cancelled=N"), its pending ids, and the first
// failed task ids. `tasks` are its dispatched tasks.
std::string ArraySummary(const Job& array, std::span<const Job* const> tasks);
// Header + rows, or "" when `jobs` is empty (qstat prints nothing at all then).
std::string QstatTable(std::span<const Job> jobs);

// `qstat -j` for one job: 62 '=' then "key:" padded to 28 columns, Grid Engine's keys in
// show_job.c order, then Corral's own keys (corral_state, ...). `group` = name of job.gid.
std::string QstatJobDetail(const Job& job, std::string_view group);
// stderr of `qstat -j` when none of the ids exists: "Following jobs do not exist: \n1, 2\n".
std::string MissingJobsMessage(std::span<const JobId> ids);

// One answer line (with '\n') of qdel / qhold / qrls and whether it is an error (exit 1).
// `user` is the calling user, as Grid Engine names the requester.
struct OutcomeLine {
  std::string text;
  bool error = false;
};
OutcomeLine QdelLine(const JobOutcome& outcome, std::string_view user);
OutcomeLine QholdLine(const JobOutcome& outcome, std::string_view user);

// `qacct -j` record of a finished job (qacct.c showjob). `group` = name of job.gid.
std::string QacctJob(const Job& job, std::string_view group);
// The exit_status qacct reports: the exit code (128+signal), or 1 for a job that failed
// or was cancelled without one (never ran), 0 otherwise.
int QacctExitStatus(const Job& job);

// One "corral_attempt N:  node=... start=... end=... reason=..." line per attempt, for
// qstat -j and qacct -j.
std::vector<std::string> AttemptLines(const Job& job);

// qhost's table: header, 125 dashes, the "global" line, one line per node; Grid Engine's
// columns (LOAD = the node's 1-minute load average), then GPUS and CORES (used/total),
// STATE (up, draining, down, unreachable) and SEEN (heartbeat age at `now`).
// `resources` (qhost -F): each node-local consumable left ("hc:") and each feature ("hf:").
std::string QhostTable(const NodesReply& nodes, TimeMs now, bool resources = false);

// `--json` output: {"jobs":[...]} with JobToJson objects; {"nodes":[...]} for qhost.
std::string JobsJson(std::span<const Job> jobs);
std::string NodesJson(const NodesReply& nodes, TimeMs now);

}  // namespace corral
