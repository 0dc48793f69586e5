// qstat: list jobs in Grid Engine's format (sge-compat.md §3): the table of the calling
// user's pending and running jobs, -u/-s/-q filters, -j detail, and --json on every form.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "qtools/cli.h"
#include "qtools/client.h"
#include "qtools/policy_format.h"
#include "qtools/qstat_tty.h"
#include "qtools/sge_format.h"

namespace corral {
namespace {

constexpr std::string_view kUsage =
    R"(usage: qstat [-u user[,user...]|'*'] [-s states] [-q queue] [--json] [--sge]
       qstat -j job_id[,job_id...] [--json]
       qstat -pri [-u user|'*'] [--json]

Show Corral jobs the way Grid Engine's qstat does. Without options: the calling user's
pending and running jobs, one line each under a two-line header; nothing at all when
there is none. Finished jobs are not listed (see qacct -j), except with -s z.

options:
  -u user,...   jobs of these users; '*' for every user (default: the calling user)
  -s states     p pending (incl. held), r running, h held, z finished, a = pr;
                letters combine, e.g. -s pr (default), -s hr
  -q queue      only running jobs of this queue (Corral has one queue, all.q; pending
                jobs are always shown)
  -j ids        detail of each job (key: value lines); exit 1 if none exists. For a
                waiting job, corral_reason says why it waits and, under a policy, when
                it is expected to start; corral_priority how its priority is made up
  -pri          pending jobs in the order the scheduler considers them, with their
                priority and its normalized factors (fair-share, age, size, -p, queue)
                under the policy file; without a policy, jobs start in submission order
  -g d          accepted; the output is unchanged (pending array tasks stay on one
                line with their ranges, e.g. 5-1000:1, rather than one line each)
  --json        the same selection as {"jobs":[...]} (docs: job JSON object); with -j
                finished jobs are included
  --sge         Grid Engine's exact format even on a terminal (see "on a terminal")
  -help, --help this text

columns: job-ID prior name user state submit/start-at queue slots ja-task-ID; states:
qw pending, hqw held, r running, dr running and being deleted, z finished. The priority
column is 0.00000 until priority policies exist.

on a terminal: when stdout is a terminal, the table's state column is coloured
(running green, held yellow, failed red, being deleted magenta) and a summary line
follows ("12 jobs: 4 running, 6 pending, 2 held"). Piped or redirected output is
always Grid Engine's exact format. --sge or CORRAL_QSTAT_FORMAT=sge gives the exact
format on a terminal too; NO_COLOR (set, not empty) or TERM=dumb turns colour off.

Long listings stream: the scheduler answers in pages of a few thousand jobs and qstat
prints each page as it arrives (running jobs first, then pending and held ones).

exit status: 0 success (also when nothing is listed); 1 bad option, no job of -j
exists, or the scheduler cannot be reached.

environment: CORRAL_SCHEDULER      endpoint of the scheduler (set by "corral local env")
             CORRAL_QSTAT_FORMAT  "sge": the exact format on a terminal too
             NO_COLOR             set and not empty: no colour
)";

struct StateFilter {
  bool pending = false;  // qw
  bool held = false;     // hqw
  bool running = false;
  bool finished = false;

