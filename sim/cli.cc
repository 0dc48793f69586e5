// corral-sim's options and the run behind them (cli.h). File output happens here and in
// main.cc only; everything below is pure.
#include "sim/cli.h"

#include <charconv>
#include <fstream>
#include <limits>

#include "policies/policy_config.h"
#include "sim/metrics.h"
#include "sim/plot.h"
#include "sim/report.h"
#include "sim/simulator.h"
#include "sim/swf.h"
#include "sim/workload.h"

namespace corral::sim {

const char kUsage[] =
    R"(usage: corral-sim --trace FILE [--policy policy.yaml | --compare A.yaml B.yaml]
                  [--procs N | --nodes N --cores-per-node C] [--planner fcfs|easy|conservative]
                  [--windows I,J,... --window-size N] [--warmup PCT] [--one-pass-per-time]
                  [--jobs out.csv] [--plot out.svg] [--json] [--users N]

Replays a workload trace (Standard Workload Format, .swf) in virtual time through Corral's
own policy engine: the Prioritizer and Planner of policies/, built from the same policy file
the scheduler reads. No daemons, no sleeping.

  --trace FILE          the SWF trace
  --policy FILE         a Corral policy file (fair-share tree, priority weights, limits,
                        planner), used as the scheduler uses it: the planner examines at
                        most its max_jobs_per_pass (default 1000) queued jobs per pass.
                        Without it: arrival order, no fair-share, no limits, and the planner
                        examines every queued job (as the published results assume).
  --compare A B         run the trace under two policy files and print them side by side,
                        per user too ("none" for the no-policy run)
  --procs N             the machine is one node of N processors
  --nodes N --cores-per-node C
                        N nodes of C processors; a job runs on one node, so jobs larger
                        than C are skipped (Corral places no job on several nodes)
  --planner KIND        fcfs (depth 0), easy (1) or conservative (all): overrides the
                        policy's planner; default: the policy's, or fcfs without a policy
  --windows I,J,...     simulate windows of --window-size consecutive jobs starting at these
                        0-based job indices, each on an empty machine from its first job's
                        submit time; prints each window and the mean over windows
  --warmup PCT          leave the first PCT % of jobs to terminate out of the means
  --one-pass-per-time   apply arrivals and completions of one timestamp before a single
                        scheduling pass (default: arrivals, pass, completions, pass)
  --jobs FILE           per-job CSV: window,job,user,group,account,submit,start,end,wait,
                        run,estimate,size,bsld,node,status (seconds from the trace's time 0)
  --plot FILE           SVG of utilization and queue length over time
  --json                print the report as JSON (every user) instead of text
  --users N             per-user rows in the text report (default 15)

Trace conventions (those of the reference simulators of the Parallel Workloads Archive):
  machine size     --procs / --nodes x --cores-per-node, else the MaxProcs header, else
                   MaxNodes (as one node of that many processors)
  job size         requested processors (field 8), else allocated processors (field 5)
  runtime estimate requested time (field 9), else the run time (field 4); it is the job's
                   h_rt, which the planner plans with
  run time         field 4; a run longer than its estimate is cut at the estimate
  same timestamp   arrivals are handled (and scheduled) before completions
  users, groups    "u<field 12>", "g<field 13>" ("u?"/"g?" when -1): the fair-share user
                   and the project its group is chosen from (AccountGroup); a policy's
                   tree names them so, e.g. users: {u12: 3}
  skipped          jobs with no submit time, run time <= 0, no size (fields 5 and 8 <= 0),
                   or larger than a node; the report says how many of each
  ignored          field 3 (the real machine's wait), status, memory, queue, partition;
                   policy queues (every job is queue-less)
Metrics: wait = start - submit; bounded slowdown = max((wait + run) / max(run, 10 s), 1);
utilization = sum(run x size) / (P x (last end - first submit)); makespan = last end - first
submit; means over the jobs that ran (after --warmup).
)";

namespace {

Result<int64_t> Integer(const std::string& option, const std::string& value, int64_t min,
                        int64_t max) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || v < min || v > max) {
    return Error(Code::kInvalidArgument, option + ": expected an integer in [" +
                                             std::to_string(min) + ", " + std::to_string(max) +
                                             "], got '" + value + "'");
  }
  return v;
}

Result<PlannerKind> PlannerFrom(const std::string& name) {
  if (name == "fcfs") return PlannerKind::kFcfs;
  if (name == "easy") return PlannerKind::kEasy;
  if (name == "conservative") return PlannerKind::kConservative;
  return Error(Code::kInvalidArgument,
               "--planner: expected fcfs, easy or conservative, got '" + name + "'");
}

Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Error(Code::kNotFound, path + ": cannot write");
  out << text;
  out.close();
  if (!out) return Error(Code::kInternal, path + ": write failed");
  return OkStatus();
}

