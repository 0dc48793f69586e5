// Resources on a real node: specific cores and GPUs allocated by the scheduler and
// enforced by the execd (CPU affinity, CUDA_VISIBLE_DEVICES), and impossible requests
// refused at submit with the reason.
#include <doctest/doctest.h>

#include <set>
#include <sstream>

#include "tests/e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

namespace {

std::map<std::string, std::string> KeyValues(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

}  // namespace

TEST_CASE("gpus_and_cores_allocated") {
  TestCluster cluster({.nodes = 1, .cores = 2, .gpus = 4});
  auto env = cluster.Env();
  WriteFile(cluster.work() + "/gpu.sh",
            "#!/bin/sh\n#$ -cwd\n#$ -l gpu=2\n"
            "echo CUDA=$CUDA_VISIBLE_DEVICES\necho GPUS=$CORRAL_GPUS\necho OMP=$OMP_NUM_THREADS\n"
            "echo CPUS=$(grep Cpus_allowed_list /proc/self/status | cut -f2)\n"
            "echo CORES=$CORRAL_CORES\nsleep 1\n");
  std::vector<JobId> ids;
  for (int i = 0; i < 3; ++i) {
    RunResult q = Run({"qsub", "-terse", "gpu.sh"}, env, cluster.work());
    REQUIRE_MESSAGE(q.exit_code == 0, q.err);
    ids.push_back(std::stoll(q.out));
  }
  std::vector<Job> done = cluster.WaitJobs(ids, 30000);
  std::map<JobId, std::map<std::string, std::string>> seen;
  for (const Job& job : done) {
    CHECK(job.state == JobState::kCompleted);
    seen[job.id] = KeyValues(ReadFile(cluster.work() + "/gpu.sh.o" + std::to_string(job.id)));
    CHECK(seen[job.id]["OMP"] == "1");
    CHECK(seen[job.id]["GPUS"] == seen[job.id]["CUDA"]);
  }
  // The first two ran side by side with disjoint GPUs and cores; the third waited for one.
  CHECK(seen[ids[0]]["CUDA"] == "0,1");
  CHECK(seen[ids[1]]["CUDA"] == "2,3");
  CHECK(seen[ids[0]]["CORES"] == "0");
  CHECK(seen[ids[1]]["CORES"] == "1");
  // Bound to one CPU each, and not the same one (this machine has at least 2 CPUs).
  CHECK(seen[ids[0]]["CPUS"].find_first_of(",-") == std::string::npos);
  CHECK(seen[ids[0]]["CPUS"] != seen[ids[1]]["CPUS"]);
  CHECK(done[2].start_time >= std::min(done[0].end_time, done[1].end_time));
  // Impossible requests: refused at submit, with the reason.
  RunResult big = Run({"qsub", "-l", "gpu=8", "-b", "y", "true"}, env, cluster.work());
  CHECK(big.exit_code == 1);
  CHECK(big.err == "Unable to run job: no node has 8 GPUs; largest has 4.\nExiting.\n");
  // qhost shows the GPUs.
  CHECK(Run({"qhost"}, env).out.find(" 0/4 ") != std::string::npos);
}

TEST_CASE("memory_limit_enforced") {
  TestCluster cluster({.nodes = 1, .cores = 2});
  auto env = cluster.Env();
  // `tail` of one 300 MB "line" holds it all in memory: far past a 64 MB request.
  RunResult hog = Run({"qsub", "-terse", "-cwd", "-l", "h_vmem=64M", "-b", "y", "sh", "-c",
                       "head -c 300M /dev/zero | tail > /dev/null"},
                      env, cluster.work());
  REQUIRE_MESSAGE(hog.exit_code == 0, hog.err);
  RunResult fine = Run({"qsub", "-terse", "-cwd", "-l", "h_vmem=64M", "-b", "y", "sh", "-c",
                        "head -c 1M /dev/zero | tail > /dev/null"},
                       env, cluster.work());
  REQUIRE(fine.exit_code == 0);
  std::vector<Job> done =
      cluster.WaitJobs({std::stoll(hog.out), std::stoll(fine.out)}, 60000);
  CHECK(done.at(0).state == JobState::kFailed);
  CHECK(done.at(0).reason == "memory exceeded");
  CHECK(done.at(1).state == JobState::kCompleted);
  CHECK(Run({"qacct", "-j", hog.out.substr(0, hog.out.size() - 1)}, env).out.find(
            "reason=memory exceeded") != std::string::npos);
}
