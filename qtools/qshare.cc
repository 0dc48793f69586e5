// qshare: the fair-share tree as the scheduler sees it now (Slurm's sshare, Grid Engine's
// qmon share-tree view): shares, decayed usage, Fair Tree levels and the factor, in
// numbers and, with -l, in words.
#include "qtools/cli.h"
#include "qtools/client.h"
#include "qtools/policy_format.h"

namespace corral {
namespace {

constexpr std::string_view kUsage =
    R"(usage: qshare [-u user] [-l] [--json]

Show how the cluster is shared: each user of the policy's share tree (and every user
with jobs waiting or running), best served first, with
  shares        the user's shares within its group
  usage         decayed usage in core-hours (GPUs and memory weighted as the policy
                says; running jobs count what they have used so far)
  group:share   the group's fraction of all groups' shares, then of recent usage,
  usage level   and its level = share / usage (inf: nothing used yet)
  user:share    the same for the user within its group
  rank factor   Fair Tree's ranking: the first of N users visited gets rank N and
                factor 1.0; the factor is what the priority's fair-share term uses

options:
  -u user       only this user's line
  -l            each line also in words ("physics has 60% of the shares and 80% of
                recent usage ...")
  --json        {"policy", "half_life_s", "rows": [...]} with every number
  -help, --help this text

Without a policy file (first come, first served) there is no share tree: qshare says so.

exit status: 0 success; 1 bad option or the scheduler cannot be reached.
environment: CORRAL_SCHEDULER  endpoint of the scheduler (set by "corral local env")
)";

int Run(const std::vector<std::string>& args) {
  bool json = false, explain = false;
  std::string user;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (cli::IsHelp(a)) {
      cli::Out(kUsage);
      return 0;
    } else if (a == "--json" || a == "-json") {
      json = true;
    } else if (a == "-l") {
      explain = true;
    } else if (a == "-u") {
      if (i + 1 >= args.size()) {
        return cli::Fail("qshare", Status(Code::kInvalidArgument, "option '-u' needs a value"));
      }
      user = args[++i];
    } else {
      return cli::Fail("qshare", Status(Code::kInvalidArgument, "unknown option '" + a + "'"));
    }
  }
  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return cli::Fail("qshare", client.error());
  Result<Message> reply = client->Call(ShareRequest{}, cli::kCallTimeoutMs);
  if (!reply) return cli::Fail("qshare", reply.error());
  auto* shares = std::get_if<ShareReply>(&*reply);
  if (shares == nullptr) return cli::Fail("qshare", Status(Code::kInternal, "unexpected reply"));
  if (!user.empty()) {
    std::erase_if(shares->rows, [&](const ShareRow& r) { return r.user != user; });
  }
  if (json) {
    cli::Out(ReplyJson(*shares));
    return 0;
  }
  if (shares->policy.empty()) {
    cli::Out("no fair-share policy: jobs start first come, first served ('policy:' in the "
             "scheduler config names a policy file)\n");
    return 0;
  }
  cli::Out("policy " + shares->policy + ", usage half-life " + DurationText(shares->half_life_s) +
           "\n" + ShareTable(*shares, explain));
  return 0;
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) { return corral::cli::Main("qshare", argc, argv, corral::Run); }
