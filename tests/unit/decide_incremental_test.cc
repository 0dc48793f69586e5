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

#include "scheduler/policy_queries.h"
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
  std::vector<std::pair<UnitKey, std::string>> starts;  // planner placements (policy)
  bool operator==(const Decided&) const = default;
};

Decided Summary(const Actions& a) {
  Decided d{a.put_jobs, a.put_nodes, {}, a.waiting, {}};
  for (const Order& o : a.orders) d.orders.push_back(o.node + " " + Encode(o.message));
  if (a.pass) {
    for (const Placement& p : a.pass->starts) {
      d.starts.push_back({a.pass->units.at(static_cast<size_t>(p.job - 1)), p.node});
    }
  }
  return d;
}

// The units a policy pass handed its planner, in rank order, with their priorities and
// factors (compared bit for bit).
std::vector<std::tuple<UnitKey, double, double, double, double, double, double>> Visited(
    const Actions& a) {
  std::vector<std::tuple<UnitKey, double, double, double, double, double, double>> out;
  if (!a.pass) return out;
  for (size_t i = 0; i < a.pass->plan.pending.size(); ++i) {
    const RankedJob& r = a.pass->ranked.at(i);
    const PriorityFactors& f = r.factors;
    out.emplace_back(a.pass->units.at(static_cast<size_t>(r.id - 1)), r.priority, f.fairshare,
                     f.age, f.job_size, f.user, f.queue);
  }
  return out;
}

// The multifactor prioritizer, but without the promise that lets a pass rank only the
// best of each rank class (ScorerByClass): a pass under it ranks the whole queue, as every
// pass did before ranked_queue.h.
class RanksAll final : public Prioritizer {
 public:
  explicit RanksAll(const Policy& policy) : inner_(MakePrioritizer(policy)) {}
  std::vector<RankedJob> Rank(const PrioritySnapshot& s, TimeMs now) const override {
    return inner_->Rank(s, now);
  }
  std::vector<RankedJob> RankBest(const PrioritySnapshot& s, TimeMs now, size_t best) const override {
    return inner_->RankBest(s, now, best);
  }

 private:
  std::unique_ptr<Prioritizer> inner_;
};

std::shared_ptr<const PolicyEngine> RankingAll(const PolicyEngine& engine) {
  auto all = std::make_shared<PolicyEngine>(engine.policy);
  all->prioritizer = std::make_unique<RanksAll>(engine.policy);
  return all;
}

// qstat -pri's whole ranking, comparable.
std::vector<std::tuple<JobId, TaskId, int, double>> Ranking(const ClusterState& state,
                                                            const CoreConfig& config) {
  std::vector<std::tuple<JobId, TaskId, int, double>> out;
  for (const JobPriority& p : Priorities(state, PriorityRequest{}, User(0, "root"), config).jobs) {
    out.emplace_back(p.id, p.task, p.rank, p.priority);
  }
  return out;
}

// The rank classes Install keeps (ClusterState::queued_by_class, queued_walked), comparable.
std::vector<std::string> Classes(const ClusterState& state) {
  std::vector<std::string> out;
  for (const auto& [k, members] : state.queued_by_class) {
    std::string line = k.owner + "/" + k.project + "/" + k.queue + "/" + std::to_string(k.priority) +
                       "/" + std::to_string(k.request.cores) + "/" + std::to_string(k.request.mem_mb) +
                       "/" + std::to_string(k.request.gpus) + ":";
    for (const auto& [t, id] : members) line += " " + std::to_string(t) + "#" + std::to_string(id);
    out.push_back(line);
  }
  for (JobId id : state.queued_walked) out.push_back("walked " + std::to_string(id));
  return out;
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
  int ranked_classes = 0;  // policy passes that ranked only the best of each class
  int left_unranked = 0;   // queued units those passes did not rank
};

