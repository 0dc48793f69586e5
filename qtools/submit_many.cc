// corral submit-many: qsub's options for every job, one command per input line, the
// submissions pipelined with a window of requests in flight.
#include "qtools/submit_many.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "qtools/cli.h"
#include "qtools/client.h"
#include "qtools/qsub_options.h"

namespace corral {
namespace {

constexpr std::string_view kUsage =
    R"(usage: corral submit-many [--file FILE] [--window N] [qsub options...]

Submits one job per line of FILE (default: standard input): each non-blank line that
does not start with '#' is a shell command, run as "qsub -b y /bin/sh -c LINE" would
run it, with the qsub options given here (-cwd, -l, -q, -h, -N, -o, -e, -j, -v, -V, -p,
-P, -hold_jid, ...; see qsub -help) applied to every job. A job is named line<N> after
its line number unless -N names them all.

The submissions are pipelined: up to N requests (default 1000) are in flight at once,
and the scheduler commits the ones that arrive together in one transaction (one fsync),
so thousands of jobs are accepted per second where qsub in a loop manages one per
process start. Each job is acknowledged only once it is on disk, as with qsub.

options:
  --file FILE   read the commands from FILE instead of standard input
  --window N    requests in flight at once (default 1000, at least 1)
  -help, --help this text

output: the job ids, one per line in the order of the commands (as qsub -terse); for a
command the scheduler refused, "corral submit-many: line N: REASON" on stderr.

exit status: 0 every job submitted; 1 any refused (the others are submitted), bad
options or an unreachable scheduler; 2 usage error.

environment: CORRAL_SCHEDULER  endpoint of the scheduler (set by "corral local env")
)";

constexpr size_t kDefaultWindow = 1000;
constexpr size_t kMaxInputBytes = size_t{1} << 30;

Result<std::string> ReadInput(const std::string& file) {
  const int fd = file.empty() ? 0 : open(file.c_str(), O_RDONLY | O_CLOEXEC);
  const std::string label = file.empty() ? "standard input" : file;
  if (fd < 0)
    return Error(Code::kInvalidArgument, "cannot open " + label + ": " + std::strerror(errno));
  std::string text;
  char buf[65536];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      if (fd != 0) close(fd);
      return Error(Code::kInvalidArgument, "error reading " + label + ": " + why);
    }
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxInputBytes) {
      if (fd != 0) close(fd);
      return Error(Code::kInvalidArgument, label + " is larger than 1 GiB");
    }
  }
  if (fd != 0) close(fd);
  return text;
}

}  // namespace

Result<std::vector<JobSpec>> SpecsFromLines(const JobSpec& base, std::string_view text,
                                            bool keep_name, std::vector<int>& lines) {
  if (text.find('\0') != std::string_view::npos) {
    return Error(Code::kInvalidArgument, "the commands contain a NUL byte");
  }
  std::vector<JobSpec> specs;
  lines.clear();
  int number = 0;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    JobSpec spec = base;
    spec.binary = true;
    spec.script.clear();
    spec.args = {"/bin/sh", "-c", std::string(line)};
    if (!keep_name) spec.name = "line" + std::to_string(number);
    specs.push_back(std::move(spec));
    lines.push_back(number);
  }
  if (specs.empty()) return Error(Code::kInvalidArgument, "no command to submit");
  return specs;
}

int RunSubmitMany(const std::vector<std::string>& args) {
  const std::string tool = "corral submit-many";
  std::string file;
  size_t window = kDefaultWindow;
  std::vector<std::string> qsub_args;
  bool named = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (cli::IsHelp(a)) {
      cli::Out(kUsage);
      return 0;
    }
    if (a == "--file" || a == "--window") {
      if (i + 1 >= args.size()) {
        cli::Err(tool + ": " + a + " needs a value (see corral submit-many --help)\n");
        return 2;
      }
      const std::string& v = args[++i];
      if (a == "--file") {
        file = v;
      } else {
        char* end = nullptr;
        const long n = std::strtol(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || n < 1 || n > 1000000) {
          cli::Err(tool + ": --window needs a number from 1 to 1000000, not '" + v + "'\n");
          return 2;
        }
        window = static_cast<size_t>(n);
      }
      continue;
    }
    if (a == "-N") named = true;
    if (a == "-b" || a == "-sync" || a == "-t" || a == "--sweep" || a == "-tc") {
      cli::Err(tool + ": " + a + " does not apply (each line is one -b y job)\n");
      return 2;
    }
    qsub_args.push_back(a);
  }
  // qsub's own parser for the options every job shares; the command is a placeholder.
  std::vector<std::string> qsub_line = qsub_args;
  for (const char* w : {"-b", "y", "/bin/sh"}) qsub_line.push_back(w);
  Result<QsubCommandLine> cl = SplitQsubCommandLine(qsub_line);
  if (!cl) return cli::Fail(tool, cl.error());
  if (cl->script != "/bin/sh" || !cl->script_args.empty()) {
    return cli::Fail(tool, Status(Code::kInvalidArgument,
                                  "give qsub options only; the commands come from the input"));
  }
  Result<ParsedQsub> parsed = ParseQsub(cli::GatherQsubInput(qsub_line, ""));
  if (!parsed) return cli::Fail(tool, parsed.error());
  for (const std::string& warning : parsed->warnings)
    cli::Err(tool + ": warning: " + warning + "\n");
  if (!parsed->hold_names.empty()) {
    return cli::Fail(tool,
                     Status(Code::kInvalidArgument, "-hold_jid takes job ids here, not names"));
  }
  Result<std::string> text = ReadInput(file);
  if (!text) return cli::Fail(tool, text.error());
  std::vector<int> lines;
  Result<std::vector<JobSpec>> specs = SpecsFromLines(parsed->spec, *text, named, lines);
  if (!specs) return cli::Fail(tool, specs.error());

  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return cli::Fail(tool, client.error());
  std::vector<Message> requests;
  requests.reserve(specs->size());
  for (JobSpec& spec : *specs) requests.push_back(SubmitRequest{std::move(spec)});
  const std::vector<Result<Message>> replies =
      client->CallMany(requests, window, cli::kCallTimeoutMs);
  std::string out;
  bool failed = false;
  for (size_t i = 0; i < replies.size(); ++i) {
    const auto* submitted = replies[i] ? std::get_if<SubmitReply>(&*replies[i]) : nullptr;
    if (submitted != nullptr) {
      out += std::to_string(submitted->id) + "\n";
      continue;
    }
    failed = true;
    const std::string why = replies[i] ? std::string("unexpected reply from the scheduler")
                                       : replies[i].error().message();
    cli::Out(out);
    out.clear();
    cli::Err(tool + ": line " + std::to_string(lines[i]) + ": " + why + "\n");
  }
  cli::Out(out);
  return failed ? 1 : 0;
}

}  // namespace corral