  bool Matches(const Job& job) const {
    switch (job.state) {
      case JobState::kQueued:
        return pending;
      case JobState::kHeld:
        return held;
      case JobState::kRunning:
        return running;
      default:
        return finished;
    }
  }
};

Result<StateFilter> ParseStates(std::string_view s) {
  StateFilter f;
  for (size_t i = 0; i < s.size(); ++i) {
    switch (s[i]) {
      case 'p':
        f.pending = f.held = true;
        break;
      case 'r':
        f.running = true;
        break;
      case 'z':
        f.finished = true;
        break;
      case 'a':
        f.pending = f.held = f.running = true;
        break;
      case 's':
      case 'S':
      case 'T':
      case '+':
        break;  // Corral never suspends
      case 'h':
        f.held = true;
        if (i + 1 < s.size() &&
            std::string_view("uosdja").find(s[i + 1]) != std::string_view::npos) {
          ++i;
        }
        break;
      default:
        return Error(Code::kInvalidArgument,
                     "-s " + std::string(s) + ": unknown state letter '" + s[i] + "'");
    }
  }
  return f;
}

struct Options {
  std::vector<std::string> users;  // empty = calling user; {"*"} = everybody
  StateFilter states{true, true, true, false};
  std::string queue;
  std::vector<std::string> job_words;  // -j values
  bool detail = false;
  bool pri = false;
  bool json = false;
  bool sge = false;  // exact Grid Engine format even on a terminal
  bool help = false;
};

Result<Options> ParseArgs(const std::vector<std::string>& args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= args.size()) {
        return Error(Code::kInvalidArgument, "option '" + a + "' needs a value");
      }
      return args[++i];
    };
    if (cli::IsHelp(a)) {
      o.help = true;
    } else if (a == "--json" || a == "-json") {
      o.json = true;
    } else if (a == "--sge") {
      o.sge = true;
    } else if (a == "-pri") {
      o.pri = true;
    } else if (a == "-u" || a == "-s" || a == "-q" || a == "-j" || a == "-g") {
      Result<std::string> v = value();
      if (!v) return std::unexpected(v.error());
      if (a == "-u") {
        size_t start = 0;
        while (start <= v->size()) {
          size_t comma = v->find(',', start);
          if (comma == std::string::npos) comma = v->size();
          if (comma > start) o.users.push_back(v->substr(start, comma - start));
          start = comma + 1;
        }
      } else if (a == "-s") {
        Result<StateFilter> f = ParseStates(*v);
        if (!f) return std::unexpected(f.error());
        o.states = *f;
      } else if (a == "-q") {
        o.queue = *v;
      } else if (a == "-j") {
        o.detail = true;
        o.job_words.push_back(*v);
      } else if (*v != "d") {
        return Error(Code::kInvalidArgument, "-g " + *v + " is not supported (only -g d)");
      }
    } else if (a == "-xml" || a == "-f" || a == "-F" || a == "-r" || a == "-t" || a == "-ext" ||
               a == "-urg" || a == "-explain" || a == "-U" || a == "-l" ||
               a == "-pe") {
      return Error(Code::kInvalidArgument, "option '" + a + "' is not supported yet");
    } else {
      return Error(Code::kInvalidArgument, "unknown option '" + a + "'");
    }
  }
  return o;
}

int Detail(Client& client, const Options& o) {
  Result<std::vector<JobId>> ids = cli::ParseJobIds(o.job_words);
  if (!ids) return cli::Fail("qstat", ids.error());
  QueryRequest query;
  query.ids = *ids;
  query.include_finished = true;  // an array's summary counts its ended tasks
  Result<QueryReply> jobs = client.Query(query, cli::kCallTimeoutMs);
  if (!jobs) return cli::Fail("qstat", jobs.error());
  std::vector<Job> found;
  std::map<JobId, std::vector<const Job*>> tasks;
  for (const Job& job : jobs->jobs) {
    if (job.task != 0) {
      tasks[job.id].push_back(&job);
      if (o.json) found.push_back(job);
      continue;
    }
    // For the text form a finished job "does not exist", as in Grid Engine.
    if (o.json || !IsFinal(job.state)) found.push_back(job);
  }
  std::sort(found.begin(), found.end(), [](const Job& a, const Job& b) { return a.id < b.id; });
  // Grid Engine fails only when none of the ids exists, and then names them all.
  if (found.empty()) {
    if (o.json) cli::Out(JobsJson(found));
    cli::Err(MissingJobsMessage(*ids));
    return 1;
  }
  if (o.json) {
    cli::Out(JobsJson(found));
    return 0;
  }
  // Under a policy, how each waiting job's priority is made up (from the last pass).
  std::map<JobId, std::string> priorities;
  if (std::any_of(found.begin(), found.end(),
                  [](const Job& j) { return j.state == JobState::kQueued; })) {
    Result<Message> pri = client.Call(PriorityRequest{}, cli::kCallTimeoutMs);
    if (const auto* p = pri ? std::get_if<PriorityReply>(&*pri) : nullptr) {
      for (const JobPriority& jp : p->jobs) priorities.try_emplace(jp.id, jp.explanation);
    }
  }
  std::string out;
  for (const Job& job : found) {
    out += QstatJobDetail(job, cli::GroupName(job.gid));
    if (auto p = priorities.find(job.id); p != priorities.end()) {
      out += "corral_priority:            " + p->second + "\n";
    }
    if (job.IsArray()) out += ArraySummary(job, tasks[job.id]);
  }
  cli::Out(out);
  return 0;
}

int Priorities(Client& client, const Options& o) {
  PriorityRequest request;
  if (o.users.empty()) {
    request.user = cli::CurrentUser();
  } else if (o.users.size() == 1 && o.users[0] != "*") {
    request.user = o.users[0];
  } else if (o.users.size() > 1) {
    return cli::Fail("qstat", Status(Code::kInvalidArgument, "-pri takes one user or '*'"));
  }
  Result<Message> reply = client.Call(request, cli::kCallTimeoutMs);
  if (!reply) return cli::Fail("qstat", reply.error());
  const auto* pri = std::get_if<PriorityReply>(&*reply);
  if (pri == nullptr) return cli::Fail("qstat", Status(Code::kInternal, "unexpected reply"));
  cli::Out(o.json ? ReplyJson(*pri) : PriorityTable(*pri));
  return 0;
}

