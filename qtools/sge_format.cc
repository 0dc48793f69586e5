// Grid Engine text formats. The printf formats are Grid Engine's own (qstat.c,
// show_job.c, qacct.c, qhost.c of SGE 8.1.9), so column widths match byte for byte.
#include "qtools/sge_format.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

namespace corral {
namespace {

std::string Printf(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string Printf(const char* format, ...) {
  va_list args;
  va_start(args, format);
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  std::string out(n > 0 ? static_cast<size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(out.data(), out.size() + 1, format, args);
  va_end(args);
  return out;
}

std::tm LocalTm(TimeMs t) {
  const std::time_t secs = static_cast<std::time_t>(t / 1000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  return tm;
}

// "key:" padded to 28 columns, then the value (show_job.c).
void Key(std::string& out, std::string_view key, std::string_view value) {
  std::string k = std::string(key) + ":";
  if (k.size() < 28) k.resize(28, ' ');
  out += k;
  out += value;
  out += '\n';
}

// qacct's "%-13.12s" key column.
std::string AcctKey(std::string_view key) { return Printf("%-13.12s", std::string(key).c_str()); }

// double_print_memory_to_dstring: 3 decimals and a K/M/G unit (powers of 1024).
std::string MemoryText(double bytes, const char* decimals) {
  const double kib = 1024, mib = kib * 1024, gib = mib * 1024;
  std::string fmt = std::string("%.") + decimals + "f";
  if (bytes >= gib) return Printf((fmt + "G").c_str(), bytes / gib);
  if (bytes >= mib) return Printf((fmt + "M").c_str(), bytes / mib);
  if (bytes >= kib) return Printf((fmt + "K").c_str(), bytes / kib);
  return Printf(fmt.c_str(), bytes);
}

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

std::string HmsFromMs(int64_t ms) {
  const int64_t s = ms / 1000;
  return Printf("%02lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
}

bool Started(const Job& job) { return job.start_time != 0; }

}  // namespace

std::string_view SgeStateCode(const Job& job) {
  switch (job.state) {
    case JobState::kQueued:
      return "qw";
    case JobState::kHeld:
      return "hqw";
    case JobState::kRunning:
      return job.cancel_requested ? "dr" : "r";
    case JobState::kCompleted:
    case JobState::kFailed:
    case JobState::kCancelled:
      return "z";
  }
  return "z";
}

std::string FormatSgeDate(TimeMs t) {
  const std::tm tm = LocalTm(t);
  return Printf("%02d/%02d/%04d %02d:%02d:%02d", tm.tm_mon + 1, tm.tm_mday, tm.tm_year + 1900,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string FormatCtime(TimeMs t) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::tm tm = LocalTm(t);
  return Printf("%.3s %.3s%3d %.2d:%.2d:%.2d %d", kDays[tm.tm_wday % 7], kMonths[tm.tm_mon % 12],
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
}

std::string QstatHeader() {
  // qstat.c: "%-7.7s %s %s%s%s%s%s %-10.10s %-12.12s %s%-5.5s %s...%-30.30s %s %s" with the
  // queue column 30 wide; the rule is 93 + (30 - 10) dashes.
  std::string out =
      Printf("%-7.7s %s  %-10.10s %-12.12s %-5.5s %s%-30.30s %s %s\n", "job-ID", "prior ", "name",
             "user", "state", "submit/start at     ", "queue", "slots", "ja-task-ID ");
  out += std::string(113, '-');
  out += '\n';
  return out;
}

std::string QstatRow(const Job& job) {
  const bool running = job.state == JobState::kRunning && (job.task != 0 || !job.IsArray());
  const TimeMs shown =
      (running || (IsFinal(job.state) && Started(job))) ? job.start_time : job.submit_time;
  const std::string queue = running && !job.node.empty() ? "all.q@" + job.node : "";
  // ja-task-ID: an array's pending ids as ranges ("1-1000:1"), a task's own id, or blank.
  std::string task = "       ";
  if (job.task != 0) {
    task = std::to_string(job.task);
  } else if (job.IsArray()) {
    task = FormatTaskRanges(job.pending);
  }
  // A pending array shows as waiting even while some of its tasks run.
  std::string state(SgeStateCode(job));
  if (job.task == 0 && job.IsArray() && !job.pending.empty()) {
    state = job.state == JobState::kHeld ? "hqw" : "qw";
  }
  return Printf("%7lld %7.5f %-10.10s %-12.12s %-5.5s %s %-30.30s %5d %s\n",
                static_cast<long long>(job.id), 0.0, job.spec.name.c_str(), job.owner.c_str(),
                state.c_str(), FormatSgeDate(shown).c_str(), queue.c_str(), job.spec.request.cores,
                task.c_str());
}

std::string ArraySummary(const Job& array, std::span<const Job* const> tasks) {
  int64_t running = 0, completed = 0, failed = 0, cancelled = 0;
  std::vector<std::string> failed_ids;
  for (const Job* t : tasks) {
    switch (t->state) {
      case JobState::kRunning: ++running; break;
      case JobState::kCompleted: ++completed; break;
      case JobState::kFailed:
        ++failed;
        if (failed_ids.size() < 20) failed_ids.push_back(std::to_string(t->task));
        break;
      case JobState::kCancelled: ++cancelled; break;
      default: break;
    }
  }
  std::string out;
  Key(out, "corral_tasks",
      "pending=" + std::to_string(CountTasks(array.pending)) + " running=" +
          std::to_string(running) + " completed=" + std::to_string(completed) +
          " failed=" + std::to_string(failed) + " cancelled=" + std::to_string(cancelled));
  if (!array.pending.empty()) Key(out, "corral_pending_tasks", FormatTaskRanges(array.pending));
  if (!failed_ids.empty()) {
    Key(out, "corral_failed_tasks", Join(failed_ids, ",") + (failed > 20 ? ",..." : ""));
  }
  return out;
}

void FillTaskSpecs(std::vector<Job>& jobs) {
  std::map<JobId, const JobSpec*> arrays;
  for (const Job& job : jobs) {
    if (job.task == 0 && job.IsArray()) arrays[job.id] = &job.spec;
  }
  for (Job& job : jobs) {
    if (job.task == 0) continue;
    auto it = arrays.find(job.id);
    if (it != arrays.end()) FillTaskSpec(*it->second, job);
  }
}

void FillTaskSpec(const JobSpec& array, Job& task) {
  task.spec.name = array.name;
  task.spec.request = array.request;
  task.spec.array = array.array;
  task.spec.cwd = array.cwd;
}

std::string QstatTable(std::span<const Job> jobs) {
  if (jobs.empty()) return "";
  std::string out = QstatHeader();
  for (const Job& job : jobs) out += QstatRow(job);
  return out;
}

std::vector<std::string> AttemptLines(const Job& job) {
  std::vector<std::string> lines;
  for (const Attempt& a : job.attempts) {
    std::string text = "node=" + a.node + " start=" + FormatCtime(a.start_time);
    text += " end=" + (a.end_time != 0 ? FormatCtime(a.end_time) : std::string("-"));
    if (!a.exit_reason.empty()) text += " reason=" + a.exit_reason;
    lines.push_back(Printf("%-28s", ("corral_attempt " + std::to_string(a.number) + ":").c_str()) +
                    text);
  }
  return lines;
}

std::string QstatJobDetail(const Job& job, std::string_view group) {
  const JobSpec& spec = job.spec;
  auto env = [&](const char* var) -> const std::string* {
    auto it = spec.env.find(var);
    return it == spec.env.end() ? nullptr : &it->second;
  };
  std::string out(62, '=');
  out += '\n';
  Key(out, "job_number", std::to_string(job.id));
  Key(out, "exec_file", "job_scripts/" + std::to_string(job.id));
  if (job.submit_time != 0) Key(out, "submission_time", FormatCtime(job.submit_time));
  Key(out, "owner", job.owner);
  Key(out, "uid", std::to_string(job.uid));
  Key(out, "group", group);
  Key(out, "gid", std::to_string(job.gid));
  static constexpr std::pair<const char*, const char*> kOrigin[] = {
      {"SGE_O_HOME", "sge_o_home"}, {"SGE_O_LOGNAME", "sge_o_log_name"},
      {"SGE_O_PATH", "sge_o_path"}, {"SGE_O_SHELL", "sge_o_shell"},
      {"SGE_O_TZ", "sge_o_tz"},     {"SGE_O_WORKDIR", "sge_o_workdir"},
      {"SGE_O_HOST", "sge_o_host"}};
  for (const auto& [var, key] : kOrigin) {
    if (const std::string* v = env(var)) Key(out, key, *v);
  }
  Key(out, "account", "sge");
  Key(out, "cwd", spec.cwd);
  if (!spec.stderr_path.empty()) Key(out, "stderr_path_list", "NONE:NONE:" + spec.stderr_path);
  if (spec.join) Key(out, "merge", "y");
  std::vector<std::string> resources;
  if (spec.h_rt_s > 0) resources.push_back("h_rt=" + std::to_string(spec.h_rt_s));
  if (spec.request.mem_mb > 0) {
    // Shown per slot, as it was requested (qsub multiplied by the slots).
    const int slots = std::max(1, spec.request.cores);
    resources.push_back("h_vmem=" + std::to_string(spec.request.mem_mb / slots) + "M");
  }
  for (const auto& [name, value] : spec.other_resources) resources.push_back(name + "=" + value);
  if (!resources.empty()) Key(out, "hard resource_list", Join(resources, ","));
  Key(out, "notify", "FALSE");
  Key(out, "job_name", spec.name);
  if (!spec.stdout_path.empty()) Key(out, "stdout_path_list", "NONE:NONE:" + spec.stdout_path);
  Key(out, "jobshare", "0");
  if (!spec.queue.empty()) Key(out, "hard_queue_list", spec.queue);
  auto ids = [](const std::vector<JobId>& list) {
    std::vector<std::string> words;
    for (JobId id : list) words.push_back(std::to_string(id));
    return Join(words, ",");
  };
  if (!spec.after_any.empty()) Key(out, "jid_predecessor_list", ids(spec.after_any));
  if (!spec.after_tasks.empty()) Key(out, "ja_ad_predecessor_list", ids(spec.after_tasks));
  if (!spec.after_ok.empty()) Key(out, "corral_after_ok", ids(spec.after_ok));
  if (!spec.after_notok.empty()) Key(out, "corral_after_notok", ids(spec.after_notok));
  if (spec.array) Key(out, "job-array tasks", FormatTaskRange(*spec.array));
  if (spec.max_running_tasks > 0) {
    Key(out, "task_concurrency", std::to_string(spec.max_running_tasks));
  }
  std::vector<std::string> vars;
  for (const auto& [var, value] : spec.env) {
    if (!var.starts_with("SGE_O_")) vars.push_back(var + "=" + value);
  }
  Key(out, "env_list", Join(vars, ","));
  std::vector<std::string> args = spec.args;
  if (spec.binary && !args.empty()) {
    Key(out, "script_file", args.front());
    args.erase(args.begin());
  }
  if (!args.empty()) Key(out, "job_args", Join(args, ","));
  if (!spec.project.empty()) Key(out, "project", spec.project);
  if (job.state == JobState::kRunning) {
    const std::string maxvmem =
        job.max_rss_kb > 0 ? MemoryText(static_cast<double>(job.max_rss_kb) * 1024, "3") : "N/A";
    Key(out, "usage    1",
        "cpu=" + HmsFromMs(job.cpu_ms) +
            ", mem=0.00000 GB s, io=0.00000 GB, vmem=N/A, maxvmem=" + maxvmem);
  }
  // Corral's own keys: what Grid Engine spreads over other commands.
  Key(out, "corral_state", StateName(job.state));
  Key(out, "corral_slots", std::to_string(spec.request.cores));
  if (spec.request.mem_mb > 0) Key(out, "corral_mem_mb", std::to_string(spec.request.mem_mb));
  if (spec.request.gpus > 0) Key(out, "corral_gpus", std::to_string(spec.request.gpus));
  auto list = [](const std::vector<int>& v) {
    std::string text;
    for (int x : v) text += (text.empty() ? "" : ",") + std::to_string(x);
    return text;
  };
  if (!job.alloc_cores.empty()) Key(out, "corral_alloc_cores", list(job.alloc_cores));
  if (!job.alloc_gpus.empty()) Key(out, "corral_alloc_gpus", list(job.alloc_gpus));
  if (job.attempt > 0) Key(out, "corral_attempt", std::to_string(job.attempt));
  if (!job.node.empty()) Key(out, "corral_node", job.node);
  if (job.start_time != 0) Key(out, "corral_start_time", FormatCtime(job.start_time));
  if (job.end_time != 0) Key(out, "corral_end_time", FormatCtime(job.end_time));
  if (job.exit_code) Key(out, "corral_exit_code", std::to_string(*job.exit_code));
  if (job.exit_signal != 0) Key(out, "corral_exit_signal", std::to_string(job.exit_signal));
  if (job.cancel_requested) Key(out, "corral_cancel_requested", "true");
  if (!job.reason.empty()) Key(out, "corral_reason", job.reason);
  for (const std::string& line : AttemptLines(job)) out += line + "\n";
  return out;
}

std::string MissingJobsMessage(std::span<const JobId> ids) {
  std::vector<std::string> parts;
  for (JobId id : ids) parts.push_back(std::to_string(id));
  return "Following jobs do not exist: \n" + Join(parts, ", ") + "\n";
}

OutcomeLine QdelLine(const JobOutcome& o, std::string_view user) {
  const std::string id = std::to_string(o.id);
  const std::string who(user);
  if (o.outcome == "deleted") return {who + " has deleted job " + id + "\n", false};
  // A second qdel of a job already being killed repeats Grid Engine's first answer.
  if (o.outcome == "registered" || o.outcome == "already") {
    return {who + " has registered the job " + id + " for deletion\n", false};
  }
  if (o.outcome == "not_found") return {"denied: job \"" + id + "\" does not exist\n", true};
  if (o.outcome == "denied") {
    return {who + " - you do not have the necessary privileges to delete the job \"" + id + "\"\n",
            true};
  }
  if (o.outcome == "invalid") {
    return {"denied: job \"" + id + "\" cannot be deleted in its current state\n", true};
  }
  if (o.outcome == "no_tasks") {
    return {"denied: job \"" + id + "\" has no waiting or running tasks in that range\n", true};
  }
  if (o.outcome == "not_array") {
    return {"denied: job \"" + id + "\" is not an array job (-t)\n", true};
  }
  return {"job " + id + ": unexpected answer '" + o.outcome + "' from the scheduler\n", true};
}

OutcomeLine QholdLine(const JobOutcome& o, std::string_view user) {
  const std::string id = std::to_string(o.id);
  if (o.outcome == "held" || o.outcome == "released" || o.outcome == "already") {
    return {"modified hold of job " + id + "\n", false};
  }
  if (o.outcome == "not_found") return {"denied: job \"" + id + "\" does not exist\n", true};
  if (o.outcome == "denied") {
    return {std::string(user) + " - you do not have the necessary privileges to modify the job \"" +
                id + "\"\n",
            true};
  }
  if (o.outcome == "invalid") {
    return {
        "denied: job \"" + id + "\" is not pending: only pending jobs can be held or released\n",
        true};
  }
  return {"job " + id + ": unexpected answer '" + o.outcome + "' from the scheduler\n", true};
}

int QacctExitStatus(const Job& job) {
  if (job.exit_code) return *job.exit_code;
  return job.state == JobState::kCompleted ? 0 : 1;
}

std::string QacctJob(const Job& job, std::string_view group) {
  const JobSpec& spec = job.spec;
  auto line = [](std::string_view key, const std::string& value) {
    return AcctKey(key) + Printf("%-20s", value.c_str()) + "\n";
  };
  auto number = [](std::string_view key, long long value) {
    return AcctKey(key) + Printf("%-20lld", value) + "\n";
  };
  // Grid Engine's "failed" codes: 0 ran to its exit; 1 "assumedly before job" (never ran);
  // 100 "assumedly after job" (killed on request while running).
  int failed = 0;
  std::string failed_text;
  if (!Started(job) || (!job.exit_code && !job.reason.empty())) {
    failed = 1;
    failed_text = "assumedly before job";
  } else if (job.state == JobState::kCancelled) {
    failed = 100;
    failed_text = "assumedly after job";
  }
  const double wall_s =
      Started(job) && job.end_time >= job.start_time ? (job.end_time - job.start_time) / 1000.0 : 0;
  const double cpu_s = static_cast<double>(job.cpu_ms) / 1000.0;

  std::string out(62, '=');
  out += '\n';
  out += line("qname", "all.q");
  out += line("hostname", job.node.empty() ? "NONE" : job.node);
  out += line("group", std::string(group));
  out += line("owner", job.owner);
  out += line("project", spec.project.empty() ? "NONE" : spec.project);
  out += line("department", "defaultdepartment");
  out += line("jobname", spec.name);
  out += number("jobnumber", job.id);
  out += AcctKey("taskid") + (job.task == 0 ? std::string("undefined") : std::to_string(job.task)) + "\n";
  out += line("account", "sge");
  out += number("priority", 0);
  out += AcctKey("qsub_time") + FormatCtime(job.submit_time) + "\n";
  out += AcctKey("start_time") + (Started(job) ? FormatCtime(job.start_time) : "-/-") + "\n";
  out += AcctKey("end_time") + (job.end_time != 0 ? FormatCtime(job.end_time) : "-/-") + "\n";
  out += line("granted_pe", "NONE");
  out += number("slots", spec.request.cores);
  out += AcctKey("failed") + Printf("%-3d %s %s", failed, failed ? ":" : "", failed_text.c_str()) +
         "\n";
  out += number("exit_status", QacctExitStatus(job));
  out += AcctKey("ru_wallclock") + Printf("%.0fs", wall_s) + "\n";
  out += AcctKey("ru_utime") + Printf("%.3fs", cpu_s) + "\n";  // user + system together
  out += AcctKey("ru_stime") + "0.000s\n";
  // Grid Engine prints ru_maxrss's kilobytes as if they were bytes; Corral prints bytes.
  out += AcctKey("ru_maxrss") + MemoryText(static_cast<double>(job.max_rss_kb) * 1024, "3") + "B\n";
  for (const char* key : {"ru_ixrss", "ru_ismrss", "ru_idrss", "ru_isrss"}) {
    out += AcctKey(key) + "0.000B\n";
  }
  for (const char* key : {"ru_minflt", "ru_majflt", "ru_nswap", "ru_inblock", "ru_oublock",
                          "ru_msgsnd", "ru_msgrcv", "ru_nsignals", "ru_nvcsw", "ru_nivcsw"}) {
    out += number(key, 0);
  }
  out += AcctKey("cpu") + Printf("%.3fs", cpu_s) + "\n";
  out += AcctKey("mem") + "0.000GBs\n";
  out += AcctKey("io") + "0.000GB\n";
  out += AcctKey("iow") + "0.000s\n";
  out += AcctKey("maxvmem") + "0.000B\n";
  out += AcctKey("arid") + "undefined\n";
  // Corral: every attempt of the job (node failures keep the job id; each run is listed).
  for (const std::string& line : AttemptLines(job)) out += line + "\n";
  return out;
}

// Seconds since a node was last heard from, as qhost shows it ("0.4s", "12s", "3m", "2h").
std::string AgeText(TimeMs last_seen, TimeMs now) {
  if (last_seen == 0) return "-";
  const double secs = std::max<double>(0, static_cast<double>(now - last_seen) / 1000.0);
  if (secs < 10) return Printf("%.1fs", secs);
  if (secs < 120) return Printf("%.0fs", secs);
  if (secs < 7200) return Printf("%.0fm", secs / 60);
  return Printf("%.0fh", secs / 3600);
}

std::map<std::string, int64_t> NodeConsumables(const Node& node, const Resources& used);

std::string QhostTable(const NodesReply& reply, TimeMs now, bool resources) {
  // Grid Engine's columns, then Corral's GPUS, CORES (used/total), STATE and SEEN
  // (heartbeat age) at the end, so that scripts splitting Grid Engine's columns by
  // position still find theirs.
  constexpr const char* kFormat =
      "%-23s %-13.13s%4.4s %4.4s %4.4s %4.4s %5.5s %7.7s %7.7s %7.7s %7.7s %5s %7s %-11s %s\n";
  auto mem = [](int64_t mb) { return MemoryText(static_cast<double>(mb) * 1024 * 1024, "1"); };
  std::string out = Printf(kFormat, "HOSTNAME", "ARCH", "NCPU", "NSOC", "NCOR", "NTHR", "LOAD",
                           "MEMTOT", "MEMUSE", "SWAPTO", "SWAPUS", "GPUS", "CORES", "STATE", "SEEN");
  out += std::string(125, '-') + "\n";
  out += Printf(kFormat, "global", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
                "-", "-");
  std::vector<size_t> order(reply.nodes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return reply.nodes[a].name < reply.nodes[b].name; });
  for (size_t i : order) {
    const Node& node = reply.nodes[i];
    const Resources used = i < reply.used.size() ? reply.used[i] : Resources{0, 0};
    const std::string state(NodeDisplayState(node, used.cores));
    const std::string age = AgeText(node.last_seen, now);
    if (node.state != NodeState::kUp) {
      out += Printf(kFormat, node.name.c_str(), "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
                    "-", "-", state.c_str(), age.c_str());
      continue;
    }
    const std::string cores = std::to_string(node.total.cores);
    out += Printf(kFormat, node.name.c_str(), "-", cores.c_str(), "-", cores.c_str(), cores.c_str(),
                  Printf("%.2f", node.load).c_str(), mem(node.total.mem_mb).c_str(),
                  mem(used.mem_mb).c_str(), "0.0", "0.0",
                  (std::to_string(used.gpus) + "/" + std::to_string(node.total.gpus)).c_str(),
                  (std::to_string(used.cores) + "/" + cores).c_str(), state.c_str(), age.c_str());
    if (!resources) continue;
    // qhost -F: what is left of each node-local consumable ("hc:"), and the features
    // ("hf:"), one per line under the host, as Grid Engine lists host resources.
    for (const auto& [name, held] : NodeConsumables(node, used)) {
      out += "    hc:" + name + "=" + std::to_string(node.total.Consumable(name) - held) + "\n";
    }
    for (const std::string& f : node.features) out += "    hf:" + f + "=TRUE\n";
  }
  return out;
}

std::string JobsJson(std::span<const Job> jobs) {
  std::string out = "{\"jobs\":[";
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (i > 0) out += ',';
    out += JobToJson(jobs[i]);
  }
  out += "]}\n";
  return out;
}

// What running jobs hold of the node's own consumables (cluster-wide ones left out).
std::map<std::string, int64_t> NodeConsumables(const Node& node, const Resources& used) {
  std::map<std::string, int64_t> out;
  for (const auto& [name, total] : node.total.consumables) out[name] = used.Consumable(name);
  return out;
}

std::string NodesJson(const NodesReply& reply, TimeMs now) {
  using nlohmann::json;
  json nodes = json::array();
  for (size_t i = 0; i < reply.nodes.size(); ++i) {
    const Node& n = reply.nodes[i];
    const Resources used = i < reply.used.size() ? reply.used[i] : Resources{0, 0};
    nodes.push_back(
        {{"name", n.name},
         {"state", NodeDisplayState(n, used.cores)},
         {"reachable", n.state == NodeState::kUp},
         {"enabled", n.enabled},
         {"heartbeat_age_s", n.last_seen == 0 ? json(nullptr)
                                              : json(static_cast<double>(now - n.last_seen) / 1000.0)},
         {"total", {{"cores", n.total.cores}, {"mem_mb", n.total.mem_mb}, {"gpus", n.total.gpus},
                    {"consumables", n.total.consumables}}},
         {"used", {{"cores", used.cores}, {"mem_mb", used.mem_mb}, {"gpus", used.gpus},
                   {"consumables", NodeConsumables(n, used)}}},
         {"gpu_ids", n.gpu_ids},
         {"features", n.features},
         {"load", n.load},
         {"last_seen",
          n.last_seen == 0 ? json(nullptr) : json(static_cast<double>(n.last_seen) / 1000.0)}});
  }
  // error_handler_t::replace: a non-UTF-8 node name must not make dump() throw.
  return json{{"nodes", nodes}}.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace corral
