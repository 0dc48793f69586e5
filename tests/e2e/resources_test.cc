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

TEST_CASE("consumables_and_features") {
  // Three cluster-wide licenses; scratch space on each node; one node with avx512.
  TestCluster cluster({.nodes = 2,
                       .cores = 4,
                       .scheduler_yaml = "consumables: {matlab: 3}\n",
                       .execd_args = {{1, {"--consumables", "scratch_gb=100", "--features",
                                           "avx512,bigmem"}},
                                      {2, {"--consumables", "scratch_gb=50"}}}});
  auto env = cluster.Env();
  const std::string log = cluster.work() + "/held.log";
  // Each job appends "+ NODE SCRATCH" as it starts and "- NODE SCRATCH" before it ends;
  // the scheduler learns of an end only after the "-" line is written, so replaying the
  // log gives an upper bound of what was really held at once.
  const std::string script = "#!/bin/sh\necho \"+ $CORRAL_NODE $1\" >> " + log +
                             "\nsleep 0.05\necho \"- $CORRAL_NODE $1\" >> " + log + "\n";
  Client client = cluster.Connect();
  std::vector<JobId> ids;
  for (int i = 0; i < 200; ++i) {
    JobSpec spec;
    spec.name = "burst" + std::to_string(i);
    spec.script = script;
    const int scratch = 10 + (i * 7) % 30;
    spec.args = {std::to_string(scratch)};
    spec.cwd = cluster.work();
    spec.other_resources = {{"matlab", "1"}, {"scratch_gb", std::to_string(scratch)}};
    Result<Message> reply = client.Call(SubmitRequest{spec}, Slack(10000));
    REQUIRE(reply.has_value());
    REQUIRE(std::holds_alternative<SubmitReply>(*reply));
    ids.push_back(std::get<SubmitReply>(*reply).id);
  }
  std::vector<Job> done = cluster.WaitJobs(ids, 120000);
  for (const Job& job : done) REQUIRE(job.state == JobState::kCompleted);

  std::istringstream in(ReadFile(log));
  int licenses = 0, most_licenses = 0, lines = 0;
  std::map<std::string, int> scratch, most_scratch;
  for (std::string sign, node, amount; in >> sign >> node >> amount; ++lines) {
    const int delta = sign == "+" ? 1 : -1;
    licenses += delta;
    scratch[node] += delta * std::stoi(amount);
    most_licenses = std::max(most_licenses, licenses);
    most_scratch[node] = std::max(most_scratch[node], scratch[node]);
  }
  CHECK(lines == 400);
  CHECK(most_licenses <= 3);
  CHECK(most_licenses >= 2);  // they did overlap: the check above was exercised
  CHECK(most_scratch["node1"] <= 100);
  CHECK(most_scratch["node2"] <= 50);

  // Features: a request for avx512 lands on node1; one no node has is refused.
  RunResult avx = Run({"qsub", "-terse", "-cwd", "-l", "arch=avx512", "-b", "y", "true"}, env,
                      cluster.work());
  REQUIRE_MESSAGE(avx.exit_code == 0, avx.err);
  RunResult big = Run({"qsub", "-terse", "-cwd", "-l", "bigmem", "-b", "y", "true"}, env,
                      cluster.work());
  REQUIRE_MESSAGE(big.exit_code == 0, big.err);
  CHECK(big.err.empty());  // bigmem is a feature here: no "unknown resource" warning
  std::vector<Job> placed = cluster.WaitJobs({std::stoll(avx.out), std::stoll(big.out)}, 30000);
  CHECK(placed[0].node == "node1");
  CHECK(placed[1].node == "node1");
  RunResult none = Run({"qsub", "-l", "arch=sse2", "-b", "y", "true"}, env, cluster.work());
  CHECK(none.exit_code == 1);
  CHECK(none.err == "Unable to run job: no node has the feature sse2.\nExiting.\n");
  RunResult lic = Run({"qsub", "-l", "matlab=4", "-b", "y", "true"}, env, cluster.work());
  CHECK(lic.err == "Unable to run job: the cluster has 3 matlab; the job asks for 4.\nExiting.\n");
  RunResult odd = Run({"qsub", "-terse", "-l", "tmpdir=fast", "-b", "y", "true"}, env,
                      cluster.work());
  CHECK(odd.exit_code == 0);
  CHECK(odd.err == "qsub: warning: unknown resource 'tmpdir' in -l tmpdir=fast: recorded, not "
                   "enforced\n");
  // qhost -F shows what is left and the features.
  RunResult qhost = Run({"qhost", "-F"}, env);
  CHECK(qhost.out.find("    hc:scratch_gb=100\n    hf:avx512=TRUE\n") != std::string::npos);
  // qacct -o totals this user's 200+ jobs.
  RunResult acct = Run({"qacct", "-o", "--json"}, env);
  CHECK(acct.exit_code == 0);
  CHECK(acct.out.find("\"jobs\":20") != std::string::npos);
}
