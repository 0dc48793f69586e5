// qwait: block until Corral jobs end, without polling. Each job gets a WaitRequest that
// the scheduler parks and answers the moment the job ends (the mechanism of qsub -sync y);
// a wait is re-issued when its 30 s slice runs out. Grid Engine and Slurm have no such tool.
#include <signal.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "common/clock.h"
#include "qtools/cli.h"
#include "qtools/client.h"
#include "qtools/sge_format.h"

namespace corral {
namespace {

constexpr std::string_view kUsage =
    R"usage(usage: qwait [--timeout SECONDS] [--json] job_id[,job_id...] [job_id...]

Wait until every given Corral job has ended (completed, failed or deleted) and print
one line per job as it ends. qwait does not poll: the scheduler answers each wait the
moment the job ends, as it does for qsub -sync y. Jobs that have already ended are
reported at once. An array job ends when all its tasks have; then each of its tasks
gets a line. Stopping qwait (Ctrl-C, SIGTERM, --timeout) never deletes a job: use qdel.

options:
  --timeout SECONDS  give up after SECONDS (decimal, 0 = do not wait): report the
                     jobs that have ended, name the others on stderr, exit 124
  --json             print each ended job as one line of JSON (the job object of
                     qstat --json; an array: one object per task, then the
                     array's own) instead of the text lines
  -help, --help      this text

output (stdout), one line per job in the order the jobs end, worded as qsub -sync y:
  Job <id> exited with exit code <n>.
  Job <id> exited because of signal SIG<name>
  Unable to run job <id>[: <reason>]             (deleted or failed before it ran)
  No information available on job <id>'s exit status (<reason>).   (e.g. node lost)
An array task is named <id>.<task>; tasks that never ran are counted in one line:
  Unable to run <k> task(s) of job-array <id>[: <reason>]
With more than 64 jobs at once, a job's line may come later than its end (at most 64
waits are open at a time), never earlier.

errors (stderr): "error: job id <id> not found" for each unknown id (then nothing is
waited for); on timeout or interruption, the jobs not seen to end.

exit status:
  0     every job exited with code 0
  n     else the status of the first job, in the order given, that did not, as
        qacct -j reports it: its exit code, 128+N if killed by signal N (qdel of a
        running job: 137), 1 if it never ran; for an array its first such task
  1     also: bad arguments, an unknown job id, or the scheduler cannot be reached
  124   --timeout expired before every job ended
  130   interrupted by SIGINT (143: SIGTERM)
A job's own exit code may be one of these numbers too; the output lines tell them apart.

examples:
  id=$(qsub -terse -cwd job.sh) && qwait "$id"
  qwait --timeout 3600 "$(qsub -terse a.sh)" "$(qsub -terse b.sh)" || echo "failed: $?"

environment: CORRAL_SCHEDULER  endpoint of the scheduler (set by "corral local env")
)usage";

constexpr int kTimedOutExit = 124;        // as timeout(1)
constexpr int64_t kWaitSliceMs = 30000;   // one parked wait; re-issued until the job ends
constexpr int64_t kReplySlackMs = 10000;  // beyond the slice, for the scheduler's tick
constexpr int kTransportRetries = 3;      // lost waits (scheduler restart) re-issued
constexpr size_t kMaxOpenWaits = 64;      // worker threads, one open wait each
constexpr int64_t kFinalQueryMs = 5000;

volatile std::sig_atomic_t g_signal = 0;
extern "C" void OnSignal(int signo) { g_signal = signo; }

struct Options {
  std::vector<JobId> ids;  // in the order given, without repeats
  std::optional<int64_t> timeout_ms;
  std::string timeout_text;  // as given, for the timeout message
  bool json = false;
  bool help = false;
};

Result<int64_t> ParseSeconds(const std::string& text) {
  double seconds = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec != std::errc() || p != text.data() + text.size() || !std::isfinite(seconds) ||
      seconds < 0 || seconds > 365.0 * 86400) {
    return Error(Code::kInvalidArgument,
                 "--timeout '" + text + "': expected a number of seconds (0 to 31536000)");
  }
  return static_cast<int64_t>(std::llround(seconds * 1000));
}

