// qhost: the execution nodes in Grid Engine's qhost format (or --json), from one
// NodesRequest: cores, memory, GPUs, consumables, features, load and allocations.
#include "common/clock.h"
#include "qtools/cli.h"
#include "qtools/client.h"
#include "qtools/sge_format.h"

namespace corral {
namespace {

constexpr std::string_view kUsage = R"(usage: qhost [-F] [--json]

Show Corral's execution nodes like Grid Engine's qhost: a header, a "global" line, then
one line per node:
  HOSTNAME  node name
  ARCH      "-" (Corral does not record the architecture)
  NCPU      cores the node offers (also NCOR, NTHR; NSOC is "-")
  LOAD      the node's 1-minute load average, from its last heartbeat
  MEMTOT    memory the node offers;  MEMUSE  memory allocated to running jobs
  SWAPTO, SWAPUS  0.0
  GPUS      GPUs allocated / GPUs offered
  CORES     cores allocated / cores offered (more than offered with oversubscription)
  STATE     up; draining (disabled by qmod -d, jobs still running); down (disabled,
            idle); unreachable (silent longer than the scheduler's node_timeout)
  SEEN      time since the node's execd was last heard from
An unreachable node shows "-" in the resource columns.

options:
  -F            under each node, its consumables left ("    hc:scratch_gb=500") and its
                features ("    hf:avx512=TRUE")
  --json        {"nodes":[{"name","state","reachable","enabled","total","used",
                "features","load","gpu_ids","last_seen","heartbeat_age_s"}...]};
                total and used hold cores, mem_mb, gpus and consumables
  -help, --help this text

exit status: 0 success; 1 bad option or unreachable scheduler.

environment: CORRAL_SCHEDULER  endpoint of the scheduler (set by "corral local env")
)";

int Run(const std::vector<std::string>& args) {
  bool json = false;
  bool resources = false;
  for (const std::string& a : args) {
    if (cli::IsHelp(a)) {
      cli::Out(kUsage);
      return 0;
    }
    if (a == "--json" || a == "-json") {
      json = true;
    } else if (a == "-F") {
      resources = true;
    } else {
      return cli::Fail("qhost", Status(Code::kInvalidArgument, "unknown option '" + a + "'"));
    }
  }
  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return cli::Fail("qhost", client.error());
  Result<Message> reply = client->Call(NodesRequest{}, cli::kCallTimeoutMs);
  if (!reply) return cli::Fail("qhost", reply.error());
  const auto* nodes = std::get_if<NodesReply>(&*reply);
  if (nodes == nullptr) return cli::Fail("qhost", Status(Code::kInternal, "unexpected reply"));
  const TimeMs now = SystemClock().Now();
  cli::Out(json ? NodesJson(*nodes, now) : QhostTable(*nodes, now, resources));
  return 0;
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) { return corral::cli::Main("qhost", argc, argv, corral::Run); }
