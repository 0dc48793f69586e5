// The policy file: defaults, the annotated example, queue and limit helpers, and every kind
// of bad input refused with file:line:column and the key path.
#include "policies/policy_config.h"

#include <doctest/doctest.h>

#include <string>

#include "policies/limits.h"
#include "policies/queues.h"

using namespace corral;

namespace {

std::string ExamplePath() {
  const std::string here = __FILE__;  // [ROOT/]tests/unit/policy_config_test.cc
  return here.substr(0, here.rfind("tests/unit/")) + "policies/example-policy.yaml";
}

std::string ErrorOf(const std::string& yaml) {
  Result<Policy> p = ParsePolicy(yaml, "p.yaml");
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().code() == Code::kInvalidArgument);
  return p.error().message();
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("policy file: an empty file is the default policy (fcfs, no fair-share)") {
  Result<Policy> p = ParsePolicy("", "p.yaml");
  REQUIRE_MESSAGE(p.has_value(), (p ? "" : p.error().message()));
  Policy expected;
  expected.origin = "p.yaml";
  CHECK(*p == expected);
  CHECK(p->planner.kind == PlannerKind::kFcfs);
  CHECK(p->planner.reservation_depth == 0);
  CHECK(p->priority.fairshare == 0);
  CHECK(p->fairshare.half_life_s == 7 * 86400);
  CHECK(PlannerKindName(p->planner.kind) == "fcfs");
}

TEST_CASE("policy file: the annotated example loads with every section") {
  Result<Policy> p = LoadPolicy(ExamplePath());
  REQUIRE_MESSAGE(p.has_value(), (p ? "" : p.error().message()));
  CHECK(p->fairshare.half_life_s == 7 * 86400);
  CHECK(p->fairshare.gpu_weight == 8);
  CHECK(p->fairshare.mem_weight == 0.25);
  REQUIRE(p->fairshare.groups.size() == 3);
  CHECK(p->fairshare.groups.at("physics").shares == 60);
  CHECK(p->fairshare.groups.at("physics").users.at("alice") == 3);
  CHECK(p->fairshare.groups.at("chemistry").users.at("dave") == 1);
  CHECK(p->priority.fairshare == 10000);
  CHECK(p->priority.age_cap_s == 7 * 86400);
  CHECK(p->limits.default_user.max_running_jobs == 200);
  CHECK(UserLimits(p->limits, "alice").max_gpus == 16);
  CHECK(UserLimits(p->limits, "alice").max_cores == 512);  // from default_user
  CHECK(p->limits.groups.at("chemistry").max_cores == 1024);
  REQUIRE(p->queues.count("gpu"));
  CHECK(p->queues.at("gpu").features == std::vector<std::string>{"gpu"});
  CHECK(p->queues.at("gpu").default_gpus == 1);
  CHECK(p->queues.at("gpu").default_mem_mb == 16384);
  CHECK(p->queues.at("batch").default_h_rt_s == 4 * 3600);
  CHECK(p->default_queue == "batch");
  CHECK(p->planner.kind == PlannerKind::kEasy);
  CHECK(p->planner.reservation_depth == 1);
  CHECK(p->planner.max_jobs_per_pass == 1000);
}

TEST_CASE("policy file: planner presets map to reservation depth") {
  auto planner = [](const std::string& yaml) {
    Result<Policy> p = ParsePolicy(yaml, "p.yaml");
    REQUIRE_MESSAGE(p.has_value(), (p ? "" : p.error().message()));
    return p->planner;
  };
  CHECK(planner("planner: {algorithm: conservative}\n").reservation_depth == kUnlimitedDepth);
  CHECK(planner("planner: {algorithm: easy}\n").reservation_depth == 1);
  CHECK(planner("planner: {algorithm: easy, reservation_depth: 5}\n").reservation_depth == 5);
  CHECK(planner("planner: {default_runtime: 1h}\n").default_runtime_s == 3600);
  CHECK(planner("planner: {max_jobs_per_pass: 50}\n").max_jobs_per_pass == 50);
}

TEST_CASE("policy file: bad input names file, line, column and key") {
  CHECK(Has(ErrorOf("fairshare:\n  half_lif: 7d\n"),
            "p.yaml:2:3: fairshare.half_lif: unknown key 'half_lif'"));
  CHECK(Has(ErrorOf("fairshare:\n  tree:\n    physics: {shares: -3}\n"),
            "p.yaml:3:23: fairshare.tree.physics.shares: '-3' is not a non-negative number"));
  CHECK(Has(ErrorOf("fairshare:\n  tree:\n    physics:\n      users: {alice: lots}\n"),
            "fairshare.tree.physics.users.alice: 'lots' is not a non-negative number"));
  CHECK(Has(ErrorOf("priority: {age: [1, 2]}\n"),
            "p.yaml:1:17: priority.age: must be a single value"));
  CHECK(Has(ErrorOf("priority:\n  age_cap: 0\n"), "p.yaml:2:12: priority.age_cap: must be longer"));
  CHECK(Has(ErrorOf("fairshare: {half_life: soon}\n"),
            "fairshare.half_life: 'soon' is not a duration"));
  CHECK(Has(ErrorOf("limits:\n  default_user: {max_cores: -1}\n"),
            "limits.default_user.max_cores: '-1' is not an integer >= 0"));
  CHECK(Has(ErrorOf("limits:\n  groups:\n    physcs: {max_cores: 4}\n"),
            "p.yaml:3:5: limits.groups.physcs: no group 'physcs' in fairshare.tree"));
  CHECK(Has(ErrorOf("queues:\n  q: {hosts: [a], features: [b]}\n"),
            "p.yaml:2:6: queues.q: give hosts or features, not both"));
  CHECK(Has(ErrorOf("queues:\n  q: {max_h_rt: 1h, default_h_rt: 2h}\n"),
            "default_h_rt is longer than max_h_rt"));
  CHECK(Has(ErrorOf("default_queue: nope\n"), "p.yaml:1:16: default_queue: no queue 'nope'"));
  CHECK(Has(ErrorOf("planner: {algorithm: backfill}\n"), "'backfill' is not one of fcfs, easy"));
  CHECK(Has(ErrorOf("planner: {algorithm: fcfs, reservation_depth: 2}\n"),
            "planner.reservation_depth: applies only to algorithm easy"));
  CHECK(Has(ErrorOf("planner: {max_jobs_per_pass: 0}\n"), "is not an integer >= 1"));
  CHECK(Has(ErrorOf("planner:\n  algorithm: easy\n  algorithm: fcfs\n"),
            "p.yaml:3:3: planner.algorithm: key given twice"));
  CHECK(Has(ErrorOf("fairshare:\n  tree:\n    'bad name': {shares: 1}\n"), "is not a valid name"));
  CHECK(Has(ErrorOf("priority: {favor_small: maybe}\n"), "'maybe' is not true or false"));
  CHECK(Has(ErrorOf("planner: [1\n"), "p.yaml:"));
  CHECK(Has(ErrorOf("planner: [1\n"), "not valid YAML"));
  CHECK(Has(ErrorOf("- a\n- b\n"), "p.yaml:1:1: must be a mapping"));
  // Wrong kinds anywhere are errors, never exceptions or crashes.
  for (const char* yaml :
       {"fairshare: 5\n", "fairshare: {tree: 5}\n", "fairshare: {tree: {a: 5}}\n",
        "fairshare: {tree: {a: {users: 5}}}\n", "fairshare: {tree: {a: {users: [[x]]}}}\n",
        "limits: {users: [1]}\n", "limits: {groups: 3}\n", "queues: [a]\n",
        "queues: {q: {default_resources: 5}}\n", "queues: {q: {hosts: x}}\n",
        "planner: {algorithm: [x]}\n", "default_queue: {a: 1}\n", "priority: 7\n", "? [a]\n: 1\n",
        "fairshare: {tree: {? [a] : 1}}\n", "queues: {q: {priority: -1}}\n"}) {
    CAPTURE(yaml);
    CHECK(Has(ErrorOf(yaml), "p.yaml:"));
  }
  Result<Policy> missing = LoadPolicy("/nonexistent/policy.yaml");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code() == Code::kNotFound);
}

