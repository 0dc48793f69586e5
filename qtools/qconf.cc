// qconf: the administrator's commands. Grid Engine's qconf edits its configuration
// objects; Corral's configuration is YAML files, so qconf only asks the scheduler to
// re-read the policy file and shows the audit log of admin actions.
#include <charconv>

#include "qtools/cli.h"
#include "qtools/client.h"
#include "qtools/policy_format.h"

namespace corral {
namespace {

constexpr std::string_view kUsage =
    R"(usage: qconf -reload [--json]
       qconf -audit [N] [--json]

Administer the Corral scheduler.

  -reload       re-read the policy file (the scheduler config's 'policy:'), as SIGHUP
                does. Admins only. An invalid file is refused with file:line:column
                and what is wrong, and the old policy stays in force; on success the
                next scheduling pass orders the pending jobs by the new policy.
  -audit [N]    the latest N (default 100) admin and operator actions: policy reloads,
                qmod -d/-e, and holds, releases and deletions of other users' jobs.
                Admins and operators only.
  --json        the reply as JSON
  -help, --help this text

Admins are root and the users listed under 'admins:' in the scheduler config; operators
those under 'operators:'. Other Grid Engine qconf options (-sq, -mconf, ...) have no
counterpart: edit the YAML files (docs/configuration.md, policies/README.md).

exit status: 0 success; 1 bad option, refused, invalid policy file, or the scheduler
cannot be reached.
environment: CORRAL_SCHEDULER  endpoint of the scheduler (set by "corral local env")
)";

int Run(const std::vector<std::string>& args) {
  bool json = false, reload = false, audit = false;
  int64_t limit = 100;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (cli::IsHelp(a)) {
      cli::Out(kUsage);
      return 0;
    } else if (a == "--json" || a == "-json") {
      json = true;
    } else if (a == "-reload") {
      reload = true;
    } else if (a == "-audit") {
      audit = true;
      if (i + 1 < args.size() && !args[i + 1].empty() && args[i + 1][0] != '-') {
        const std::string& v = args[++i];
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), limit);
        if (ec != std::errc() || end != v.data() + v.size() || limit < 1 || limit > 100000) {
          return cli::Fail("qconf", Status(Code::kInvalidArgument,
                                           "-audit " + v + ": expected a count from 1 to 100000"));
        }
      }
    } else {
      return cli::Fail("qconf", Status(Code::kInvalidArgument,
                                       "option '" + a + "' is not supported (see qconf --help)"));
    }
  }
  if (reload == audit) {
    return cli::Fail("qconf", Status(Code::kInvalidArgument,
                                     "give exactly one of -reload and -audit (see qconf --help)"));
  }
  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return cli::Fail("qconf", client.error());
  Message request = reload ? Message(ReloadRequest{}) : Message(AuditRequest{limit});
  Result<Message> reply = client->Call(request, cli::kCallTimeoutMs);
  if (!reply) return cli::Fail("qconf", reply.error());
  if (json) {
    cli::Out(ReplyJson(*reply));
    return 0;
  }
  if (const auto* r = std::get_if<ReloadReply>(&*reply)) {
    cli::Out("policy " + r->policy + " reloaded: " + r->summary + "\n");
    return 0;
  }
  if (const auto* a = std::get_if<AuditReply>(&*reply)) {
    cli::Out(AuditTable(*a));
    return 0;
  }
  return cli::Fail("qconf", Status(Code::kInternal, "unexpected reply"));
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) { return corral::cli::Main("qconf", argc, argv, corral::Run); }
