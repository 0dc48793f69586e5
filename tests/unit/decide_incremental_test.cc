// The incremental scheduling pass against a pass from scratch. Decide() skips a pass when
// the last one found nothing to do and nothing it reads has changed (ClusterState::settled,
// decide.cc); here, over many seeded random sequences of submits, exits, cancels, holds,
// node losses and clock advances, every pass is also run on a copy of the state whose
// derived data was rebuilt (Reindex: no settled pass, indexes from the records), and the
// two must decide the same: same records, same orders, same waiting reasons. What Install
// keeps of the running units per node (ClusterState::use_on) is checked against a count
// from their records after every step.
#include <doctest/doctest.h>

#include <random>

#include "unit/core_driver.h"

using namespace corral;
using namespace corral::testing;

namespace {

// What a pass decided, comparable: its records, its orders on the wire, why jobs wait.
struct Decided {
  std::vector<Job> jobs;
  std::vector<Node> nodes;
  std::vector<std::string> orders;
  std::optional<std::map<JobId, std::string>> waiting;
  std::vector<std::pair<JobId, std::string>> starts;  // planner placements (policy)
  bool operator==(const Decided&) const = default;
};

Decided Summary(const Actions& a) {
  Decided d{a.put_jobs, a.put_nodes, {}, a.waiting, {}};
  for (const Order& o : a.orders) d.orders.push_back(o.node + " " + Encode(o.message));
  if (a.pass) {
    for (const Placement& p : a.pass->starts) d.starts.push_back({p.job, p.node});
  }
  return d;
}

bool DoesNothing(const Actions& a) {
  return a.put_jobs.empty() && a.put_nodes.empty() && a.orders.empty() && a.charges.empty();
}

// ClusterState::use_on, kept by Install, against a count from the running units' records.
void CheckUse(const ClusterState& state, uint32_t seed) {
  std::map<std::string, NodeUse> expected;
  for (const UnitKey& key : state.running) {
    const Job& unit = *FindUnit(state, key);
    NodeUse& use = expected[unit.node];
    use.held += SpecOf(state, unit).request;
    for (int core : unit.alloc_cores) {
      if (static_cast<size_t>(core) >= use.core_users.size()) use.core_users.resize(core + 1, 0);
      ++use.core_users[core];
    }
    for (int gpu : unit.alloc_gpus) ++use.gpu_users[gpu];
  }
  auto trimmed = [](std::vector<int> v) {
    while (!v.empty() && v.back() == 0) v.pop_back();
    return v;
  };
  std::set<std::string> nodes;
  for (const auto& [name, _] : expected) nodes.insert(name);
  for (const auto& [name, _] : state.use_on) nodes.insert(name);
  for (const std::string& name : nodes) {
    const auto e = expected.find(name);
    const auto k = state.use_on.find(name);
    const NodeUse want = e == expected.end() ? NodeUse{} : e->second;
    const NodeUse have = k == state.use_on.end() ? NodeUse{} : k->second;
    CAPTURE(seed);
    CAPTURE(name);
    CHECK(have.held == want.held);
    CHECK(trimmed(have.core_users) == trimmed(want.core_users));
    CHECK(have.gpu_users == want.gpu_users);
  }
}

struct Counts {
  int passes = 0;
  int skipped = 0;
  int starts = 0;
};

// One random run of `steps` events under `policy` (null: first come, first served).
void Run(uint32_t seed, std::shared_ptr<const PolicyEngine> policy, int steps, Counts& counts) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  Cluster c;
  c.config.policy = std::move(policy);
  const std::vector<std::string> names = {"n1", "n2", "n3", "n4"};
  std::set<std::string> silent;  // nodes that stopped sending heartbeats
  for (const std::string& n : names) c.AddNode(n, 2 + pick(4));
  std::vector<JobId> submitted;

  auto pass = [&]() {
    ClusterState scratch = c.state;
    Reindex(scratch);  // derived data rebuilt: no settled pass to skip from
    const Actions full = Decide(scratch, c.config, c.now);
    const Actions inc = Decide(c.state, c.config, c.now);
    ++counts.passes;
    if (!inc.waiting) {
      // Skipped: the pass from scratch must find nothing to do either, and (first come,
      // first served, where reasons do not depend on the clock) give the same reasons.
      ++counts.skipped;
      CHECK_MESSAGE(DoesNothing(full), "seed " << seed << " at " << c.now);
      if (!c.config.policy) CHECK(full.waiting == c.state.waiting);
    } else {
      CHECK_MESSAGE(Summary(inc) == Summary(full), "seed " << seed << " at " << c.now);
    }
    counts.starts += static_cast<int>(inc.orders.size());
    Install(c.state, inc);
    CheckUse(c.state, seed);
  };

