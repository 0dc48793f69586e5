// qacct -j ID: the accounting record of a finished job in Grid Engine's format
// (sge-compat.md §5); qacct -o [USER]: usage totals per owner over a time range. Both
// read the scheduler's job store (there is no accounting file).
#include <charconv>
#include <optional>

#include "common/clock.h"
#include "qtools/accounting.h"
#include "qtools/cli.h"
#include "qtools/client.h"
#include "qtools/sge_format.h"

namespace corral {
namespace {

constexpr std::string_view kUsage = R"(usage: qacct -j job_id[,job_id...] [--json]
       qacct -o [owner] [-b begin] [-e end] [-d days] [--json]
       qacct --swf [-o owner] [-b begin] [-e end] [-d days]

Show the accounting of finished Corral jobs (completed, failed or deleted), read from
the scheduler's job store.

-j: each job's record in Grid Engine's qacct format: a line of 62 '=' then "key value"
lines, among them "failed" (0 ran to its end, 1 never ran, 100 killed while running)
and "exit_status" (the exit code; 128+N for a job killed by signal N).

-o: totals per owner of the jobs that ran and ended in the time range: JOBS,
WALLCLOCK (seconds, every attempt), CPU (seconds, user+system), CORE_HOURS and
GPU_HOURS (wall time x cores or GPUs allocated), FAILED (did not exit 0) and MAXRSS_KB
(largest peak memory of one job).

options:
  -j ids        the jobs to show
  -o [owner]    totals for owner, or for every owner when none is given
  -b begin      with -o: jobs that ended at or after begin ([[CC]YY]MMDDhhmm[.SS], local)
  -e end        with -o: jobs that ended before end (same form)
  -d days       with -o: jobs that ended in the last days days
  --swf         every run (jobs and array tasks) that ended in the range as a Standard
                Workload Format trace, for corral-sim --trace (docs/simulator.md);
                MaxProcs is the cluster's cores, users and groups are uids and gids
  --json        -j: {"jobs":[...]} with the job JSON objects; -o: {"owners":[{"owner",
                "jobs","failed","wallclock_s","cpu_s","core_hours","gpu_hours",
                "max_rss_kb"}...],"from":secs|null,"to":secs|null}
  -help, --help this text

exit status: 0 success; 1 if a job is unknown or has not finished ("error: job id N
not found" on stderr), for bad options or an unreachable scheduler.

environment: CORRAL_SCHEDULER  endpoint of the scheduler (set by "corral local env")
)";

Result<std::vector<Job>> FetchJobs(const QueryRequest& query) {
  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return std::unexpected(client.error());
  Result<QueryReply> reply = client->Query(query, cli::kCallTimeoutMs);
  if (!reply) return std::unexpected(reply.error());
  return std::move(reply->jobs);
}

int ShowJobs(const std::vector<JobId>& ids, bool json) {
  QueryRequest query;
  query.ids = ids;
  query.include_finished = true;
  Result<std::vector<Job>> jobs = FetchJobs(query);
  if (!jobs) return cli::Fail("qacct", jobs.error());
  FillTaskSpecs(*jobs);
  std::vector<Job> finished;
  std::string errors;
  for (JobId id : ids) {
    // A plain job's record; for an array, one record per task that ended, as Grid
    // Engine writes one accounting record per task.
    size_t before = finished.size();
    for (const Job& job : *jobs) {
      if (job.id != id || !IsFinal(job.state)) continue;
      if (job.task == 0 && job.IsArray()) continue;
      finished.push_back(job);
    }
    if (finished.size() == before) errors += "error: job id " + std::to_string(id) + " not found\n";
  }
  if (json) {
    cli::Out(JobsJson(finished));
  } else {
    std::string out;
    for (const Job& job : finished) out += QacctJob(job, cli::GroupName(job.gid));
    cli::Out(out);
  }
  if (!errors.empty()) cli::Err(errors);
  return errors.empty() ? 0 : 1;
}

int ShowOwners(const std::string& owner, TimeMs from, TimeMs to, bool json, bool swf) {
  QueryRequest query;
  query.user = owner;
  query.include_finished = true;
  Result<std::vector<Job>> jobs = FetchJobs(query);
  if (!jobs) return cli::Fail("qacct", jobs.error());
  if (swf) {
    FillTaskSpecs(*jobs);
    Result<Client> client = Client::ConnectFromEnv();
    int procs = 0;
    if (client) {
      if (Result<Message> nodes = client->Call(NodesRequest{}, cli::kCallTimeoutMs)) {
        if (const auto* n = std::get_if<NodesReply>(&*nodes)) {
          for (const Node& node : n->nodes) procs += node.total.cores;
        }
      }
    }
    std::vector<Job> own;
    for (Job& job : *jobs) {
      if (owner.empty() || job.owner == owner) own.push_back(std::move(job));
    }
    cli::Out(SwfExport(own, from, to, procs));
    return 0;
  }
  std::vector<OwnerTotals> totals = TotalsByOwner(*jobs, owner, from, to);
  cli::Out(json ? OwnerTotalsJson(totals, from, to) : OwnerTotalsTable(totals));
  return 0;
}

int Run(const std::vector<std::string>& args) {
  std::vector<std::string> id_words;
  bool json = false;
  bool by_owner = false;
  bool swf = false;
  std::string owner;
  std::optional<std::string> begin, end, days;
  auto value = [&](size_t& i, const std::string& what) -> Result<std::string> {
    if (i + 1 >= args.size()) {
      return Error(Code::kInvalidArgument, "option '" + args[i] + "' needs " + what);
    }
    return args[++i];
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (cli::IsHelp(a)) {
      cli::Out(kUsage);
      return 0;
    }
    if (a == "--json" || a == "-json") {
      json = true;
    } else if (a == "--swf") {
      swf = true;
      by_owner = true;
    } else if (a == "-j") {
      Result<std::string> v = value(i, "a job id (listing all jobs is not supported)");
      if (!v) return cli::Fail("qacct", v.error());
      id_words.push_back(*v);
    } else if (a == "-o") {
      by_owner = true;
      if (i + 1 < args.size() && !args[i + 1].starts_with("-")) owner = args[++i];
    } else if (a == "-b" || a == "-e" || a == "-d") {
      Result<std::string> v = value(i, a == "-d" ? "a number of days" : "a time");
      if (!v) return cli::Fail("qacct", v.error());
      (a == "-b" ? begin : a == "-e" ? end : days) = *v;
    } else {
      return cli::Fail("qacct", Status(Code::kInvalidArgument, "unknown option '" + a + "'"));
    }
  }
  if (by_owner == !id_words.empty()) {
    return cli::Fail("qacct", Status(Code::kInvalidArgument,
                                     "give either -j job_id or -o [owner] (see qacct -help)"));
  }
  if (!by_owner) {
    if (begin || end || days) {
      return cli::Fail("qacct", Status(Code::kInvalidArgument, "-b, -e and -d go with -o"));
    }
    Result<std::vector<JobId>> ids = cli::ParseJobIds(id_words);
    if (!ids) return cli::Fail("qacct", ids.error());
    return ShowJobs(*ids, json);
  }
  const TimeMs now = SystemClock().Now();
  TimeMs from = 0, to = 0;
  if (begin) {
    Result<TimeMs> t = ParseQacctTime(*begin, now);
    if (!t) return cli::Fail("qacct", Status(Code::kInvalidArgument, "-b: " + t.error().message()));
    from = *t;
  }
  if (end) {
    Result<TimeMs> t = ParseQacctTime(*end, now);
    if (!t) return cli::Fail("qacct", Status(Code::kInvalidArgument, "-e: " + t.error().message()));
    to = *t;
  }
  if (days) {
    int n = 0;
    auto [p, ec] = std::from_chars(days->data(), days->data() + days->size(), n);
    if (ec != std::errc() || p != days->data() + days->size() || n <= 0) {
      return cli::Fail("qacct", Status(Code::kInvalidArgument,
                                       "-d: '" + *days + "' is not a positive number of days"));
    }
    from = std::max(from, now - static_cast<TimeMs>(n) * 86400 * 1000);
  }
  return ShowOwners(owner, from, to, json, swf);
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) { return corral::cli::Main("qacct", argc, argv, corral::Run); }
