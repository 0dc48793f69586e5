// qsub: submit a batch job, Grid Engine compatible (sge-compat.md §2). Parses argv and
// the script's directives (qsub_options.h), sends one SubmitRequest, prints the id; with
// -sync y waits for the job and exits with its exit code.
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "qtools/cli.h"
#include "qtools/client.h"
#include "qtools/qsub_options.h"
#include "qtools/sweep.h"

namespace corral {
namespace {

constexpr std::string_view kUsage = R"(usage: qsub [options] [script [script_args...]]
       qsub [options] -b y command [args...]

Submit a batch job to Corral. The script is copied at submit time; its lines starting with
"#$" (or the prefix given by -C) are read as options, as are "#PBS" lines (-N -q -A -l -e
-o -j -V -v). Command-line options override the script's. Without a script, or with "-",
the script is read from standard input and the job is named STDIN.

options:
  -N name             job name (default: the script's file name)
  -o path, -e path    stdout / stderr file or directory (default NAME.oID / NAME.eID)
  -j y|n              merge stderr into the stdout file
  -cwd                run in the current directory (default: $HOME)
  -wd dir             run in dir
  -V                  export the whole current environment to the job
  -v var[=value],...  export these variables
  -l res=value,...    resources: h_rt=H:M:S|seconds (wall-clock limit), slots=N,
                      h_vmem|mem_free|h_rss|s_vmem|mem|virtual_free=SIZE (per slot),
                      s_rt, gpu|gpus=N (GPUs per job; the job sees them in
                      CUDA_VISIBLE_DEVICES), arch=F or feature=F[+G] (node
                      features required); other names are the cluster's
                      consumables (matlab=1) and boolean features (bigmem), or
                      are recorded with a warning
  -pe name n[-m]      n slots (cores) on one node
  -h                  submit in the held state (release with qrls)
  -terse              print only the job id
  -sync y|n           wait for the job to end and exit with its exit code
  -b y|n              y: the first word is a command to run, not a script to copy
  -S shell            interpreter for the script (default: its #! line)
  -q queue           the policy's queue (its nodes, h_rt default and maximum,
                      priority); without a policy, recorded
  -P project, -A account
                      the fair-share group charged, when the policy's share tree
                      lists you in it; otherwise recorded
  -p priority         -1023..1024 (default 0): your own priority factor; users may
                      only lower it, admins and operators may raise it
  -C prefix           directive prefix (default "#$"; "" disables directives)
  -clear              forget the options given so far
  -r y|n              rerunnable (default y): after its node fails the job is requeued;
                      with n it fails with reason "node failed"
  --max-attempts N    dispatches allowed after node failures (default: the scheduler's
                      max_attempts); the job keeps its id, qstat -j lists every attempt
  -t n[-m[:s]]        an array job: one task per id n, n+s, ... <= m; each task sees
                      SGE_TASK_ID (and SGE_TASK_FIRST/LAST/STEPSIZE, CORRAL_TASK_ID) and
                      writes NAME.oID.TASK; qdel ID -t range deletes some tasks
  -tc n               at most n tasks of the array run at once
  --sweep file        an array with one task per parameter point of file (grid, zip,
                      csv or files; see docs/sweeps.md); a task gets PARAM_<NAME>
                      variables and $CORRAL_PARAMS (a JSON file), may write a JSON
                      object to $CORRAL_RESULT, and qresults ID shows them all
  -hold_jid id|name,...
                      start after these jobs have ended (in any way)
  -hold_jid_ad id,... task i starts after task i of these arrays has ended
  --after-ok id[:id]  start after these jobs completed with exit 0; if one did not,
                      this job is cancelled with the reason
  --after-notok id[:id]
                      start after these jobs failed; cancelled if one completed
  --after-any id[:id] the same as -hold_jid
  -notify, -hard, -soft, -m, -M, -R, -w e|w|n, -now, -binding
                      accepted for compatibility (no effect, or a warning)
  -help, --help       this text

output: "Your job ID ("NAME") has been submitted" on stdout (-terse: "ID"); for an
array "Your job-array ID.N-M:S ("NAME") has been submitted" (-terse: "ID.N-M:S");
warnings go to stderr first. With -sync y, "Job ID exited with exit code N." on stderr.

exit status: 0 submitted (with -sync y: the job's exit code; 1 if it never ran or was
killed by a signal; 130 if interrupted, after deleting the job); 1 bad options,
unreadable script or job rejected; 25 the scheduler asks to try again later.

environment: CORRAL_SCHEDULER  endpoint of the scheduler (set by "corral local env")
)";

volatile std::sig_atomic_t g_signal = 0;
extern "C" void OnSignal(int signo) { g_signal = signo; }

// Reads all of `fd`, at most kMaxScriptBytes + 1 bytes (ParseQsub reports the excess).
Result<std::string> ReadAll(int fd, const std::string& label) {
  std::string text;
  char buf[65536];
  while (text.size() <= kMaxScriptBytes) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error(Code::kInvalidArgument, "error reading " + label + ": " + std::strerror(errno));
    }
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

Result<std::string> ReadScript(const QsubCommandLine& cl) {
  if (cl.binary) return std::string();
  if (ScriptFromStdin(cl)) return ReadAll(0, "standard input");
  const int fd = open(cl.script->c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error(Code::kInvalidArgument,
                 "error opening " + *cl.script + ": " + std::strerror(errno));
  }
  Result<std::string> text = ReadAll(fd, *cl.script);
  close(fd);
  return text;
}

// "Unable to run job: <reason>.\nExiting." (msg_qsub.h), exit 1, or 25 when the scheduler
// itself answered "try again later".
int Rejected(const Status& status, bool from_scheduler) {
  std::string reason = status.message();
  while (!reason.empty() && reason.back() == '.') reason.pop_back();
  cli::Err("Unable to run job: " + reason + ".\nExiting.\n");
  return from_scheduler && status.code() == Code::kUnavailable ? 25 : 1;
}

// Grid Engine's report of a finished -sync job (qsub.c report_exit_status).
int ReportEnd(const Job& job) {
  const std::string id = UnitName(KeyOf(job));  // "42", or "42.7" for a task
  if (!job.exit_code || job.start_time == 0) {
    cli::Err("Unable to run job " + id + "\n");
    if (!job.reason.empty()) cli::Err("qsub: " + job.reason + "\n");
    return 1;
  }
  if (job.exit_signal != 0) {
    const char* abbrev = sigabbrev_np(job.exit_signal);
    cli::Err("Job " + id + " exited because of signal " +
             (abbrev != nullptr ? "SIG" + std::string(abbrev) : std::to_string(job.exit_signal)) +
             "\n");
    return 1;
  }
  cli::Err("Job " + id + " exited with exit code " + std::to_string(*job.exit_code) + ".\n");
  return *job.exit_code;
}

// An array's end: one line per task, in task order (Grid Engine reports each task);
// the status is the first task's that was not 0.
int ReportArrayEnd(Client& client, JobId id) {
  QueryRequest query;
  query.ids = {id};
  query.include_finished = true;
  Result<QueryReply> jobs = client.Query(query, cli::kCallTimeoutMs);
  if (!jobs) {
    cli::Err("No information available on job " + std::to_string(id) + "'s exit status.\n");
    return 1;
  }
  int status = 0;
  bool any = false;
  for (const Job& task : jobs->jobs) {
    if (task.task == 0) continue;
    any = true;
    const int code = ReportEnd(task);
    if (status == 0) status = code;
  }
  if (!any) {
    cli::Err("Unable to run job " + std::to_string(id) + "\n");
    return 1;
  }
  return status;
}

int Sync(Client& client, JobId id) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the wait in zmq_poll must return EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  client.SetInterruptFlag(&g_signal);

