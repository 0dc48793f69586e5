// corral-decide-bench: times the pure core in-process — one Decide() over P pending jobs
// and N nodes, first come first served and under a backfill policy, the same over one
// array of T pending tasks, and a Decide with nothing changed (is the pass incremental?).
// The cluster is built the way the server builds it: RegisterNode and SubmitRequest
// through HandleNode/HandleClient, every result Install()ed. Prints "name value unit".
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_TOGGLE_COLLECT
#endif

#include "bench/stopwatch.h"
#include "common/protocol.h"
#include "policies/queues.h"
#include "scheduler/core.h"

namespace corral {
namespace {

using bench::Median;
using bench::Stopwatch;

// An example-policy.yaml style policy without limits (limits would keep cores idle and
// blur "full cluster"): fair share over 4 groups of 25 users, multifactor priority, EASY
// backfill examining at most 1000 jobs per pass.
std::string DefaultPolicyYaml() {
  std::string y =
      "fairshare:\n  half_life: 7d\n  gpu_weight: 8\n  mem_weight: 0.25\n  tree:\n";
  for (int g = 0; g < 4; ++g) {
    y += "    g" + std::to_string(g) + ":\n      shares: " + std::to_string(10 * (g + 1)) +
         "\n      users: [";
    for (int u = g; u < 100; u += 4) y += (u == g ? "" : ", ") + std::string("u") + std::to_string(u);
    y += "]\n";
  }
  y +=
      "priority:\n  fairshare: 10000\n  age: 1000\n  age_cap: 7d\n  job_size: 100\n  user: 500\n"
      "planner:\n  algorithm: easy\n  reservation_depth: 1\n  max_jobs_per_pass: 1000\n"
      "  default_runtime: 1h\n";
  return y;
}

struct Args {
  int nodes = 1000;
  int cores = 32;
  long pending = 100000;
  long array_tasks = 1000000;
  int reps = 5;
  std::string policy_file;
  bool skip_policy = false;
  bool skip_array = false;
  bool skip_plain = false;
  bool skip_fcfs = false;
  // Under valgrind --tool=callgrind --collect-atstart=no: collect only these passes
  // ("first", "steady" or "exit"), or the core's query for one user's jobs ("query").
  std::string profile;
};

void Print(const std::string& name, double value, const std::string& unit) {
  printf("%s %.3f %s\n", name.c_str(), value, unit.c_str());
  fflush(stdout);
}

class Bench {
 public:
  Bench(const Args& args, std::shared_ptr<const PolicyEngine> policy)
      : args_(args), policy_(std::move(policy)) {
    config_.heartbeat_interval_ms = 5000;
    config_.node_timeout_ms = 3600 * 1000;  // nodes never time out during a run
  }

  void AddNodes() {
    for (int k = 0; k < args_.nodes; ++k) {
      char name[32];
      snprintf(name, sizeof name, "node%05d", k);
      Outcome o = HandleNode(state_, RegisterNode{name, {args_.cores, 256 * 1024, 0}, {}, {}, {}},
                             config_, now_);
      Install(state_, o.actions);
    }
  }

  JobSpec Spec(long i) const {
    JobSpec spec;
    spec.name = "j" + std::to_string(i);
    spec.cwd = "/tmp";
    spec.script = "#!/bin/sh\n/bin/true\n";
    spec.request = {1, 1024};
    spec.h_rt_s = 600 * (1 + i % 12);  // 10 min .. 2 h: backfill has estimates to work with
    if (policy_) (void)ApplyQueue(policy_->policy, spec);
    return spec;
  }

  static Caller UserOf(long i) {
    Caller c;
    c.uid = 10000 + static_cast<uint32_t>(i % 100);
    c.gid = 100;
    c.user = "u" + std::to_string(i % 100);
    return c;
  }