TEST_CASE("policy queues: defaults filled at submit, max h_rt and unknown queues refused") {
  Result<Policy> p = LoadPolicy(ExamplePath());
  REQUIRE(p.has_value());
  JobSpec spec;  // no -q: the default queue, batch
  REQUIRE(ApplyQueue(*p, spec).ok());
  CHECK(spec.queue == "batch");
  CHECK(spec.h_rt_s == 4 * 3600);
  CHECK(spec.request.mem_mb == 2048);
  JobSpec gpu;
  gpu.queue = "gpu";
  gpu.h_rt_s = 3600;
  gpu.request = {4, 0};
  REQUIRE(ApplyQueue(*p, gpu).ok());
  CHECK(gpu.h_rt_s == 3600);  // given, kept
  CHECK(gpu.request.cores == 4);
  CHECK(gpu.request.gpus == 1);
  JobSpec longer;
  longer.queue = "gpu";
  longer.h_rt_s = 3 * 86400;
  Status s = ApplyQueue(*p, longer);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(Has(s.message(), "exceeds queue gpu's max_h_rt"));
  JobSpec nowhere;
  nowhere.queue = "nowhere";
  CHECK(Has(ApplyQueue(*p, nowhere).message(), "no queue 'nowhere' (queues: batch, gpu)"));

  const QueuePolicy& q = p->queues.at("gpu");
  CHECK(QueueHasNode(q, "n1", {"avx512", "gpu"}));
  CHECK_FALSE(QueueHasNode(q, "n1", {"avx512"}));
  QueuePolicy by_name;
  by_name.hosts = {"a", "c"};
  CHECK(QueueHasNode(by_name, "c", {}));
  CHECK_FALSE(QueueHasNode(by_name, "b", {"gpu"}));
}