// The policy a run uses: the file's (or the reference one for "" / "none"), with the
// --planner override.
Result<Policy> PolicyFor(const std::string& file, const std::string& planner) {
  Policy policy = ReferencePolicy(PlannerKind::kFcfs);
  if (!file.empty() && file != "none") {
    Result<Policy> loaded = LoadPolicy(file);
    if (!loaded) return std::unexpected(loaded.error());
    policy = *loaded;
  }
  if (!planner.empty()) {
    Result<PlannerKind> kind = PlannerFrom(planner);
    if (!kind) return std::unexpected(kind.error());
    SetPlanner(policy, *kind);
  }
  return policy;
}

struct Ranges {
  std::vector<std::pair<size_t, size_t>> windows;  // [first, last)
  std::vector<std::string> labels;
};

Result<Ranges> WindowsOf(const Options& o, size_t jobs) {
  Ranges r;
  if (o.windows.empty()) {
    r.windows.push_back({0, jobs});
    r.labels.push_back("");
    return r;
  }
  for (int64_t first : o.windows) {
    const auto end = static_cast<size_t>(first + o.window_size);
    if (end > jobs) {
      return Error(Code::kInvalidArgument, "--windows: window " + std::to_string(first) + "+" +
                                               std::to_string(o.window_size) +
                                               " runs past the last job (the trace has " +
                                               std::to_string(jobs) + " simulated jobs)");
    }
    r.windows.push_back({static_cast<size_t>(first), end});
    r.labels.push_back("jobs " + std::to_string(first) + "-" + std::to_string(end - 1));
  }
  return r;
}

// Simulates every window of `workload` under `policy`; fills `report` and, when asked,
// the CSV text and the timeline of the (single) run.
Status SimulateAll(const Options& o, const Workload& workload, const Policy& policy,
                   const std::string& policy_file, Report& report, std::string* csv,
                   std::vector<TimelinePoint>* timeline) {
  Result<Ranges> ranges = WindowsOf(o, workload.jobs.size());
  if (!ranges) return ranges.error();
  report.trace = o.trace;
  report.machine = workload.machine;
  report.notes = workload.notes;
  report.policy_file = policy_file == "none" ? "" : policy_file;
  report.policy = policy;
  report.warmup_percent = o.warmup_percent;
  report.arrivals_first = o.arrivals_first;
  SimOptions sim_options;
  sim_options.arrivals_first = o.arrivals_first;
  sim_options.record_timeline = timeline != nullptr;
  for (size_t w = 0; w < ranges->windows.size(); ++w) {
    const auto [first, last] = ranges->windows[w];
    const bool whole = first == 0 && last == workload.jobs.size();
    std::vector<SimJob> slice;
    if (!whole) {
      slice.assign(workload.jobs.begin() + static_cast<std::ptrdiff_t>(first),
                   workload.jobs.begin() + static_cast<std::ptrdiff_t>(last));
    }
    const std::vector<SimJob>& jobs = whole ? workload.jobs : slice;
    Result<SimResult> result = Simulate(jobs, workload.machine, policy, sim_options);
    if (!result) return result.error();
    RunReport run;
    run.label = ranges->labels[w];
    run.first_job = first;
    run.metrics = ComputeMetrics(jobs, result->jobs, workload.machine.Procs(), o.warmup_percent);
    run.stats = result->stats;
    run.users = UserShares(jobs, *result, policy);
    run.stuck = result->stuck;
    report.runs.push_back(std::move(run));
    if (csv) AppendJobsCsv(jobs, *result, ranges->labels[w], *csv);
    if (timeline) *timeline = std::move(result->timeline);
  }
  return OkStatus();
}

}  // namespace