  // Submits through HandleClient with the FCFS config (under a policy a submit counts
  // every queued job for max_queued_jobs: quadratic over a 100k backlog); returns the
  // mean core time of one submit in microseconds.
  double SubmitPlain(long n) {
    Stopwatch sw;
    for (long i = 0; i < n; ++i) {
      Outcome o = HandleClient(state_, SubmitRequest{Spec(i)}, UserOf(i), config_, now_);
      Install(state_, o.actions);
      now_ += 1;  // distinct submit times: age differs between jobs
    }
    return sw.Ms() * 1000.0 / static_cast<double>(n);
  }

  void SubmitArray(long tasks) {
    JobSpec spec = Spec(0);
    spec.array = TaskRange{1, tasks, 1};
    Outcome o = HandleClient(state_, SubmitRequest{spec}, UserOf(0), config_, now_);
    Install(state_, o.actions);
  }

  CoreConfig Config(bool with_policy) const {
    CoreConfig c = config_;
    if (with_policy) c.policy = policy_;
    return c;
  }

  // One Decide, timed, then installed. Returns the Decide time in ms.
  double TimedDecide(const CoreConfig& c, size_t* starts = nullptr, double* install_ms = nullptr,
                     bool profiled = false) {
    Stopwatch sw;
    if (profiled) CALLGRIND_TOGGLE_COLLECT;
    Actions a = Decide(state_, c, now_);
    if (profiled) CALLGRIND_TOGGLE_COLLECT;
    const double ms = sw.Ms();
    Stopwatch si;
    Install(state_, a);
    if (install_ms) *install_ms = si.Ms();
    if (starts) *starts = a.orders.size();
    return ms;
  }

  // The oldest running unit ends (exit 0), as its node reports it.
  void OneExit(const CoreConfig& c) {
    const UnitKey key = *state_.running.begin();
    const Job& job = *FindUnit(state_, key);
    JobExit exit;
    exit.node = job.node;
    exit.job_id = job.id;
    exit.attempt = job.attempt;
    exit.task = job.task;
    exit.start_time = job.start_time;
    exit.end_time = now_;
    Outcome o = HandleNode(state_, exit, c, now_);
    Install(state_, o.actions);
  }

  // First pass(es) until the cluster is full, steady passes, one exit then a pass.
  void Passes(const std::string& prefix, bool with_policy) {
    const CoreConfig c = Config(with_policy);
    if (with_policy) RebuildUsage(state_, c);
    size_t starts = 0;
    double install_ms = 0;
    const double first = TimedDecide(c, &starts, &install_ms, args_.profile == "first");
    Print(prefix + "_first_pass", first, "ms");
    Print(prefix + "_first_pass_starts", static_cast<double>(starts), "jobs");
    Print(prefix + "_first_pass_install", install_ms, "ms");
    // Under a policy a pass examines at most max_jobs_per_pass jobs: more passes fill it.
    int passes = 1;
    double fill_ms = first;
    size_t total = starts;
    const size_t slots = static_cast<size_t>(args_.nodes) * args_.cores;
    while (starts > 0 && total < slots && passes < 1000) {
      now_ += 1000;
      fill_ms += TimedDecide(c, &starts);
      total += starts;
      ++passes;
    }
    if (passes > 1) {
      Print(prefix + "_passes_to_fill", passes, "passes");
      Print(prefix + "_time_to_fill", fill_ms, "ms");
    }
    Print(prefix + "_running", static_cast<double>(state_.running.size()), "jobs");
    std::vector<double> steady, after_exit;
    for (int r = 0; r < args_.reps; ++r) {
      now_ += 1000;
      steady.push_back(TimedDecide(c, &starts, nullptr, args_.profile == "steady"));
    }
    Print(prefix + "_steady_pass_nothing_changed", Median(steady), "ms");
    for (int r = 0; r < args_.reps; ++r) {
      now_ += 1000;
      OneExit(c);
      after_exit.push_back(TimedDecide(c, &starts, nullptr, args_.profile == "exit"));
    }
    Print(prefix + "_pass_after_one_exit", Median(after_exit), "ms");
    Print(prefix + "_pass_after_one_exit_starts", static_cast<double>(starts), "jobs");
  }