// Streams the listing: one paged query per group of states, in the order qstat shows
// them (running, then pending and held, then finished; by id within each), each page
// printed as it arrives. A job that moves between groups while the listing is under
// way may show in both groups or in neither; one that stays put shows once.
int List(Client& client, const Options& o) {
  std::vector<std::string> users = o.users;
  if (users.empty()) users.push_back(cli::CurrentUser());
  const bool everybody = std::find(users.begin(), users.end(), "*") != users.end();
  const std::set<std::string> wanted(users.begin(), users.end());
  std::vector<std::vector<std::string>> groups;
  if (o.states.running) groups.push_back({"running"});
  std::vector<std::string> waiting;
  if (o.states.pending) waiting.push_back("queued");
  if (o.states.held) waiting.push_back("held");
  if (!waiting.empty()) groups.push_back(waiting);
  if (o.states.finished) groups.push_back({"completed", "failed", "cancelled"});

  std::map<JobId, JobSpec> arrays;  // array specs, for their tasks' rows
  bool any = false;
  const TtyStyle style =
      o.json ? TtyStyle{}
             : ChooseStyle(isatty(STDOUT_FILENO) == 1, o.sge, std::getenv("CORRAL_QSTAT_FORMAT"),
                           std::getenv("NO_COLOR"), std::getenv("TERM"));
  QstatSummary summary;
  for (const std::vector<std::string>& states : groups) {
    QueryRequest query;
    if (!everybody && users.size() == 1) query.user = users[0];
    query.include_finished = o.states.finished;
    query.states = states;
    Status s = client.QueryPages(query, cli::kCallTimeoutMs, [&](QueryReply& page) {
      // A task's row shows its array's name and request: ask for the arrays not seen yet
      // (their own records only).
      QueryRequest specs;
      specs.include_finished = true;
      specs.without_tasks = true;
      for (const Job& job : page.jobs) {
        if (job.task == 0 && job.IsArray()) arrays[job.id] = job.spec;
        if (job.task != 0 && !arrays.contains(job.id) &&
            (specs.ids.empty() || specs.ids.back() != job.id)) {
          specs.ids.push_back(job.id);
        }
      }
      if (!specs.ids.empty()) {
        Result<QueryReply> found = client.Query(specs, cli::kCallTimeoutMs);
        if (!found) return found.error();
        for (Job& job : found->jobs) {
          if (job.task == 0 && job.IsArray()) arrays[job.id] = std::move(job.spec);
        }
      }
      std::string out;
      for (Job& job : page.jobs) {
        if (!everybody && !wanted.contains(job.owner)) continue;
        if (job.task != 0) {
          if (auto a = arrays.find(job.id); a != arrays.end()) FillTaskSpec(a->second, job);
        }
        // An array shows one line for its pending ids (none once all have started) and
        // one per running task; a requeued task's id is among the pending ones.
        if (!o.json && job.task == 0 && job.IsArray() && job.pending.empty() &&
            !IsFinal(job.state)) {
          continue;
        }
        if (!o.json && job.task != 0 && job.state == JobState::kQueued) continue;
        if (!o.states.Matches(job)) continue;
        if (!o.queue.empty() && job.state == JobState::kRunning && o.queue != "all.q" &&
            o.queue != "all.q@" + job.node) {
          continue;
        }
        if (o.json) {
          out += any ? "," : "{\"jobs\":[";
          out += JobToJson(job);
        } else {
          if (!any) out += QstatHeader();
          out += style.colour ? ColourRow(QstatRow(job), job) : QstatRow(job);
          if (style.summary) summary.Add(job);
        }
        any = true;
      }
      cli::Out(out);
      return Status();
    });
    if (!s.ok()) return cli::Fail("qstat", s);
  }
  if (o.json) cli::Out(any ? "]}\n" : "{\"jobs\":[]}\n");
  if (style.summary) cli::Out(summary.Line());
  return 0;
}

int Run(const std::vector<std::string>& args) {
  Result<Options> o = ParseArgs(args);
  if (!o) return cli::Fail("qstat", o.error());
  if (o->help) {
    cli::Out(kUsage);
    return 0;
  }
  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return cli::Fail("qstat", client.error());
  if (o->pri) return Priorities(*client, *o);
  return o->detail ? Detail(*client, *o) : List(*client, *o);
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) { return corral::cli::Main("qstat", argc, argv, corral::Run); }
