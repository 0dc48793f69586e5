// What users and admins can ask of the policy through the core: qstat -pri's ranking and
// factors, qsub -p (lower for users, higher for admins and operators), qshare with running
// jobs' usage so far, qstat -j's will-run forecast, roles, private_jobs and the audit log.
#include <doctest/doctest.h>

#include "scheduler/authz.h"
#include "scheduler/policy_queries.h"
#include "scheduler/store.h"
#include "unit/core_driver.h"

using namespace corral;
using namespace corral::testing;

namespace {

JobSpec Timed(int cores, int64_t h_rt_s, int priority = 0) {
  JobSpec spec = Spec(cores);
  spec.h_rt_s = h_rt_s;
  spec.priority = priority;
  return spec;
}

}  // namespace

TEST_CASE("policy queries: qstat -pri ranks waiting jobs with their factors; -p lowers") {
  Cluster c;
  c.config.policy = Engine("priority: {fairshare: 0, age: 0, user: 1000}\nplanner: {algorithm: easy}\n");
  c.AddNode("n", 1);
  JobId busy = c.Submit(Timed(1, 3600));
  c.Tick();
  REQUIRE(c.job(busy).state == JobState::kRunning);
  JobId low = c.Submit(Timed(1, 60, -500));
  JobId normal = c.Submit(Timed(1, 60), User(1001, "bob"));
  c.Tick();
  auto all = std::get<PriorityReply>(c.Client(PriorityRequest{}));
  CHECK(all.policy == "p.yaml");
  CHECK(all.ranked_at == c.now);
  REQUIRE(all.jobs.size() == 2);  // the running job is not listed
  CHECK(all.jobs[0].id == normal);  // submitted later, but not lowered
  CHECK(all.jobs[0].rank == 1);
  CHECK(all.jobs[1].id == low);
  CHECK(all.jobs[0].user == doctest::Approx(1023.0 / 2047));
  CHECK(all.jobs[1].user == doctest::Approx(523.0 / 2047));
  CHECK(all.jobs[1].priority == doctest::Approx(1000 * 523.0 / 2047));
  CHECK(all.jobs[0].explanation.find("user 1000 x 0.50") != std::string::npos);
  auto bobs = std::get<PriorityReply>(c.Client(PriorityRequest{"bob"}));
  REQUIRE(bobs.jobs.size() == 1);
  CHECK(bobs.jobs[0].owner == "bob");
  // Without a policy there is no ranking to show, and the reply says why.
  c.config.policy = nullptr;
  auto none = std::get<PriorityReply>(c.Client(PriorityRequest{}));
  CHECK(none.jobs.empty());
  CHECK(none.policy.find("first come, first served") != std::string::npos);
}

TEST_CASE("policy queries: only admins and operators may raise -p; it is kept with the job") {
  Cluster c;
  c.config.operators = {"carol"};
  c.AddNode("n", 1);
  CHECK(ErrorOf(c.Client(SubmitRequest{Timed(1, 60, 10)})).find("only admins and operators") !=
        std::string::npos);
  CHECK(c.state.jobs.empty());
  JobId raised = c.Submit(Timed(1, 60, 10), User(1002, "carol"));
  CHECK(c.job(raised).spec.priority == 10);
  JobId by_root = c.Submit(Timed(1, 60, 1024), User(0, "root"));
  CHECK(c.job(by_root).spec.priority == 1024);
  JobId lowered = c.Submit(Timed(1, 60, -1023));
  CHECK(c.job(lowered).spec.priority == -1023);
}

TEST_CASE("policy queries: qshare counts running jobs' usage before they end") {
  Cluster c;
  c.config.policy = Engine(
      "fairshare:\n  half_life: 7d\n  tree:\n    physics: {shares: 60, users: {alice: 3, bob: 1}}\n"
      "priority: {fairshare: 1000}\n");
  c.AddNode("n", 2);
  JobId running = c.Submit(Timed(2, 0));
  c.Tick();
  REQUIRE(c.job(running).state == JobState::kRunning);
  c.now += 3600 * 1000;
  c.FromNode(Heartbeat{"n", {{running, 1, 0}}});
  CHECK(c.state.usage.empty());  // nothing has ended yet
  ShareReply shares = Shares(c.state, c.config, c.now);
  CHECK(shares.policy == "p.yaml");
  CHECK(shares.half_life_s == 7 * 24 * 3600);
  REQUIRE(shares.rows.size() == 2);
  // bob has used nothing: served first, factor 1; alice: 2 cores for an hour, decayed.
  CHECK(shares.rows[0].user == "bob");
  CHECK(shares.rows[0].factor == doctest::Approx(1.0));
  CHECK(shares.rows[1].user == "alice");
  CHECK(shares.rows[1].usage == doctest::Approx(7200).epsilon(0.01));
  CHECK(shares.rows[1].usage < 7200);
  CHECK(shares.rows[1].factor == doctest::Approx(0.5));
  CHECK(shares.rows[1].explanation.find("alice has ") != std::string::npos);
  // The same through the request, and on the wire (infinite levels travel as null).
  Message reply = c.Client(ShareRequest{});
  Result<Envelope> back = Decode(Encode(reply));
  REQUIRE(back.has_value());
  CHECK(std::get<ShareReply>(back->message).rows == std::get<ShareReply>(reply).rows);
}