  // Core time of queries on the current state (what qstat costs the scheduler before
  // the reply is encoded), and of encoding the reply: the first page as the client
  // library asks for it (kQueryPageRecords), and the whole listing page by page. The
  // encoding is also timed the generic way (a nlohmann value per record: JobToJson),
  // which is how every reply was encoded before job_text.cc, on the same records.
  void Queries(const std::string& prefix) {
    auto time_query = [&](const std::string& name, QueryRequest q) {
      q.limit = 2000;  // qtools/client.h kQueryPageRecords
      std::vector<double> core, encode, generic, total;
      size_t bytes = 0, jobs = 0, pages = 0, all_jobs = 0;
      for (int r = 0; r < 3; ++r) {
        QueryRequest page = q;
        double walk = 0;
        pages = all_jobs = 0;
        while (true) {
          Stopwatch sw;
          if (args_.profile == "query") CALLGRIND_TOGGLE_COLLECT;
          Outcome o = HandleClient(state_, page, UserOf(0), config_, now_);
          if (args_.profile == "query") CALLGRIND_TOGGLE_COLLECT;
          const double core_ms = sw.Ms();
          Stopwatch se;
          const std::string wire = Encode(*o.reply, "q");
          const double encode_ms = se.Ms();
          walk += core_ms + encode_ms;
          const auto& reply = std::get<QueryReply>(*o.reply);
          if (pages++ == 0) {
            core.push_back(core_ms);
            encode.push_back(encode_ms);
            bytes = wire.size();
            jobs = reply.jobs.size();
            Stopwatch sg;
            size_t generic_bytes = 0;
            for (const Job& job : reply.jobs) generic_bytes += JobToJson(job).size();
            generic.push_back(sg.Ms());
            if (generic_bytes == 0 && !reply.jobs.empty()) std::abort();
          }
          all_jobs += reply.jobs.size();
          if (!reply.next) break;
          page.after = reply.next;
        }
        total.push_back(walk);
      }
      const std::string p = prefix + "_" + name;
      Print(p + "_core", Median(core), "ms");
      Print(p + "_encode", Median(encode), "ms");
      Print(p + "_encode_generic", Median(generic), "ms");
      if (jobs > 0) {
        Print(p + "_encode_per_record", Median(encode) * 1000 / jobs, "us");
        Print(p + "_encode_generic_per_record", Median(generic) * 1000 / jobs, "us");
      }
      Print(p + "_reply_bytes", static_cast<double>(bytes), "B");
      Print(p + "_jobs", static_cast<double>(jobs), "jobs");
      Print(p + "_all_pages", static_cast<double>(pages), "pages");
      Print(p + "_all_jobs", static_cast<double>(all_jobs), "jobs");
      Print(p + "_all_core_and_encode", Median(total), "ms");
    };
    QueryRequest one_user;
    one_user.user = "nobody-here";
    time_query("query_user_without_jobs", one_user);
    one_user.include_finished = true;
    time_query("query_user_without_jobs_finished_too", one_user);
    if (args_.profile == "query") return;  // the one-user query is what is profiled
    QueryRequest all;
    time_query("query_all_active", all);
    QueryRequest one_job;
    one_job.ids = {state_.jobs.rbegin()->first};
    one_job.include_finished = true;
    time_query("query_one_job", one_job);
  }

  // Core time of one more submit with the current backlog (under the policy: the
  // max_queued_jobs count walks every pending job).
  void SubmitCost(const std::string& prefix, bool with_policy) {
    const CoreConfig c = Config(with_policy);
    std::vector<double> us;
    for (int r = 0; r < 20; ++r) {
      Stopwatch sw;
      Outcome o = HandleClient(state_, SubmitRequest{Spec(r)}, UserOf(r), c, now_);
      us.push_back(sw.Ms() * 1000.0);
      Install(state_, o.actions);
    }
    Print(prefix + "_one_submit_core", Median(us), "us");
  }