Result<Options> ParseArgs(const std::vector<std::string>& args) {
  Options o;
  auto need = [&args](size_t& i, const std::string& option) -> Result<std::string> {
    if (i + 1 >= args.size()) return Error(Code::kInvalidArgument, option + " needs a value");
    return args[++i];
  };
  constexpr int64_t kMaxSize = 1 << 30;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h" || a == "-help") {
      o.help = true;
      return o;
    }
    if (a == "--json") {
      o.json = true;
      continue;
    }
    if (a == "--one-pass-per-time") {
      o.arrivals_first = false;
      continue;
    }
    if (a == "--compare") {
      if (i + 2 >= args.size()) {
        return Error(Code::kInvalidArgument, "--compare needs two policy files");
      }
      o.compare = {args[i + 1], args[i + 2]};
      i += 2;
      continue;
    }
    Result<std::string> v = need(i, a);
    if (a != "--trace" && a != "--policy" && a != "--procs" && a != "--nodes" &&
        a != "--cores-per-node" && a != "--planner" && a != "--windows" && a != "--window-size" &&
        a != "--warmup" && a != "--jobs" && a != "--plot" && a != "--users") {
      return Error(Code::kInvalidArgument, "unknown option '" + a + "' (see --help)");
    }
    if (!v) return std::unexpected(v.error());
    auto integer = [&](int64_t min, int64_t max) { return Integer(a, *v, min, max); };
    if (a == "--trace") {
      o.trace = *v;
    } else if (a == "--policy") {
      o.policy = *v;
    } else if (a == "--planner") {
      if (Result<PlannerKind> k = PlannerFrom(*v); !k) return std::unexpected(k.error());
      o.planner = *v;
    } else if (a == "--jobs") {
      o.jobs_csv = *v;
    } else if (a == "--plot") {
      o.plot_svg = *v;
    } else if (a == "--warmup") {
      double pct = -1;
      auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), pct);
      if (ec != std::errc() || end != v->data() + v->size() || !(pct >= 0 && pct < 100)) {
        return Error(Code::kInvalidArgument,
                     "--warmup: expected a percentage in [0, 100), got '" + *v + "'");
      }
      o.warmup_percent = pct;
    } else if (a == "--windows") {
      size_t start = 0;
      while (start <= v->size()) {
        size_t comma = v->find(',', start);
        if (comma == std::string::npos) comma = v->size();
        Result<int64_t> n = Integer("--windows", v->substr(start, comma - start), 0, kMaxSize);
        if (!n) return std::unexpected(n.error());
        o.windows.push_back(*n);
        start = comma + 1;
      }
    } else {
      Result<int64_t> n = a == "--users" ? integer(0, kMaxSize) : integer(1, kMaxSize);
      if (!n) return std::unexpected(n.error());
      if (a == "--procs") o.procs = static_cast<int>(*n);
      if (a == "--nodes") o.nodes = static_cast<int>(*n);
      if (a == "--cores-per-node") o.cores_per_node = static_cast<int>(*n);
      if (a == "--window-size") o.window_size = *n;
      if (a == "--users") o.users = static_cast<size_t>(*n);
    }
  }
  if (o.trace.empty()) return Error(Code::kInvalidArgument, "--trace FILE is required");
  if (!o.compare.empty() && !o.policy.empty()) {
    return Error(Code::kInvalidArgument, "--compare runs its own two policies: drop --policy");
  }
  if (!o.compare.empty() && (!o.jobs_csv.empty() || !o.plot_svg.empty() || !o.windows.empty())) {
    return Error(Code::kInvalidArgument,
                 "--compare prints metrics only: run each policy alone for --jobs, --plot or "
                 "--windows");
  }
  if (o.windows.empty() != (o.window_size == 0)) {
    return Error(Code::kInvalidArgument, "--windows and --window-size go together");
  }
  if (!o.plot_svg.empty() && o.windows.size() > 1) {
    return Error(Code::kInvalidArgument, "--plot draws one run: give at most one window");
  }
  return o;
}

Result<std::string> RunSim(const Options& o) {
  Result<SwfTrace> trace = LoadSwf(o.trace);
  if (!trace) return std::unexpected(trace.error());
  Result<Workload> workload =
      BuildWorkload(*trace, MachineRequest{o.procs, o.nodes, o.cores_per_node});
  if (!workload) return std::unexpected(workload.error());
  trace->records.clear();
  trace->records.shrink_to_fit();

  if (!o.compare.empty()) {
    Report reports[2];
    for (int k = 0; k < 2; ++k) {
      Result<Policy> policy = PolicyFor(o.compare[k], o.planner);
      if (!policy) return std::unexpected(policy.error());
      Status s = SimulateAll(o, *workload, *policy, o.compare[k], reports[k], nullptr, nullptr);
      if (!s.ok()) return std::unexpected(s);
    }
    return o.json ? CompareJson(reports[0], reports[1])
                  : CompareText(reports[0], reports[1], o.users);
  }

  Result<Policy> policy = PolicyFor(o.policy, o.planner);
  if (!policy) return std::unexpected(policy.error());
  Report report;
  std::string csv;
  std::vector<TimelinePoint> timeline;
  if (!o.jobs_csv.empty()) csv = CsvHeader();
  Status s =
      SimulateAll(o, *workload, *policy, o.policy, report, o.jobs_csv.empty() ? nullptr : &csv,
                  o.plot_svg.empty() ? nullptr : &timeline);
  if (!s.ok()) return std::unexpected(s);
  if (!o.jobs_csv.empty()) {
    if (Status w = WriteFile(o.jobs_csv, csv); !w.ok()) return std::unexpected(w);
  }
  if (!o.plot_svg.empty()) {
    const std::string title = o.trace.substr(o.trace.find_last_of('/') + 1) + " - " +
                              std::string(PlannerKindName(policy->planner.kind)) +
                              (o.policy.empty() ? std::string() : " - " + o.policy) + " - " +
                              std::to_string(workload->machine.Procs()) + " processors";
    if (Status w = WriteFile(o.plot_svg, TimelineSvg(timeline, workload->machine.Procs(), title));
        !w.ok()) {
      return std::unexpected(w);
    }
  }
  return o.json ? ReportJson(report) : ReportText(report, o.users);
}

}  // namespace corral::sim