Result<Options> ParseArgs(const std::vector<std::string>& args) {
  Options o;
  std::vector<std::string> id_words;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (cli::IsHelp(a)) {
      o.help = true;
    } else if (a == "--json" || a == "-json") {
      o.json = true;
    } else if (a == "--timeout" || a.starts_with("--timeout=")) {
      std::string value;
      if (a == "--timeout") {
        if (i + 1 >= args.size()) {
          return Error(Code::kInvalidArgument, "option '--timeout' needs a number of seconds");
        }
        value = args[++i];
      } else {
        value = a.substr(10);
      }
      Result<int64_t> ms = ParseSeconds(value);
      if (!ms) return std::unexpected(ms.error());
      o.timeout_ms = *ms;
      o.timeout_text = value;
    } else if (a.size() > 1 && a[0] == '-') {
      return Error(Code::kInvalidArgument, "unknown option '" + a + "' (see qwait -help)");
    } else {
      id_words.push_back(a);
    }
  }
  if (o.help) return o;
  Result<std::vector<JobId>> ids = cli::ParseJobIds(id_words);
  if (!ids) return std::unexpected(ids.error());
  std::set<JobId> seen;
  for (JobId id : *ids) {
    if (seen.insert(id).second) o.ids.push_back(id);
  }
  if (o.ids.empty()) {
    return Error(Code::kInvalidArgument, "no job id given (usage: qwait [--timeout S] job_id...)");
  }
  return o;
}

// The final record of one job: a plain job, or an array followed by its dispatched tasks.
using Records = std::vector<Job>;

// The status the job contributes to qwait's exit status: its exit code (128+N for signal
// N, as qacct -j reports it), or 1 if it never ran or ended without one (node lost).
int StatusOf(const Job& job) { return job.exit_code && job.start_time != 0 ? *job.exit_code : 1; }

// qsub -sync y's wording (qsub.cc ReportEnd, Grid Engine's msg_qsub.h), on one line.
std::string EndLine(const Job& job) {
  const std::string id = UnitName(KeyOf(job));
  if (job.start_time == 0) {
    return "Unable to run job " + id + (job.reason.empty() ? "" : ": " + job.reason) + "\n";
  }
  if (!job.exit_code) {
    return "No information available on job " + id + "'s exit status" +
           (job.reason.empty() ? "" : " (" + job.reason + ")") + ".\n";
  }
  if (job.exit_signal != 0) {
    const char* abbrev = sigabbrev_np(job.exit_signal);
    return "Job " + id + " exited because of signal " +
           (abbrev != nullptr ? "SIG" + std::string(abbrev) : std::to_string(job.exit_signal)) +
           "\n";
  }
  return "Job " + id + " exited with exit code " + std::to_string(*job.exit_code) + ".\n";
}

// Text or JSON lines for one ended job, and its exit status.
struct Rendered {
  std::string text;
  int status = 0;
};

Rendered Render(Records records, bool json) {
  Rendered r;
  if (records.empty()) return r;
  FillTaskSpecs(records);
  const Job& job = records.front();
  if (!job.IsArray()) {
    r.text = json ? JobToJson(job) + "\n" : EndLine(job);
    r.status = StatusOf(job);
    return r;
  }
  std::vector<const Job*> tasks;
  for (const Job& t : records) {
    if (t.task != 0) tasks.push_back(&t);
  }
  std::sort(tasks.begin(), tasks.end(),
            [](const Job* a, const Job* b) { return a->task < b->task; });
  for (const Job* t : tasks) {
    r.text += json ? JobToJson(*t) + "\n" : EndLine(*t);
    if (r.status == 0) r.status = StatusOf(*t);
  }
  const int64_t never_ran = job.spec.array->Count() - static_cast<int64_t>(tasks.size());
  if (never_ran > 0) {
    if (!json) {
      r.text += "Unable to run " + std::to_string(never_ran) + " task(s) of job-array " +
                std::to_string(job.id) + (job.reason.empty() ? "" : ": " + job.reason) + "\n";
    }
    if (r.status == 0) r.status = 1;
  }
  if (json) r.text += JobToJson(job) + "\n";
  return r;
}

// What became of the wait for one job.
struct Report {
  enum class Kind { kEnded, kTimedOut, kInterrupted, kError };
  size_t index = 0;  // into Options::ids
  Kind kind = Kind::kEnded;
  Records records;  // kEnded
  Status error;     // kError
};

// The job's own record and, for an array, its tasks, from a query reply.
Records RecordsOf(JobId id, const std::vector<Job>& jobs) {
  Records out;
  for (const Job& j : jobs) {
    if (j.id == id) out.push_back(j);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Job& a, const Job& b) { return a.task < b.task; });
  return out;
}

