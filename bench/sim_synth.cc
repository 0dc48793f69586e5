// corral-sim-synth: writes a synthetic SWF trace for the simulator benchmark
// (bench/sim_bench.sh). Deterministic for a seed on any platform: it draws from
// std::mt19937_64 (whose sequence the standard fixes) and maps the raw numbers itself
// instead of using std:: distributions (whose output is implementation-defined).
//
// The model, loosely shaped like the KTH SP2 log:
//   size      40% one processor; 45% a power of two in [2, max]; 15% uniform in [2, max]
//   run time  log-uniform in [10 s, 36 h]
//   estimate  95%: run x (1 + 4u) rounded up to 5 minutes; 5%: exactly the run time
//   arrivals  Poisson, rate set so the offered load (sum size x run / time) is --load x P
//   users     200, skewed (user = 1 + floor(200 u^2)); group = 1 + user mod 20
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

const char kUsage[] =
    "usage: corral-sim-synth [--jobs N] [--procs P] [--max-size M] [--load L] [--seed S]\n"
    "Writes a synthetic SWF trace to stdout (defaults: 1000000 jobs, 128 processors,\n"
    "max size 64, load 0.75, seed 1).\n";

struct Rng {
  std::mt19937_64 gen;
  double Uniform() { return static_cast<double>(gen() >> 11) * 0x1.0p-53; }  // [0, 1)
  int64_t Between(int64_t lo, int64_t hi) {                                  // [lo, hi]
    return lo + static_cast<int64_t>(Uniform() * static_cast<double>(hi - lo + 1));
  }
};

}  // namespace

int main(int argc, char** argv) {
  int64_t jobs = 1000000, procs = 128, max_size = 64;
  double load = 0.75;
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "corral-sim-synth: %s needs a value\n%s", a.c_str(), kUsage);
      return 2;
    }
    const char* v = argv[++i];
    if (a == "--jobs")
      jobs = std::atoll(v);
    else if (a == "--procs")
      procs = std::atoll(v);
    else if (a == "--max-size")
      max_size = std::atoll(v);
    else if (a == "--load")
      load = std::atof(v);
    else if (a == "--seed")
      seed = std::strtoull(v, nullptr, 10);
    else {
      std::fprintf(stderr, "corral-sim-synth: unknown option %s\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (jobs <= 0 || procs <= 0 || max_size <= 0 || max_size > procs || !(load > 0)) {
    std::fprintf(stderr,
                 "corral-sim-synth: need jobs, procs > 0, 0 < max-size <= procs, load > 0\n");
    return 2;
  }
  Rng rng{std::mt19937_64(seed)};
  struct Job {
    int64_t size, run, estimate, user;
  };
  std::vector<Job> all(static_cast<size_t>(jobs));
  int log_max = 0;
  while ((int64_t{2} << log_max) <= max_size) ++log_max;  // 2^log_max <= max_size
  double work = 0;
  for (Job& j : all) {
    const double kind = rng.Uniform();
    if (kind < 0.40 || max_size < 2) {
      j.size = 1;
    } else if (kind < 0.85 && log_max >= 1) {
      j.size = int64_t{1} << rng.Between(1, log_max);
    } else {
      j.size = rng.Between(2, max_size);
    }
    j.run = static_cast<int64_t>(std::ceil(
        std::exp(std::log(10.0) + rng.Uniform() * (std::log(36 * 3600.0) - std::log(10.0)))));
    if (rng.Uniform() < 0.05) {
      j.estimate = j.run;
    } else {
      const double e = static_cast<double>(j.run) * (1 + 4 * rng.Uniform());
      j.estimate = static_cast<int64_t>(std::ceil(e / 300.0)) * 300;
    }
    const double u = rng.Uniform();
    j.user = 1 + static_cast<int64_t>(200 * u * u);
    work += static_cast<double>(j.size * j.run);
  }
  const double mean_gap = work / static_cast<double>(jobs) / (load * static_cast<double>(procs));
  std::printf(
      "; Version: 2.2\n; Computer: corral-sim-synth\n; Note: synthetic, seed %llu, load %g\n",
      static_cast<unsigned long long>(seed), load);
  std::printf("; MaxJobs: %lld\n; MaxRecords: %lld\n; MaxNodes: %lld\n; MaxProcs: %lld\n",
              static_cast<long long>(jobs), static_cast<long long>(jobs),
              static_cast<long long>(procs), static_cast<long long>(procs));
  double t = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const Job& j = all[i];
    t += -std::log(1 - rng.Uniform()) * mean_gap;
    std::printf("%zu %lld -1 %lld %lld -1 -1 %lld %lld -1 1 %lld %lld -1 -1 -1 -1 -1\n", i + 1,
                static_cast<long long>(t), static_cast<long long>(j.run),
                static_cast<long long>(j.size), static_cast<long long>(j.size),
                static_cast<long long>(j.estimate), static_cast<long long>(j.user),
                static_cast<long long>(1 + j.user % 20));
  }
  return 0;
}
