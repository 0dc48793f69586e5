// qacct -j ID: the accounting record of a finished job in Grid Engine's format
// (sge-compat.md §5), read from the scheduler's job store (no accounting file).
#include "qtools/cli.h"
#include "qtools/client.h"
#include "qtools/sge_format.h"

namespace corral {
namespace {

constexpr std::string_view kUsage = R"(usage: qacct -j job_id[,job_id...] [--json]

Show the accounting record of finished Corral jobs (completed, failed or deleted), in
Grid Engine's qacct format: a line of 62 '=' then "key value" lines, among them
"failed" (0 ran to its end, 1 never ran, 100 killed while running) and "exit_status"
(the exit code; 128+N for a job killed by signal N).

options:
  -j ids        the jobs to show (required)
  --json        {"jobs":[...]} with the job JSON objects instead
  -help, --help this text

exit status: 0 success; 1 if a job is unknown or has not finished ("error: job id N
not found" on stderr), for bad options or an unreachable scheduler.

environment: CORRAL_SCHEDULER  endpoint of the scheduler (set by "corral local env")
)";

int Run(const std::vector<std::string>& args) {
  std::vector<std::string> id_words;
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (cli::IsHelp(a)) {
      cli::Out(kUsage);
      return 0;
    }
    if (a == "--json" || a == "-json") {
      json = true;
    } else if (a == "-j") {
      if (i + 1 >= args.size()) {
        return cli::Fail("qacct", Status(Code::kInvalidArgument,
                                         "option '-j' needs a job id (listing all jobs is not "
                                         "supported)"));
      }
      id_words.push_back(args[++i]);
    } else {
      return cli::Fail("qacct", Status(Code::kInvalidArgument, "unknown option '" + a + "'"));
    }
  }
  Result<std::vector<JobId>> ids = cli::ParseJobIds(id_words);
  if (!ids) return cli::Fail("qacct", ids.error());
  if (ids->empty()) {
    return cli::Fail("qacct", Status(Code::kInvalidArgument, "give the job with -j job_id"));
  }
  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return cli::Fail("qacct", client.error());
  QueryRequest query;
  query.ids = *ids;
  query.include_finished = true;
  Result<Message> reply = client->Call(query, cli::kCallTimeoutMs);
  if (!reply) return cli::Fail("qacct", reply.error());
  const auto* jobs = std::get_if<QueryReply>(&*reply);
  if (jobs == nullptr) return cli::Fail("qacct", Status(Code::kInternal, "unexpected reply"));

  std::vector<Job> finished;
  std::string errors;
  for (JobId id : *ids) {
    const Job* found = nullptr;
    for (const Job& job : jobs->jobs) {
      if (job.id == id && IsFinal(job.state)) found = &job;
    }
    if (found == nullptr) {
      errors += "error: job id " + std::to_string(id) + " not found\n";
    } else {
      finished.push_back(*found);
    }
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

}  // namespace
}  // namespace corral

int main(int argc, char** argv) { return corral::cli::Main("qacct", argc, argv, corral::Run); }