// Waits for job `id` on `client` until it ends, `deadline` (monotonic ms; 0 = none)
// passes, a signal arrives, or the scheduler cannot be reached.
Report WaitFor(Client& client, size_t index, JobId id, TimeMs deadline) {
  Report report;
  report.index = index;
  int failures = 0;
  while (true) {
    if (g_signal != 0) {
      report.kind = Report::Kind::kInterrupted;
      return report;
    }
    WaitRequest wait;
    wait.ids = {id};
    wait.timeout_ms = kWaitSliceMs;
    int64_t call_ms = kWaitSliceMs + kReplySlackMs;
    if (deadline != 0) {
      const int64_t left = deadline - MonotonicNowMs();
      if (left <= 0) {
        report.kind = Report::Kind::kTimedOut;
        return report;
      }
      // The scheduler answers an expired wait at its next tick; stop at our deadline.
      wait.timeout_ms = std::min(wait.timeout_ms, left);
      call_ms = std::min(call_ms, left);
    }
    Result<Message> reply = client.Call(wait, call_ms);
    if (g_signal != 0) {
      report.kind = Report::Kind::kInterrupted;
      return report;
    }
    if (!reply) {
      if (deadline != 0 && MonotonicNowMs() >= deadline) continue;  // reported as timed out
      // A restarting scheduler loses its parked waits: ask again a few times.
      if (client.transport_failed() && ++failures < kTransportRetries) continue;
      report.kind = Report::Kind::kError;
      report.error = reply.error();
      return report;
    }
    failures = 0;
    const auto* waited = std::get_if<WaitReply>(&*reply);
    if (waited == nullptr) {
      report.kind = Report::Kind::kError;
      report.error = Status(Code::kInternal, "unexpected reply to a wait");
      return report;
    }
    if (!waited->done) continue;
    report.records = RecordsOf(id, waited->jobs);
    if (report.records.empty()) {
      report.kind = Report::Kind::kError;
      report.error = Status(Code::kNotFound, "no information available on job " +
                                                 std::to_string(id) + "'s exit status");
      return report;
    }
    if (report.records.front().IsArray()) {
      // The wait answers with the array's record; its tasks come from one query.
      QueryRequest query;
      query.ids = {id};
      query.include_finished = true;
      Result<QueryReply> listed = client.Query(query, cli::kCallTimeoutMs);
      if (g_signal != 0) {
        report.kind = Report::Kind::kInterrupted;
        return report;
      }
      if (!listed) {
        report.kind = Report::Kind::kError;
        report.error = listed.error();
        return report;
      }
      report.records = RecordsOf(id, listed->jobs);
    }
    return report;
  }
}

// Runs up to kMaxOpenWaits worker threads over `pending` (indexes into ids), each with its
// own socket and one open wait, and hands every Report to `emit` on this thread as it
// arrives. Workers stop taking jobs once a signal has arrived or the deadline has passed.
void WaitAll(const std::string& endpoint, const std::vector<JobId>& ids,
             const std::vector<size_t>& pending, TimeMs deadline,
             const std::function<void(Report)>& emit) {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Report> ready;
  std::atomic<size_t> next{0};
  size_t workers = std::min(kMaxOpenWaits, pending.size());
  size_t running = workers;

  auto deliver = [&](Report r) {
    {
      std::lock_guard lock(mu);
      ready.push_back(std::move(r));
    }
    cv.notify_one();
  };
  auto work = [&] {
    Result<Client> client = Client::Connect(endpoint);
    if (client) client->SetInterruptFlag(&g_signal);
    while (true) {
      const size_t k = next.fetch_add(1);
      if (k >= pending.size()) break;
      const size_t index = pending[k];
      if (!client) {
        deliver({index, Report::Kind::kError, {}, client.error()});
      } else if (g_signal != 0) {
        deliver({index, Report::Kind::kInterrupted, {}, {}});
      } else if (deadline != 0 && MonotonicNowMs() >= deadline) {
        deliver({index, Report::Kind::kTimedOut, {}, {}});
      } else {
        deliver(WaitFor(*client, index, ids[index], deadline));
      }
    }
    {
      std::lock_guard lock(mu);
      --running;
    }
    cv.notify_one();
  };

  std::vector<std::jthread> threads;
  threads.reserve(workers);
  for (size_t i = 0; i < workers; ++i) threads.emplace_back(work);
  std::unique_lock lock(mu);
  while (true) {
    cv.wait(lock, [&] { return !ready.empty() || running == 0; });
    if (ready.empty()) break;
    Report r = std::move(ready.front());
    ready.pop_front();
    lock.unlock();
    emit(std::move(r));
    lock.lock();
  }
}

std::string IdList(const std::vector<JobId>& ids) {
  std::string out;
  for (JobId id : ids) out += (out.empty() ? "" : ", ") + std::to_string(id);
  return out;
}

