// corral-sim against the published results on the two real traces in ../shared/traces
// (README there): FCFS on Lublin-1 over RLScheduler's 10 windows, and EASY on the KTH SP2
// log with the first 1% of terminated jobs left out (Tsafrir, Etsion & Feitelson 2007).
// The traces live outside the repository: the directory is $CORRAL_TRACES, by default
// ../shared/traces (from the source tree), and each check is skipped (with a message) when its file is absent.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>

#include "sim/metrics.h"
#include "sim/simulator.h"
#include "sim/swf.h"
#include "sim/workload.h"

using namespace corral;
using namespace corral::sim;

namespace {

std::string TracePath(const std::string& name) {
  const char* dir = std::getenv("CORRAL_TRACES");
  return std::string(dir ? dir : CORRAL_SOURCE_DIR "/../shared/traces") + "/" + name;
}

// The trace's workload, or nullopt (and a message) when the file is not there.
std::optional<Workload> Load(const std::string& name) {
  const std::string path = TracePath(name);
  if (!std::filesystem::exists(path)) {
    MESSAGE("skipped: " << path << " not found (set CORRAL_TRACES)");
    return std::nullopt;
  }
  Result<SwfTrace> trace = LoadSwf(path);
  REQUIRE(trace.has_value());
  Result<Workload> w = BuildWorkload(*trace, {});
  REQUIRE(w.has_value());
  return std::move(*w);
}

}  // namespace

TEST_CASE("sim published: FCFS on Lublin-1, 10 windows of 1024 jobs: mean bsld 7273.77") {
  std::optional<Workload> w = Load("lublin_256.swf");
  if (!w) return;
  CHECK(w->machine.Procs() == 256);
  CHECK(w->notes.Skipped() == 0);
  double sum = 0;
  for (size_t first : {1981, 2756, 4299, 8850, 3316, 2714, 5228, 7762, 4022, 7085}) {
    const std::vector<SimJob> window(w->jobs.begin() + static_cast<std::ptrdiff_t>(first),
                                     w->jobs.begin() + static_cast<std::ptrdiff_t>(first + 1024));
    Result<SimResult> r = Simulate(window, w->machine, ReferencePolicy(PlannerKind::kFcfs));
    REQUIRE(r.has_value());
    sum += ComputeMetrics(window, r->jobs, w->machine.Procs()).mean_bsld;
  }
  CHECK(sum / 10 == doctest::Approx(7273.77).epsilon(1e-6));
}

TEST_CASE("sim published: EASY on KTH SP2 within 5% of 114.2 min wait and 89.9 bsld") {
  std::optional<Workload> w = Load("KTH-SP2-1996-2.1-cln.swf");
  if (!w) return;
  CHECK(w->machine.Procs() == 100);
  CHECK(w->jobs.size() == 28467);
  Result<SimResult> r = Simulate(w->jobs, w->machine, ReferencePolicy(PlannerKind::kEasy));
  REQUIRE(r.has_value());
  const Metrics m = ComputeMetrics(w->jobs, r->jobs, w->machine.Procs(), 1.0);
  // Ours: 114.5 min and 93.03 (docs/simulator.md explains the 3.5% on slowdown).
  CHECK(m.mean_wait_s / 60 == doctest::Approx(114.2).epsilon(0.05));
  CHECK(m.mean_bsld == doctest::Approx(89.9).epsilon(0.05));
  CHECK(m.mean_wait_s / 60 == doctest::Approx(114.50).epsilon(0.001));  // regression
  CHECK(m.mean_bsld == doctest::Approx(93.03).epsilon(0.001));
}