 private:
  const Args& args_;
  std::shared_ptr<const PolicyEngine> policy_;
  CoreConfig config_;
  ClusterState state_;
  TimeMs now_ = 1700000000000;
};

int Run(const Args& args) {
  std::string yaml = DefaultPolicyYaml();
  Result<Policy> policy = args.policy_file.empty() ? ParsePolicy(yaml, "bench-policy")
                                                   : LoadPolicy(args.policy_file);
  if (!policy) {
    std::cerr << "corral-decide-bench: " << policy.error().message() << "\n";
    return 2;
  }
  auto engine = std::make_shared<const PolicyEngine>(std::move(*policy));
  const std::string shape = std::to_string(args.pending) + "x" + std::to_string(args.nodes);
  const long slots = static_cast<long>(args.nodes) * args.cores;
  printf("# %d nodes x %d cores; %ld pending jobs once the cluster is full\n", args.nodes,
         args.cores, args.pending);
  for (bool with_policy : {false, true}) {
    if ((with_policy && args.skip_policy) || (!with_policy && args.skip_fcfs)) continue;
    if (args.skip_plain) break;
    Bench b(args, engine);
    b.AddNodes();
    const double submit_us = b.SubmitPlain(args.pending + slots);
    const std::string prefix = std::string("decide_") + (with_policy ? "easy" : "fcfs") + "_" + shape;
    if (!with_policy) Print("core_submit_mean_" + std::to_string(args.nodes) + "_nodes", submit_us, "us");
    b.Passes(prefix, with_policy);
    if (!with_policy && args.profile == "query") b.Queries("core_" + shape);
    if (!args.profile.empty()) continue;  // under callgrind: the profiled part only
    if (!with_policy) b.Queries("core_" + shape);
    b.SubmitCost("core_" + std::string(with_policy ? "easy" : "fcfs") + "_" + shape, with_policy);
  }
  if (!args.skip_array) {
    for (bool with_policy : {false, true}) {
      if ((with_policy && args.skip_policy) || (!with_policy && args.skip_fcfs)) continue;
      Bench b(args, engine);
      b.AddNodes();
      b.SubmitArray(args.array_tasks);
      b.Passes(std::string("decide_") + (with_policy ? "easy" : "fcfs") + "_array_" +
                   std::to_string(args.array_tasks) + "x" + std::to_string(args.nodes),
               with_policy);
    }
  }
  return 0;
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) {
  corral::Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "corral-decide-bench: " << s << " needs a value\n";
        exit(2);
      }
      return argv[++i];
    };
    if (s == "--nodes") a.nodes = std::stoi(next());
    else if (s == "--cores") a.cores = std::stoi(next());
    else if (s == "--pending") a.pending = std::stol(next());
    else if (s == "--array") a.array_tasks = std::stol(next());
    else if (s == "--reps") a.reps = std::stoi(next());
    else if (s == "--policy") a.policy_file = next();
    else if (s == "--no-policy") a.skip_policy = true;
    else if (s == "--no-array") a.skip_array = true;
    else if (s == "--no-plain") a.skip_plain = true;
    else if (s == "--no-fcfs") a.skip_fcfs = true;
    else if (s == "--profile") a.profile = next();
    else {
      std::cerr << "usage: corral-decide-bench [--nodes N] [--cores C] [--pending P] [--array T]\n"
                   "       [--reps R] [--policy FILE] [--no-policy] [--no-fcfs] [--no-array]\n"
                   "       [--no-plain] [--profile first|steady|exit|query]\n";
      return 2;
    }
  }
  return corral::Run(a);
}