// After SIGINT/SIGTERM: names the jobs not seen to end (which keep running); 128+signal.
int Interrupted(const std::vector<JobId>& not_ended) {
  if (!not_ended.empty()) {
    cli::Err("qwait: interrupted; not seen to end: " + IdList(not_ended) +
             " (not deleted; qdel deletes jobs)\n");
  }
  return 128 + g_signal;
}

int Run(const std::vector<std::string>& args) {
  Result<Options> o = ParseArgs(args);
  if (!o) return cli::Fail("qwait", o.error());
  if (o->help) {
    cli::Out(kUsage);
    return 0;
  }
  const TimeMs deadline =
      o->timeout_ms ? MonotonicNowMs() + std::max<int64_t>(*o->timeout_ms, 1) : 0;

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a wait in zmq_poll must return EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return cli::Fail("qwait", client.error());
  client->SetInterruptFlag(&g_signal);

  // Every id must exist before anything is waited for: a typo fails at once.
  QueryRequest query;
  query.ids = o->ids;
  query.include_finished = true;
  Result<QueryReply> known = client->Query(query, cli::kCallTimeoutMs);
  if (g_signal != 0) return Interrupted(o->ids);
  if (!known) return cli::Fail("qwait", known.error());
  if (!known->missing.empty()) {
    // In the order given (a paged answer reports them in id order).
    std::string errors;
    const std::set<JobId> missing(known->missing.begin(), known->missing.end());
    for (JobId id : o->ids) {
      if (missing.contains(id)) errors += "error: job id " + std::to_string(id) + " not found\n";
    }
    cli::Err(errors);
    return 1;
  }

  std::vector<int> status(o->ids.size(), 0);
  std::vector<bool> ended(o->ids.size(), false);
  std::vector<JobId> wait_errors;
  auto report_end = [&](size_t index, Records records) {
    Rendered r = Render(std::move(records), o->json);
    cli::Out(r.text);
    status[index] = r.status;
    ended[index] = true;
  };

  std::vector<size_t> pending;
  for (size_t i = 0; i < o->ids.size(); ++i) {
    Records records = RecordsOf(o->ids[i], known->jobs);
    if (!records.empty() && IsFinal(records.front().state)) {
      report_end(i, std::move(records));
    } else {
      pending.push_back(i);
    }
  }
  if (!pending.empty() && !(deadline != 0 && *o->timeout_ms == 0)) {
    WaitAll(client->endpoint(), o->ids, pending, deadline, [&](Report r) {
      switch (r.kind) {
        case Report::Kind::kEnded:
          report_end(r.index, std::move(r.records));
          break;
        case Report::Kind::kError:
          cli::Err("qwait: cannot wait for job " + std::to_string(o->ids[r.index]) + ": " +
                   r.error.message() + "\n");
          wait_errors.push_back(o->ids[r.index]);
          break;
        case Report::Kind::kTimedOut:
        case Report::Kind::kInterrupted:
          break;
      }
    });
  }

  std::vector<size_t> left;
  for (size_t i : pending) {
    if (!ended[i]) left.push_back(i);
  }
  if (g_signal != 0) {
    std::vector<JobId> ids;
    for (size_t i : left) ids.push_back(o->ids[i]);
    return Interrupted(ids);
  }
  if (!wait_errors.empty()) return 1;
  if (!left.empty()) {
    // Time is up. Jobs queued behind other waits may have ended unseen: one last look.
    Result<Client> last = Client::ConnectFromEnv();
    QueryRequest final_query;
    for (size_t i : left) final_query.ids.push_back(o->ids[i]);
    final_query.include_finished = true;
    Result<QueryReply> final_reply = last ? last->Query(final_query, kFinalQueryMs)
                                          : Result<QueryReply>(std::unexpected(last.error()));
    const QueryReply* final_jobs = final_reply ? &*final_reply : nullptr;
    std::vector<JobId> still;
    for (size_t i : left) {
      Records records = final_jobs ? RecordsOf(o->ids[i], final_jobs->jobs) : Records{};
      if (!records.empty() && IsFinal(records.front().state)) {
        report_end(i, std::move(records));
      } else {
        still.push_back(o->ids[i]);
      }
    }
    if (!still.empty()) {
      cli::Err("qwait: timed out after " + o->timeout_text + " s; not ended: " + IdList(still) +
               "\n");
      return kTimedOutExit;
    }
  }
  for (int s : status) {
    if (s != 0) return s;
  }
  return 0;
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) { return corral::cli::Main("qwait", argc, argv, corral::Run); }
