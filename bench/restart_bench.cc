// corral-restart-bench: the scheduler's start-up cost with many jobs in SQLite, in-process.
//   build --db FILE --jobs N   builds the state the way bench/perf.sh's query section does,
//                              in a fraction of its time: N/2 pending jobs, then N/2 jobs
//                              submitted and cancelled (user nobody, `corral-flood submit`'s
//                              spec), through HandleClient/Install and committed by
//                              Store::Apply in batches of 4096 (the server's group commit).
//   load --db FILE [--reps R]  times Store::Open + Load (+ RebuildUsage), R times; prints
//                              the median and the RSS growth per job of the loaded state.
//                              Only the first load in a process pays for faulting its heap
//                              in (later ones reuse the freed memory): a restart is R=1.
// The wall-clock restart of the real daemon (kill -9, start, until qstat -j answers) is
// bench/restart.sh, which builds its state dir with this program. Prints "name value unit".
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "bench/stopwatch.h"
#include "scheduler/core.h"
#include "scheduler/events.h"
#include "scheduler/store.h"

namespace corral {
namespace {

using bench::Median;
using bench::Stopwatch;

// User + system CPU time of this process so far, ms: on a shared machine the figure that
// says what the work costs, beside the wall clock that says what a user waits.
double CpuMs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

Caller Nobody() {
  Caller c;
  c.uid = 65534;
  c.gid = 65534;
  c.user = "nobody";
  return c;
}

// What `corral-flood submit --cwd /tmp --name pop` sends.
JobSpec FloodSpec(long i) {
  JobSpec spec;
  spec.cwd = "/tmp";
  spec.request = {1, 0};
  spec.script = "#!/bin/sh\n/bin/true\n";
  spec.name = "pop" + std::to_string(i);
  return spec;
}

int Build(const std::string& db, long jobs) {
  auto store = Store::Open(db);
  if (!store) {
    std::cerr << "corral-restart-bench: " << store.error().message() << "\n";
    return 1;
  }
  ClusterState state;
  CoreConfig config;
  // Stamped with the real time, as the server stamps them, so that a restart soon after
  // finds its events within event_retention (nothing to prune), like perf.sh's population.
  TimeMs now = SystemClock().Now();
  Actions batch;
  int64_t next_event = 1;
  auto commit = [&]() -> bool {
    Status s = (*store)->Apply(batch);
    if (!s.ok()) std::cerr << "corral-restart-bench: " << s.message() << "\n";
    batch = Actions();
    return s.ok();
  };
  auto handle = [&](const Message& request) -> bool {
    Outcome o = HandleClient(state, request, Nobody(), config, now);
    if (o.reply && std::holds_alternative<ErrorReply>(*o.reply)) {
      std::cerr << "corral-restart-bench: " << std::get<ErrorReply>(*o.reply).message << "\n";
      return false;
    }
    o.actions.events = EventsOf(state, o.actions, now);  // as the server does; it numbers them
    for (Event& e : o.actions.events) e.seq = next_event++;
    Install(state, o.actions);
    o.actions.orders.clear();
    batch.Append(std::move(o.actions));
    return batch.put_jobs.size() < 4096 || commit();
  };
  Stopwatch sw;
  const long half = jobs / 2;
  for (long i = 0; i < half; ++i, ++now) {
    if (!handle(SubmitRequest{FloodSpec(i)})) return 1;
  }
  for (long i = 0; i < jobs - half; ++i, ++now) {
    if (!handle(SubmitRequest{FloodSpec(half + i)})) return 1;
    if (!handle(CancelRequest{{state.next_job_id - 1}, "", std::nullopt})) return 1;
  }
  if (!commit()) return 1;
  printf("build_jobs %zu jobs\n", state.jobs.size());
  printf("build_ms %.0f ms\n", sw.Ms());
  return 0;
}

int Load(const std::string& db, int reps) {
  std::vector<double> open_ms, load_ms, load_cpu_ms;
  long rss_growth_kb = 0;
  size_t jobs = 0;
  for (int k = 0; k < reps; ++k) {
    const long rss0 = RssKb();
    Stopwatch sw;
    auto store = Store::Open(db);
    if (!store) {
      std::cerr << "corral-restart-bench: " << store.error().message() << "\n";
      return 1;
    }
    open_ms.push_back(sw.Ms());
    Stopwatch sl;
    const double cpu0 = CpuMs();
    Result<ClusterState> state = (*store)->Load();
    if (!state) {
      std::cerr << "corral-restart-bench: " << state.error().message() << "\n";
      return 1;
    }
    RebuildUsage(*state, CoreConfig());
    load_ms.push_back(sl.Ms());
    load_cpu_ms.push_back(CpuMs() - cpu0);
    rss_growth_kb = RssKb() - rss0;
    jobs = state->jobs.size();
  }
  printf("load_jobs %zu jobs\n", jobs);
  printf("load_open_ms %.1f ms  # Store::Open, median of %d\n", Median(open_ms), reps);
  printf("load_ms %.1f ms  # Store::Load + RebuildUsage, median of %d\n", Median(load_ms), reps);
  printf("load_cpu_ms %.1f ms  # its user + system CPU time, median of %d\n", Median(load_cpu_ms),
         reps);
  printf("load_rss_bytes_per_job %.0f B  # RSS growth over the last load, per job\n",
         jobs ? rss_growth_kb * 1024.0 / static_cast<double>(jobs) : 0.0);
  return 0;
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  std::string db;
  long jobs = 1000000;
  int reps = 3;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--db") {
      db = argv[i + 1];
    } else if (a == "--jobs") {
      jobs = std::atol(argv[i + 1]);
    } else if (a == "--reps") {
      reps = std::atoi(argv[i + 1]);
    } else {
      mode.clear();
    }
  }
  if (db.empty() || (mode != "build" && mode != "load") || jobs <= 0 || reps <= 0) {
    std::cerr << "usage: corral-restart-bench build --db FILE [--jobs N]\n"
                 "       corral-restart-bench load --db FILE [--reps R]\n";
    return 2;
  }
  return mode == "build" ? corral::Build(db, jobs) : corral::Load(db, reps);
}
