// Shared pieces of the q-tools' mains (see cli.h).
#include "qtools/cli.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>

extern char** environ;

#include "qtools/client.h"
#include "qtools/sge_format.h"

namespace corral::cli {

int Main(std::string_view tool, int argc, char** argv,
         const std::function<int(const std::vector<std::string>&)>& body) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    return body(args);
  } catch (const std::exception& e) {
    return Fail(tool, Status(Code::kInternal, std::string("internal error: ") + e.what()));
  } catch (...) {
    return Fail(tool, Status(Code::kInternal, "internal error"));
  }
}

int Fail(std::string_view tool, const Status& status) {
  Err(std::string(tool) + ": " + status.message() + "\n");
  return status.ok() ? 0 : 1;
}

bool IsHelp(std::string_view arg) { return arg == "--help" || arg == "-help"; }

void Out(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

void Err(std::string_view text) {
  // Clients that merge the two streams read warnings before results: keep the order.
  std::fflush(stdout);
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

std::string CurrentUser() {
  const uid_t uid = getuid();
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr) return pw.pw_name;
  return std::to_string(uid);
}

std::string GroupName(uint32_t gid) {
  group gr{};
  group* found = nullptr;
  char buf[4096];
  if (getgrgid_r(gid, &gr, buf, sizeof buf, &found) == 0 && found != nullptr) return gr.gr_name;
  return std::to_string(gid);
}

QsubInput GatherQsubInput(std::vector<std::string> args, std::string script) {
  QsubInput in;
  in.args = std::move(args);
  in.script_text = std::move(script);
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq != nullptr)
      in.env.emplace(std::string(*e, static_cast<size_t>(eq - *e)), std::string(eq + 1));
  }
  char buf[4096];
  in.cwd = getcwd(buf, sizeof buf) != nullptr ? buf : "/";
  auto home = in.env.find("HOME");
  in.home = home != in.env.end() ? home->second : in.cwd;
  if (gethostname(buf, sizeof buf) == 0) {
    buf[sizeof buf - 1] = '\0';
    in.host = buf;
  } else {
    in.host = "localhost";
  }
  in.user = CurrentUser();
  return in;
}

Result<std::vector<JobId>> ParseJobIds(std::span<const std::string> words) {
  std::vector<JobId> ids;
  for (const std::string& word : words) {
    size_t start = 0;
    while (start <= word.size()) {
      size_t comma = word.find(',', start);
      if (comma == std::string::npos) comma = word.size();
      const std::string_view item(word.data() + start, comma - start);
      start = comma + 1;
      if (item.empty()) continue;
      JobId id = 0;
      auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), id);
      if (ec != std::errc() || p != item.data() + item.size() || id <= 0) {
        if (item.find('.') != std::string_view::npos) {
          return Error(Code::kInvalidArgument,
                       "'" + std::string(item) + "': array task ids are not supported yet");
        }
        return Error(Code::kInvalidArgument, "'" + std::string(item) + "' is not a job id");
      }
      ids.push_back(id);
    }
  }
  return ids;
}

int RunHoldTool(std::string_view tool, bool hold, const std::vector<std::string>& args) {
  const std::string name(tool);
  std::vector<std::string> id_words;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (IsHelp(a)) {
      const std::string what = hold ? "Hold pending Corral jobs: a held job (state hqw) is not\n"
                                      "started until it is released with qrls."
                                    : "Release held Corral jobs (qsub -h, qhold): they become\n"
                                      "pending (qw) and may start.";
      Out("usage: " + name + " job_id[,job_id...] [job_id...]\n\n" + what +
          "\n\noptions:\n  -help, --help this text\n\n"
          "output (stdout), one line per job:\n"
          "  modified hold of job <id>\n"
          "  denied: job \"<id>\" does not exist\n\n"
          "exit status: 0 if every job was modified; 1 otherwise (also for bad options or an\n"
          "unreachable scheduler).\n\n"
          "environment: CORRAL_SCHEDULER  endpoint of the scheduler (set by \"corral local "
          "env\")\n");
      return 0;
    }
    // Grid Engine's "-h u|o|s" selects the hold type; Corral has one (user) hold.
    if (a == "-h") {
      if (i + 1 < args.size() && args[i + 1].find_first_not_of("uosn") == std::string::npos) ++i;
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      return Fail(tool, Status(Code::kInvalidArgument, "unknown option '" + a + "'"));
    }
    id_words.push_back(a);
  }
  Result<std::vector<JobId>> ids = ParseJobIds(id_words);
  if (!ids) return Fail(tool, ids.error());
  if (ids->empty()) return Fail(tool, Status(Code::kInvalidArgument, "no job id given"));
  HoldRequest request;
  request.ids = std::move(*ids);
  request.hold = hold;

  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return Fail(tool, client.error());
  Result<Message> reply = client->Call(request, kCallTimeoutMs);
  if (!reply) return Fail(tool, reply.error());
  const auto* outcomes = std::get_if<OutcomeReply>(&*reply);
  if (outcomes == nullptr) return Fail(tool, Status(Code::kInternal, "unexpected reply"));
  const std::string user = CurrentUser();
  std::string out;
  bool failed = false;
  for (const JobOutcome& outcome : outcomes->outcomes) {
    OutcomeLine line = QholdLine(outcome, user);
    out += line.text;
    failed = failed || line.error;
  }
  Out(out);
  return failed ? 1 : 0;
}

}  // namespace corral::cli
