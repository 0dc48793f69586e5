// Consumables (cluster-wide and node-local), node features, site defaults and core
// oversubscription, through the pure core: how a request is read at submit, what is
// refused as impossible, and that allocation never exceeds what the cluster has.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>

#include "scheduler/requests.h"
#include "unit/core_driver.h"

using namespace corral;
using namespace corral::testing;

namespace {

RegisterNode NodeWith(const std::string& name, int cores, std::vector<std::string> features,
                      std::map<std::string, int64_t> consumables) {
  RegisterNode reg{name, {cores, 64000}, {}, {}};
  reg.total.consumables = std::move(consumables);
  reg.features = std::move(features);
  return reg;
}

JobSpec Asking(std::map<std::string, std::string> l, int cores = 1) {
  JobSpec spec = Spec(cores);
  spec.other_resources = std::move(l);
  return spec;
}

// Sum of what running jobs hold, per consumable name, and per node for node-local ones.
std::map<std::string, int64_t> HeldCluster(const ClusterState& s, const std::string& name) {
  std::map<std::string, int64_t> held;
  for (const UnitKey& key : s.running) {
    const Job& j = s.jobs.at(key.job);
    held[name] += j.spec.request.Consumable(name);
    held[j.node + "/" + name] += j.spec.request.Consumable(name);
  }
  return held;
}

}  // namespace

TEST_CASE("requests: -l names become consumables or features only when the cluster has them") {
  Cluster c;
  c.config.consumables = {{"matlab", 10}};
  c.FromNode(NodeWith("n1", 4, {"avx512", "bigmem"}, {{"scratch_gb", 800}}));

  Result<Interpreted> r = InterpretRequest(
      Asking({{"matlab", "2"}, {"scratch_gb", "100"}, {"bigmem", "TRUE"}, {"tmpdir", "x"}}),
      c.state, c.config);
  REQUIRE(r.has_value());
  CHECK(r->spec.request.consumables ==
        std::map<std::string, int64_t>{{"matlab", 2}, {"scratch_gb", 100}});
  CHECK(r->spec.features == std::vector<std::string>{"bigmem"});
  CHECK(r->spec.other_resources == std::map<std::string, std::string>{{"tmpdir", "x"}});
  CHECK(r->warnings ==
        std::vector<std::string>{"unknown resource 'tmpdir' in -l tmpdir=x: recorded, not enforced"});

  Result<Interpreted> bad = InterpretRequest(Asking({{"matlab", "two"}}), c.state, c.config);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message() == "-l matlab=two: 'two' is not a count of the consumable matlab");

  // A boolean name that is no feature here is recorded with a warning, as Grid Engine's
  // unknown complexes are.
  Result<Interpreted> unknown = InterpretRequest(Asking({{"infiniband", "TRUE"}}), c.state, c.config);
  REQUIRE(unknown.has_value());
  CHECK(unknown->spec.features.empty());
  CHECK(unknown->warnings ==
        std::vector<std::string>{"unknown resource 'infiniband' in -l infiniband: recorded, not enforced"});
}

TEST_CASE("requests: the site's default h_rt and memory per core apply only when not given") {
  Cluster c;
  c.config.default_h_rt_s = 3600;
  c.config.default_mem_per_core_mb = 2048;
  Result<Interpreted> r = InterpretRequest(Spec(3), c.state, c.config);
  REQUIRE(r.has_value());
  CHECK(r->spec.h_rt_s == 3600);
  CHECK(r->spec.request.mem_mb == 3 * 2048);
  JobSpec own = Spec(2, 500);
  own.h_rt_s = 60;
  Result<Interpreted> kept = InterpretRequest(own, c.state, c.config);
  CHECK(kept->spec.h_rt_s == 60);
  CHECK(kept->spec.request.mem_mb == 500);
}

TEST_CASE("requests: impossible features and consumables are refused at submit with the reason") {
  Cluster c;
  c.config.consumables = {{"matlab", 10}};
  c.FromNode(NodeWith("n1", 4, {"avx512"}, {{"scratch_gb", 500}}));
  c.FromNode(NodeWith("n2", 8, {}, {{"scratch_gb", 200}}));

  CHECK(ErrorOf(c.Client(SubmitRequest{Asking({{"matlab", "12"}})})) ==
        "the cluster has 10 matlab; the job asks for 12");
  CHECK(ErrorOf(c.Client(SubmitRequest{Asking({{"scratch_gb", "800"}})})) ==
        "no node has 800 scratch_gb; largest has 500");
  JobSpec gpu = Spec();
  gpu.features = {"gpu_a100"};
  CHECK(ErrorOf(c.Client(SubmitRequest{gpu})) == "no node has the feature gpu_a100");
  JobSpec wide = Spec(8);
  wide.features = {"avx512"};
  CHECK(ErrorOf(c.Client(SubmitRequest{wide})) == "no node with avx512 has 8 cores; largest with avx512 has 4");
  CHECK(c.state.jobs.empty());

  // What fits somewhere is accepted, even when it cannot run now.
  wide.features.clear();
  c.Submit(wide);
  c.Submit(Asking({{"scratch_gb", "500"}, {"matlab", "10"}}));
  CHECK(c.state.jobs.size() == 2);
}