TEST_CASE("policy queries: qstat -j forecasts when a job beyond the reservation starts") {
  Cluster c;
  c.config.policy = Engine("planner: {algorithm: easy}\n");
  c.AddNode("n", 4);
  JobId busy = c.Submit(Timed(4, 3600));
  c.Tick();
  REQUIRE(c.job(busy).state == JobState::kRunning);
  JobId first = c.Submit(Timed(4, 3600));
  JobId second = c.Submit(Timed(4, 3600));
  c.Tick();
  auto query = [&](JobId id) {
    auto reply = std::get<QueryReply>(c.Client(QueryRequest{{id}, "", false}));
    REQUIRE(reply.jobs.size() == 1);
    return reply.jobs[0].reason;
  };
  // EASY reserves only the first; the planner in will-run mode places the second after it.
  CHECK(query(first).find("expected to start in 1h00m on n") != std::string::npos);
  const std::string why = query(second);
  CHECK(why.find("expected to start in 2h00m on n (forecast") != std::string::npos);
  CHECK(Forecast(c.state, c.config, busy, c.now).empty());  // running: not a candidate
}

TEST_CASE("authz: operators act on any job and are audited; private_jobs hides others' jobs") {
  Cluster c;
  c.config.operators = {"carol"};
  c.AddNode("n", 1);
  JobId alices = c.Submit(Spec());
  JobId bobs = c.Submit(Spec(), User(1001, "bob"));
  // bob may not touch alice's job; the refusal changes nothing and is not audited.
  Outcome denied = HandleClient(c.state, CancelRequest{{alices}, "", {}}, User(1001, "bob"),
                                c.config, c.now);
  CHECK(std::get<OutcomeReply>(*denied.reply).outcomes[0].outcome == "denied");
  CHECK(denied.actions.put_jobs.empty());
  CHECK(denied.actions.audit.empty());
  // An anonymous caller may look but not act.
  Outcome anon = HandleClient(c.state, HoldRequest{{alices}, true}, Caller{}, c.config, c.now);
  CHECK(std::get<ErrorReply>(*anon.reply).message.find("needs a known user") != std::string::npos);
  // carol, an operator, may; the action is audited.
  Outcome held = HandleClient(c.state, HoldRequest{{alices}, true}, User(1002, "carol"),
                              c.config, c.now);
  CHECK(std::get<OutcomeReply>(*held.reply).outcomes[0].outcome == "held");
  REQUIRE(held.actions.audit.size() == 1);
  CHECK(held.actions.audit[0].user == "carol");
  CHECK(held.actions.audit[0].action == "hold");
  CHECK(held.actions.audit[0].detail == "job " + std::to_string(alices) + " of alice");
  CHECK(held.actions.Persistent());
  // Acting on one's own job is not an admin action.
  Outcome own = HandleClient(c.state, HoldRequest{{bobs}, true}, User(1001, "bob"), c.config, c.now);
  CHECK(own.actions.audit.empty());
  // private_jobs: bob sees only his job; carol sees both.
  c.config.private_jobs = true;
  auto seen = [&](const Caller& who) {
    return std::get<QueryReply>(*HandleClient(c.state, QueryRequest{}, who, c.config, c.now).reply)
        .jobs.size();
  };
  CHECK(seen(User(1001, "bob")) == 1);
  CHECK(seen(User(1002, "carol")) == 2);
  auto asked = std::get<QueryReply>(
      *HandleClient(c.state, QueryRequest{{alices}, "", false}, User(1001, "bob"), c.config, c.now)
           .reply);
  CHECK(asked.jobs.empty());
  CHECK(asked.missing == std::vector<JobId>{alices});
  CHECK(RoleOf(User(0, "root"), c.config) == Role::kAdmin);
  CHECK(RoleOf(Caller{}, c.config) == Role::kAnonymous);
}

TEST_CASE("store: audit entries are kept with the batch that made them, oldest first") {
  auto store = Store::Open(":memory:");
  REQUIRE(store.has_value());
  Actions a;
  a.audit.push_back({1000, "root", "reload", "p.yaml: planner easy"});
  a.audit.push_back({2000, "carol", "node_disable", "n1"});
  REQUIRE((*store)->Apply(a).ok());
  Actions b;
  b.audit.push_back({3000, "root", "node_enable", "n1"});
  REQUIRE((*store)->Apply(b).ok());
  auto all = (*store)->ReadAudit(100);
  REQUIRE(all.has_value());
  REQUIRE(all->size() == 3);
  CHECK((*all)[0] == AuditEntry{1000, "root", "reload", "p.yaml: planner easy"});
  CHECK((*all)[2].action == "node_enable");
  auto last = (*store)->ReadAudit(2);
  REQUIRE(last.has_value());
  REQUIRE(last->size() == 2);
  CHECK((*last)[0].user == "carol");
}