  int failures = 0;
  while (true) {
    WaitRequest wait;
    wait.ids = {id};
    wait.timeout_ms = 30000;
    Result<Message> reply = client.Call(wait, wait.timeout_ms + 10000);
    if (g_signal != 0) {
      const int signo = g_signal;
      g_signal = 0;
      cli::Err("\nInterrupted!\nPlease wait while qsub shuts down.\n");
      CancelRequest cancel;
      cancel.ids = {id};
      Result<Message> answer = client.Call(cancel, 5000);
      if (!answer) {
        cli::Err("qsub: could not delete job " + std::to_string(id) + ": " +
                 answer.error().message() + "\n");
      }
      return 128 + signo;
    }
    if (!reply) {
      // A restarting scheduler loses the wait; ask again a few times before giving up.
      if (client.transport_failed() && ++failures < 3) continue;
      cli::Err("Unable to wait for job because of error: " + reply.error().message() +
               "\nExiting.\n");
      return 1;
    }
    failures = 0;
    const auto* waited = std::get_if<WaitReply>(&*reply);
    if (waited == nullptr) return cli::Fail("qsub", Status(Code::kInternal, "unexpected reply"));
    if (!waited->done) continue;
    for (const Job& job : waited->jobs) {
      if (job.id != id) continue;
      if (!job.IsArray()) return ReportEnd(job);
      return ReportArrayEnd(client, id);
    }
    cli::Err("No information available on job " + std::to_string(id) + "'s exit status.\n");
    return 1;
  }
}

// --sweep FILE: one task per parameter point, each point a JSON object in spec.sweep.
Status ApplySweep(const std::string& file, JobSpec& spec) {
  std::ifstream in(file);
  if (!in) return Status(Code::kNotFound, file + ": cannot read the sweep file");
  std::stringstream text;
  text << in.rdbuf();
  const std::string base = std::filesystem::absolute(file).parent_path().string();
  Result<std::vector<ParamPoint>> points = ExpandSweep(text.str(), file, base);
  if (!points) return points.error();
  if (points->empty()) return Status(Code::kInvalidArgument, file + ": the sweep has no points");
  spec.array = TaskRange{1, static_cast<TaskId>(points->size()), 1};
  spec.sweep.clear();
  spec.sweep.reserve(points->size());
  for (const ParamPoint& point : *points) spec.sweep.push_back(ParamsJson(point));
  return OkStatus();
}

// -hold_jid NAME: every job of this user with that name that has not ended (Grid Engine
// resolves names the same way); a name that matches none is an error.
Status ResolveHoldNames(Client& client, const std::vector<std::string>& names, JobSpec& spec) {
  QueryRequest query;
  query.user = cli::CurrentUser();
  query.without_tasks = true;
  Result<QueryReply> jobs = client.Query(query, cli::kCallTimeoutMs);
  if (!jobs) return jobs.error();
  for (const std::string& name : names) {
    bool found = false;
    for (const Job& job : jobs->jobs) {
      if (job.task != 0 || job.spec.name != name) continue;
      found = true;
      if (std::find(spec.after_any.begin(), spec.after_any.end(), job.id) == spec.after_any.end()) {
        spec.after_any.push_back(job.id);
      }
    }
    if (!found) {
      return Status(Code::kInvalidArgument,
                    "-hold_jid " + name + ": no job of yours named '" + name + "' is waiting or running");
    }
  }
  return OkStatus();
}

int Run(const std::vector<std::string>& args) {
  Result<QsubCommandLine> cl = SplitQsubCommandLine(args);
  if (!cl) return cli::Fail("qsub", cl.error());
  if (cl->help) {
    cli::Out(kUsage);
    return 0;
  }
  Result<std::string> script = ReadScript(*cl);
  if (!script) return Rejected(script.error(), false);
  Result<ParsedQsub> parsed = ParseQsub(cli::GatherQsubInput(args, std::move(*script)));
  if (!parsed) return cli::Fail("qsub", parsed.error());
  for (const std::string& warning : parsed->warnings) cli::Err("qsub: warning: " + warning + "\n");

  if (!parsed->sweep_file.empty()) {
    if (Status s = ApplySweep(parsed->sweep_file, parsed->spec); !s.ok()) {
      return cli::Fail("qsub", s);
    }
  }
  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return Rejected(client.error(), false);
  if (!parsed->hold_names.empty()) {
    if (Status s = ResolveHoldNames(*client, parsed->hold_names, parsed->spec); !s.ok()) {
      return Rejected(s, false);
    }
  }
  const std::optional<TaskRange> array = parsed->spec.array;
  Result<Message> reply = client->Call(SubmitRequest{std::move(parsed->spec)}, cli::kCallTimeoutMs);
  if (!reply) return Rejected(reply.error(), !client->transport_failed());
  const auto* submitted = std::get_if<SubmitReply>(&*reply);
  if (submitted == nullptr) {
    return Rejected(Status(Code::kInternal, "unexpected reply from the scheduler"), false);
  }
  for (const std::string& warning : submitted->warnings) cli::Err("qsub: warning: " + warning + "\n");
  // Grid Engine names an array by its id and range: "42.1-1000:1".
  const std::string id = std::to_string(submitted->id);
  const std::string range =
      array ? "." + std::to_string(array->first) + "-" + std::to_string(array->Last()) + ":" +
                  std::to_string(array->step)
            : "";
  if (parsed->terse) {
    cli::Out(id + range + "\n");
  } else if (array) {
    cli::Out("Your job-array " + id + range + " (\"" + submitted->name + "\") has been submitted\n");
  } else {
    cli::Out("Your job " + id + " (\"" + submitted->name + "\") has been submitted\n");
  }
  return parsed->sync ? Sync(*client, submitted->id) : 0;
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) { return corral::cli::Main("qsub", argc, argv, corral::Run); }
