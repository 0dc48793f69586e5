// qresub: submit a job again as a new job with the same script and options; with
// --failed, only the tasks of an array that failed (the rerun every sweep user writes).
#include "qtools/cli.h"
#include "qtools/client.h"

namespace corral {
namespace {

constexpr std::string_view kUsage = R"(usage: qresub job_id [--failed] [-terse]

Submit job_id again as a new job: the same script (as spooled at its submission), the
same options and resources, and for an array the same task ids and sweep points. The
original job is left as it is (qdel it first if it still runs and should not).

options:
  --failed      an array job's failed tasks only: the new array holds exactly the task
                ids that failed, each with its own sweep point, so qresults of the new
                job shows the reruns (tasks that were deleted or completed are not rerun)
  -terse        print only the new id (ID, or ID.ranges for an array)
  -help, --help this text

output: "Your job ID ("NAME") has been submitted", or for an array "Your job-array
ID.RANGES ("NAME") has been submitted" (RANGES: the task ids, e.g. 3,7-9:1).

exit status: 0 submitted; 1 unknown job, not yours, no failed tasks, bad options or an
unreachable scheduler.

environment: CORRAL_SCHEDULER  endpoint of the scheduler (set by "corral local env")
)";

int Run(const std::vector<std::string>& args) {
  ResubmitRequest request;
  bool terse = false;
  std::vector<std::string> ids;
  for (const std::string& a : args) {
    if (cli::IsHelp(a)) {
      cli::Out(kUsage);
      return 0;
    } else if (a == "--failed") {
      request.failed_only = true;
    } else if (a == "-terse") {
      terse = true;
    } else if (a.starts_with("-")) {
      return cli::Fail("qresub", Status(Code::kInvalidArgument, "unknown option '" + a + "'"));
    } else {
      ids.push_back(a);
    }
  }
  Result<std::vector<JobId>> parsed = cli::ParseJobIds(ids);
  if (!parsed) return cli::Fail("qresub", parsed.error());
  if (parsed->size() != 1) {
    return cli::Fail("qresub", Status(Code::kInvalidArgument, "give exactly one job id"));
  }
  request.id = parsed->front();
  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return cli::Fail("qresub", client.error());
  Result<Message> reply = client->Call(request, cli::kCallTimeoutMs);
  if (!reply) return cli::Fail("qresub", reply.error());
  const auto* submitted = std::get_if<SubmitReply>(&*reply);
  if (submitted == nullptr) return cli::Fail("qresub", Status(Code::kInternal, "unexpected reply"));
  const std::string ranges = submitted->tasks.empty() ? "" : "." + submitted->tasks;
  const std::string id = std::to_string(submitted->id);
  if (terse) {
    cli::Out(id + ranges + "\n");
  } else {
    cli::Out(std::string(ranges.empty() ? "Your job " : "Your job-array ") + id + ranges + " (\"" +
             submitted->name + "\") has been submitted\n");
  }
  return 0;
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) { return corral::cli::Main("qresub", argc, argv, corral::Run); }