  for (int step = 0; step < steps; ++step) {
    const int what = pick(20);
    if (what < 6) {  // submit: plain or array, sometimes held or after another job
      JobSpec spec = Spec(1 + pick(3));
      spec.h_rt_s = 60 * (1 + pick(30));
      if (pick(5) == 0) spec.array = TaskRange{1, 1 + pick(6), 1};
      if (pick(8) == 0) spec.hold = true;
      if (!submitted.empty() && pick(6) == 0) {
        spec.after_ok = {submitted[static_cast<size_t>(pick(static_cast<int>(submitted.size())))]};
      }
      const uint32_t user = static_cast<uint32_t>(pick(3));
      Message m = c.Client(SubmitRequest{spec}, User(1000 + user, "u" + std::to_string(user)));
      if (auto* r = std::get_if<SubmitReply>(&m)) submitted.push_back(r->id);
    } else if (what < 10 && !c.state.running.empty()) {  // a running unit ends
      auto it = c.state.running.begin();
      std::advance(it, pick(static_cast<int>(c.state.running.size())));
      const Job& unit = *FindUnit(c.state, *it);
      c.FromNode(JobExit{unit.node, unit.id, unit.attempt, pick(4) == 0 ? 1 : 0, 0,
                         unit.start_time, c.now, 0, 0, "", "", unit.task});
    } else if (what == 10 && !submitted.empty()) {  // qdel
      const JobId id = submitted[static_cast<size_t>(pick(static_cast<int>(submitted.size())))];
      c.Client(CancelRequest{{id}, "", std::nullopt}, User(0, "root"));
    } else if (what == 11 && !submitted.empty()) {  // qhold / qrls
      const JobId id = submitted[static_cast<size_t>(pick(static_cast<int>(submitted.size())))];
      const JobState s = c.state.jobs.at(id).state;
      if (s == JobState::kQueued || s == JobState::kHeld) {
        c.Client(HoldRequest{{id}, s == JobState::kQueued}, User(0, "root"));
      }
    } else if (what == 12) {  // a node goes silent, or comes back
      const std::string& n = names[static_cast<size_t>(pick(4))];
      if (silent.count(n)) {
        silent.erase(n);
        c.AddNode(n, 2 + pick(4));
      } else {
        silent.insert(n);
      }
    } else if (what < 16) {  // time passes; live nodes beat
      c.now += 1 + pick(1500);
      for (const std::string& n : names) {
        if (!silent.count(n)) c.FromNode(Heartbeat{n, {}, 0.5});
      }
    }
    pass();
    if (pick(3) == 0) pass();  // a second pass with nothing changed in between
  }
}

}  // namespace

TEST_CASE("decide incremental: skipped passes decide what a pass from scratch decides") {
  const std::vector<std::pair<std::string, std::string>> policies = {
      {"fcfs (built-in)", ""},
      {"easy", "fairshare:\n  tree:\n    g:\n      shares: 1\n      users: [u0, u1, u2]\n"
               "priority: {fairshare: 1000, age: 100, age_cap: 1h, job_size: 10}\n"
               "planner: {algorithm: easy, max_jobs_per_pass: 4, default_runtime: 1h}\n"},
      {"conservative", "planner: {algorithm: conservative, max_jobs_per_pass: 3}\n"},
      {"fcfs planner", "planner: {algorithm: fcfs}\n"},
  };
  for (const auto& policy : policies) {
    // Not a structured binding: clang 14 (the sanitizer build) cannot capture one.
    const std::string& name = policy.first;
    const std::string& yaml = policy.second;
    CAPTURE(name);
    const std::shared_ptr<const PolicyEngine> engine = yaml.empty() ? nullptr : Engine(yaml);
    Counts counts;
    for (uint32_t seed = 1; seed <= 40; ++seed) Run(seed, engine, 120, counts);
    // The runs exercise both kinds of pass, and start jobs.
    MESSAGE(name << ": " << counts.skipped << " of " << counts.passes << " passes skipped, "
                 << counts.starts << " starts");
    CHECK(counts.skipped > counts.passes / 20);
    CHECK(counts.skipped < counts.passes);
    CHECK(counts.starts > 100);
  }
}

TEST_CASE("decide incremental: a change of policy or a silent node ends the skipping") {
  Cluster c;
  c.AddNode("n", 1);
  c.Submit(Spec());
  c.Submit(Spec());
  c.Tick();  // one starts, one waits: nothing more to do
  Actions a = Decide(c.state, c.config, c.now);
  REQUIRE(a.settled);  // found nothing to do
  Install(c.state, a);
  CHECK_FALSE(Decide(c.state, c.config, c.now).waiting);  // skipped
  // A policy now: the pass runs (it ranks and plans).
  CoreConfig with_policy = c.config;
  with_policy.policy = Engine("planner: {algorithm: easy}\n");
  CHECK(Decide(c.state, with_policy, c.now).waiting);
  // The node falls silent past the timeout: the pass runs and declares it unreachable.
  c.now += c.config.node_timeout_ms + 1;
  Actions lost = Decide(c.state, c.config, c.now);
  REQUIRE(lost.put_nodes.size() == 1);
  CHECK(lost.put_nodes[0].state == NodeState::kUnreachable);
}