// One random run of `steps` events under `policy` (null: first come, first served).
// With `varied`, submits also vary what ranks them: memory, qsub -p (positive from root),
// project (-P) and queue.
void Run(uint32_t seed, std::shared_ptr<const PolicyEngine> policy, int steps, Counts& counts,
         bool varied = false) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  Cluster c;
  c.config.policy = std::move(policy);
  const std::vector<std::string> names = {"n1", "n2", "n3", "n4"};
  std::set<std::string> silent;  // nodes that stopped sending heartbeats
  for (const std::string& n : names) c.AddNode(n, 2 + pick(4));
  std::vector<JobId> submitted;

  // The same policy ranking the whole queue every pass (no rank classes).
  CoreConfig all_config = c.config;
  if (c.config.policy) all_config.policy = RankingAll(*c.config.policy);
  auto pass = [&]() {
    ClusterState scratch = c.state;
    Reindex(scratch);  // derived data rebuilt: no settled pass to skip from
    CHECK_MESSAGE(Classes(scratch) == Classes(c.state), "seed " << seed << " at " << c.now);
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
    if (c.config.policy && inc.waiting) {
      // Ranking only the best of each rank class decides exactly what ranking the whole
      // queue decides: same records and orders, the same units handed to the planner in
      // the same order with bit-identical priorities, and qstat -pri's same ranking.
      ClusterState whole = scratch;
      const Actions all = Decide(whole, all_config, c.now);
      CHECK_MESSAGE(Summary(inc) == Summary(all), "seed " << seed << " at " << c.now);
      CHECK_MESSAGE(Visited(inc) == Visited(all), "seed " << seed << " at " << c.now);
      REQUIRE(static_cast<bool>(inc.pass) == static_cast<bool>(all.pass));
    }
    if (c.config.policy && inc.waiting && inc.pass) {  // a pass that ranked (a node had room)
      ClusterState whole = scratch;
      const Actions all = Decide(whole, all_config, c.now);
      counts.ranked_classes += inc.pass->scorer ? 1 : 0;
      counts.left_unranked += static_cast<int>(all.pass->units.size() - inc.pass->units.size());
      Install(whole, all);
      ClusterState after = c.state;
      Install(after, inc);
      // qstat -pri: the same jobs in the same order with the same priorities, but for jobs
      // that were not waiting when the pass ran (requeued by it): a pass that ranked all
      // never saw them, the other scores them at query time with the pass's factors.
      std::vector<std::tuple<JobId, TaskId, double>> ranked_all, ranked_by_class;
      for (const auto& [id, task, rank, priority] : Ranking(whole, all_config)) {
        ranked_all.emplace_back(id, task, priority);
      }
      for (const auto& [id, task, rank, priority] : Ranking(after, c.config)) {
        const Job& before = c.state.jobs.at(id);
        if (task == 0 && before.state != JobState::kQueued) continue;
        ranked_by_class.emplace_back(id, task, priority);
      }
      CHECK_MESSAGE(ranked_by_class == ranked_all, "seed " << seed << " at " << c.now);
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
      uint32_t user = static_cast<uint32_t>(pick(3));
      Caller caller = User(1000 + user, "u" + std::to_string(user));
      if (varied) {
        spec.request.mem_mb = 256 * pick(3);
        spec.priority = pick(3) == 0 ? -pick(1024) : 0;
        if (pick(8) == 0) {
          spec.priority = 1 + pick(1024);
          caller = User(0, "root");
        }
        spec.project = std::vector<std::string>{"", "g", "h"}[static_cast<size_t>(pick(3))];
        spec.queue = std::vector<std::string>{"", "q1", "q2"}[static_cast<size_t>(pick(3))];
      }
      Message m = c.Client(SubmitRequest{spec}, caller);
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

TEST_CASE("decide incremental: ranking the best of each rank class decides what ranking all does") {
  // Every factor weighs, accounts differ by project (-P), usage is charged as runs end,
  // ages reach their cap within a run (ties among capped jobs), and the planner visits few
  // jobs, so which jobs are the best matters in every pass. "mostly tied": only qsub -p
  // weighs, and most jobs give none: the queue order decides among them. Each pass is also decided by the same policy
  // ranking the whole queue (RanksAll) and must agree bit for bit (Run's pass()).
  const std::vector<std::pair<std::string, std::string>> policies = {
      {"every factor",
       "fairshare:\n  half_life: 1h\n  tree:\n    g: {shares: 2, users: {u0: 1, u1: 3, u2: 1}}\n"
       "    h: {shares: 1, users: [u0, u1]}\n"
       "priority: {fairshare: 1000, age: 100, age_cap: 10s, job_size: 10, user: 50, queue: 20}\n"
       "queues:\n  q1: {priority: 1}\n  q2: {priority: 5}\n"
       "planner: {algorithm: easy, max_jobs_per_pass: 3, default_runtime: 1h}\n"},
      {"favor small, fair-share only",
       "fairshare:\n  tree:\n    g: {shares: 1, users: [u0, u1, u2]}\n    h: {shares: 3, users: [u1]}\n"
       "priority: {fairshare: 1000, age: 0, job_size: 10, favor_small: true, user: 0}\n"
       "queues:\n  q1: {priority: 1}\n  q2: {priority: 5}\n"
       "planner: {algorithm: conservative, max_jobs_per_pass: 2}\n"},
      {"mostly tied",
       "priority: {fairshare: 0, age: 0, user: 1}\n"
       "queues:\n  q1: {priority: 1}\n  q2: {priority: 5}\n"
       "planner: {algorithm: easy, max_jobs_per_pass: 2}\n"},
  };
  for (const auto& policy : policies) {
    const std::string& name = policy.first;  // not a structured binding: see above
    const std::string& yaml = policy.second;
    CAPTURE(name);
    Counts counts;
    for (uint32_t seed = 1; seed <= 40; ++seed) Run(seed, Engine(yaml), 120, counts, true);
    MESSAGE(name << ": " << counts.ranked_classes << " passes ranked by class, leaving "
                 << counts.left_unranked << " queued units unranked; " << counts.starts
                 << " starts");
    // Passes ranked by class, left jobs unranked, and started jobs.
    CHECK(counts.ranked_classes > counts.passes / 4);
    CHECK(counts.left_unranked > 1000);
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
