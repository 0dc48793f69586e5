// qdel: delete jobs (sge-compat.md §4). One CancelRequest for all ids (or for every job
// of -u USER), one Grid Engine answer line per job on stdout, exit 1 if any failed.
#include "qtools/cli.h"
#include "qtools/client.h"
#include "qtools/sge_format.h"

namespace corral {
namespace {

constexpr std::string_view kUsage = R"(usage: qdel [-f] job_id[,job_id...] [job_id...] [-t range]
       qdel [-f] -u user

Delete Corral jobs. A pending or held job is removed at once; a running job is killed
(its process group gets SIGKILL) and leaves the queue when its node reports the exit.

options:
  -u user       delete every pending, held and running job of user
  -t range      only these tasks of the array jobs named (N, N-M or N-M:S): pending
                ones are removed, running ones killed
  -f            accepted for compatibility (deletion is always forced)
  -help, --help this text

output (stdout), one line per job:
  <user> has deleted job <id>                      (was pending or held)
  <user> has registered the job <id> for deletion  (was running)
  denied: job "<id>" does not exist                (unknown or already finished)

exit status: 0 if every job was deleted or registered for deletion; 1 otherwise
(also for bad options or an unreachable scheduler).

environment: CORRAL_SCHEDULER  endpoint of the scheduler (set by "corral local env")
)";

int Run(const std::vector<std::string>& args) {
  CancelRequest request;
  std::vector<std::string> id_words;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (cli::IsHelp(a)) {
      cli::Out(kUsage);
      return 0;
    }
    if (a == "-f") continue;
    if (a == "-t") {
      if (i + 1 >= args.size()) {
        return cli::Fail("qdel", Status(Code::kInvalidArgument, "option '-t' needs a task range"));
      }
      Result<TaskRange> range = ParseTaskRange(args[++i]);
      if (!range) return cli::Fail("qdel", Status(Code::kInvalidArgument, "-t: " + range.error().message()));
      request.tasks = *range;
      continue;
    }
    if (a == "-u") {
      if (i + 1 >= args.size()) {
        return cli::Fail("qdel", Status(Code::kInvalidArgument, "option '-u' needs a value"));
      }
      request.user = args[++i];
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      return cli::Fail("qdel", Status(Code::kInvalidArgument, "unknown option '" + a + "'"));
    }
    id_words.push_back(a);
  }
  Result<std::vector<JobId>> ids = cli::ParseJobIds(id_words);
  if (!ids) return cli::Fail("qdel", ids.error());
  request.ids = std::move(*ids);
  if (request.ids.empty() && request.user.empty()) {
    return cli::Fail("qdel", Status(Code::kInvalidArgument,
                                    "no job id given (usage: qdel job_id... | qdel -u user)"));
  }
  if (!request.ids.empty() && !request.user.empty()) {
    return cli::Fail("qdel", Status(Code::kInvalidArgument, "give job ids or -u user, not both"));
  }

  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return cli::Fail("qdel", client.error());
  Result<Message> reply = client->Call(request, cli::kCallTimeoutMs);
  if (!reply) return cli::Fail("qdel", reply.error());
  const auto* outcomes = std::get_if<OutcomeReply>(&*reply);
  if (outcomes == nullptr) return cli::Fail("qdel", Status(Code::kInternal, "unexpected reply"));
  const std::string user = cli::CurrentUser();
  std::string out;
  bool failed = false;
  for (const JobOutcome& outcome : outcomes->outcomes) {
    OutcomeLine line = QdelLine(outcome, user);
    out += line.text;
    failed = failed || line.error;
  }
  cli::Out(out);
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) { return corral::cli::Main("qdel", argc, argv, corral::Run); }