TEST_CASE("policy limits: per-key fallback, run reasons and the queued limit") {
  LimitsPolicy l;
  l.default_user.max_running_jobs = 4;
  l.default_user.max_queued_jobs = 10;
  l.users["alice"].max_cores = 8;
  l.groups["physics"].max_gpus = 8;
  CHECK(UserLimits(l, "alice").max_running_jobs == 4);
  CHECK(UserLimits(l, "alice").max_cores == 8);
  CHECK_FALSE(UserLimits(l, "bob").max_cores.has_value());

  const Resources job{2, 0, 4};
  LimitCounts four_running{4, 4, 0, 0};
  CHECK(RunLimitReason(l, "bob", "physics", four_running, {}, job) ==
        "user limit: max_running_jobs=4 reached (4 running)");
  CHECK(RunLimitReason(l, "alice", "physics", {1, 7, 0, 0}, {}, job) ==
        "user limit: max_cores=8 (7 in use, job needs 2)");
  CHECK(RunLimitReason(l, "bob", "physics", {1, 1, 0, 0}, {2, 2, 6, 0}, job) ==
        "group physics limit: max_gpus=8 (6 in use, job needs 4)");
  CHECK(RunLimitReason(l, "bob", "chemistry", {1, 1, 0, 0}, {2, 2, 6, 0}, job).empty());

  CHECK(CheckQueuedLimit(l, "bob", "physics", {0, 0, 0, 9}, {}).ok());
  Status full = CheckQueuedLimit(l, "bob", "physics", {0, 0, 0, 10}, {});
  CHECK(full.code() == Code::kFailedPrecondition);
  CHECK(full.message() == "user limit: max_queued_jobs=10 reached (10 queued)");
}