TEST_CASE("resources: a feature request runs only on nodes with that feature") {
  Cluster c;
  c.FromNode(NodeWith("a", 4, {}, {}));
  c.FromNode(NodeWith("b", 4, {"avx512", "bigmem"}, {}));
  JobSpec spec = Spec();
  spec.features = {"avx512"};
  JobId first = c.Submit(spec);
  JobId second = c.Submit(Asking({{"bigmem", "TRUE"}}));
  c.Tick();
  CHECK(c.job(first).node == "b");
  CHECK(c.job(second).node == "b");
  CHECK(c.job(second).spec.features == std::vector<std::string>{"bigmem"});
}

TEST_CASE("resources: a burst of 200 jobs never holds more consumables than exist") {
  Cluster c;
  c.config.consumables = {{"matlab", 3}};
  c.FromNode(NodeWith("a", 8, {}, {{"scratch_gb", 100}}));
  c.FromNode(NodeWith("b", 8, {}, {{"scratch_gb", 60}}));
  std::vector<JobId> ids;
  for (int i = 0; i < 200; ++i) {
    // Every other job wants a license, every job some scratch, of varying size.
    std::map<std::string, std::string> l = {{"scratch_gb", std::to_string(5 + (i * 7) % 20)}};
    if (i % 2 == 0) l["matlab"] = "1";
    ids.push_back(c.Submit(Asking(l)));
  }
  size_t done = 0;
  int passes = 0;
  int64_t max_matlab = 0;
  while (done < ids.size() && passes++ < 1000) {
    c.Tick();
    const std::map<std::string, int64_t> matlab = HeldCluster(c.state, "matlab");
    const std::map<std::string, int64_t> scratch = HeldCluster(c.state, "scratch_gb");
    auto held = [](const std::map<std::string, int64_t>& m, const std::string& key) {
      auto it = m.find(key);
      return it == m.end() ? int64_t{0} : it->second;
    };
    CHECK(held(matlab, "matlab") <= 3);
    CHECK(held(scratch, "a/scratch_gb") <= 100);
    CHECK(held(scratch, "b/scratch_gb") <= 60);
    max_matlab = std::max(max_matlab, held(matlab, "matlab"));
    // Finish the oldest running job, as its node would report it.
    REQUIRE_FALSE(c.state.running.empty());
    const Job& j = c.job(c.state.running.begin()->job);
    JobExit exit{j.node, j.id, j.attempt, 0, 0, c.now, c.now + 1};
    c.FromNode(exit);
    ++done;
    ++c.now;
  }
  CHECK(done == ids.size());
  CHECK(max_matlab == 3);  // the licenses were in use, not merely never reached
  for (JobId id : ids) CHECK(c.job(id).state == JobState::kCompleted);
}

TEST_CASE("resources: without oversubscription no core is shared; with it, evenly") {
  Cluster c;
  c.AddNode("n", 2);
  JobId a = c.Submit(Spec(1));
  JobId b = c.Submit(Spec(1));
  JobId d = c.Submit(Spec(1));
  c.Tick();
  CHECK(c.job(a).alloc_cores == std::vector<int>{0});
  CHECK(c.job(b).alloc_cores == std::vector<int>{1});
  CHECK(c.job(d).state == JobState::kQueued);

  Cluster o;
  o.config.oversubscribe = 2;
  o.AddNode("n", 2);
  std::vector<JobId> jobs;
  for (int i = 0; i < 5; ++i) jobs.push_back(o.Submit(Spec(1)));
  o.Tick();
  std::map<int, int> users;
  for (JobId id : jobs) {
    for (int core : o.job(id).alloc_cores) ++users[core];
  }
  CHECK(users == std::map<int, int>{{0, 2}, {1, 2}});  // 4 started, 2 per core
  CHECK(o.job(jobs[4]).state == JobState::kQueued);
  // A 2-core job needs two distinct cores, never the same one twice.
  Cluster w;
  w.config.oversubscribe = 2;
  w.AddNode("n", 2);
  JobId one = w.Submit(Spec(1));
  JobId two = w.Submit(Spec(2));
  w.Tick();
  CHECK(w.job(one).alloc_cores == std::vector<int>{0});
  CHECK(w.job(two).alloc_cores == std::vector<int>{0, 1});
}

TEST_CASE("resources: with oversubscription a job still gets distinct cores, or waits") {
  Cluster c;
  c.config.oversubscribe = 2;
  c.AddNode("n", 2);
  CHECK(ErrorOf(c.Client(SubmitRequest{Spec(3)})) == "no node has 3 cores; largest has 2");
  JobId a = c.Submit(Spec(1));
  JobId b = c.Submit(Spec(1));
  JobId wide = c.Submit(Spec(2));
  c.Tick();
  // a and b took cores 0 and 1 once each; the 2-core job can share both.
  CHECK(c.job(wide).alloc_cores == std::vector<int>{0, 1});
  JobId d = c.Submit(Spec(1));
  JobId e = c.Submit(Spec(2));
  c.Tick();
  CHECK(c.job(d).state == JobState::kQueued);  // both cores hold two jobs already
  CHECK(c.job(e).state == JobState::kQueued);
  (void)a;
  (void)b;
}
