// qmod -d / -e: disable (drain) or enable execution nodes, Grid Engine style. A queue
// instance "all.q@node1", "*@node1" or a bare node name all name node1. Root only.
#include <unistd.h>

#include "qtools/cli.h"
#include "qtools/client.h"

namespace corral {
namespace {

constexpr std::string_view kUsage = R"(usage: qmod -d|-e NODE...

Disable or enable Corral execution nodes. A disabled node runs its jobs to the end but
gets no new ones (qhost shows it "draining", then "down"); enabling it makes it take work
again. NODE may be a node name or a Grid Engine queue instance (all.q@NODE, *@NODE).
The setting is stored and survives scheduler and execd restarts. Only root may do this.

options:
  -d            disable the nodes
  -e            enable the nodes
  -help, --help this text

output: one line per node on stdout, e.g.
  root@head changed state of "all.q@node1" (disabled)

exit status: 0 every node changed; 1 bad usage, an unknown node, or permission denied.

environment: CORRAL_SCHEDULER  endpoint of the scheduler (set by "corral local env")
)";

int Run(const std::vector<std::string>& args) {
  std::optional<bool> enable;
  std::vector<std::string> nodes;
  for (const std::string& a : args) {
    if (cli::IsHelp(a)) {
      cli::Out(kUsage);
      return 0;
    }
    if (a == "-d" || a == "-e") {
      enable = a == "-e";
    } else if (!a.empty() && a[0] == '-') {
      return cli::Fail("qmod", Status(Code::kInvalidArgument, "unknown option '" + a + "'"));
    } else {
      const size_t at = a.find('@');
      nodes.push_back(at == std::string::npos ? a : a.substr(at + 1));
    }
  }
  if (!enable || nodes.empty()) {
    return cli::Fail("qmod", Status(Code::kInvalidArgument, "usage: qmod -d|-e NODE..."));
  }
  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return cli::Fail("qmod", client.error());
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  int status = 0;
  for (const std::string& node : nodes) {
    Result<Message> reply = client->Call(NodeAdminRequest{node, *enable}, cli::kCallTimeoutMs);
    if (!reply) {
      cli::Err("qmod: " + reply.error().message() + "\n");
      status = 1;
      continue;
    }
    cli::Out(cli::CurrentUser() + "@" + host + " changed state of \"all.q@" + node + "\" (" +
             (*enable ? "enabled" : "disabled") + ")\n");
  }
  return status;
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) { return corral::cli::Main("qmod", argc, argv, corral::Run); }
