// The pure core on small hand-built clusters: submit checks, first come first served,
// exits, cancel, hold, node loss and requeue, reconciliation and fencing.
#include <doctest/doctest.h>

#include "unit/core_driver.h"

using namespace corral;
using namespace corral::testing;

TEST_CASE("core: submit assigns increasing ids and records the kernel's user") {
  Cluster c;
  JobId a = c.Submit(Spec());
  JobId b = c.Submit(Spec(), User(1001, "bob"));
  CHECK(a == 1);
  CHECK(b == 2);
  CHECK(c.job(b).owner == "bob");
  CHECK(c.job(b).uid == 1001);
  CHECK(c.job(a).state == JobState::kQueued);
  CHECK(c.job(a).submit_time == c.now);
  JobSpec held = Spec();
  held.hold = true;
  CHECK(c.job(c.Submit(held)).state == JobState::kHeld);
}

TEST_CASE("core: a request no node could ever hold is refused with the reason") {
  Cluster c;
  c.AddNode("node1", 4, 8192);
  c.AddNode("node2", 2, 16384);
  CHECK(ErrorOf(c.Client(SubmitRequest{Spec(8)})) == "no node has 8 cores; largest has 4");
  CHECK(ErrorOf(c.Client(SubmitRequest{Spec(1, 20000)})).find("largest has 16384") !=
        std::string::npos);
  CHECK(ErrorOf(c.Client(SubmitRequest{Spec(4, 16384)})) ==
        "no node has all of 4 cores, 16384 MiB of memory, 0 GPUs and the consumables "
        "requested at once");
  CHECK(c.state.jobs.empty());
  CHECK(c.state.next_job_id == 1);  // nothing changed
}

TEST_CASE("core: unauthenticated callers may look but not submit or cancel") {
  Cluster c;
  Caller anonymous;
  CHECK(ErrorOf(c.Client(SubmitRequest{Spec()}, anonymous)).find("ipc://") != std::string::npos);
  JobId id = c.Submit(Spec());
  CHECK(std::holds_alternative<ErrorReply>(c.Client(CancelRequest{{id}, ""}, anonymous)));
  CHECK(std::holds_alternative<QueryReply>(c.Client(QueryRequest{{}, "", false}, anonymous)));
}

TEST_CASE("core: invalid specs are refused") {
  Cluster c;
  JobSpec s = Spec();
  s.cwd = "relative";
  CHECK(ErrorOf(c.Client(SubmitRequest{s})).find("absolute") != std::string::npos);
  s = Spec(0);
  CHECK(ErrorOf(c.Client(SubmitRequest{s})).find("at least 1 core") != std::string::npos);
  s = Spec();
  s.script.clear();
  CHECK(ErrorOf(c.Client(SubmitRequest{s})).find("script is empty") != std::string::npos);
}

TEST_CASE("core: first come, first served, on the first node where the job fits") {
  Cluster c;
  c.AddNode("node1", 2);
  c.AddNode("node2", 4);
  JobId j1 = c.Submit(Spec(2));
  JobId j2 = c.Submit(Spec(3));
  JobId j3 = c.Submit(Spec(2));  // would fit nowhere after j1, j2
  JobId j4 = c.Submit(Spec(1));  // would fit node2, but FCFS: j3 blocks it
  c.Tick();
  CHECK(c.job(j1).node == "node1");
  CHECK(c.job(j2).node == "node2");
  CHECK(c.job(j1).attempt == 1);
  CHECK(c.job(j3).state == JobState::kQueued);
  CHECK(c.job(j4).state == JobState::kQueued);
  auto orders = c.TakeOrders();
  REQUIRE(orders.size() == 2);
  CHECK(orders[0].node == "node1");
  CHECK(std::get<StartJob>(orders[0].message).job.id == j1);
  CHECK(std::get<StartJob>(orders[0].message).job.spec.script.size() > 0);

  // j1 ends: j3 takes node1, j4 still waits for room (node1 full, node2 has 1 free).
  c.FromNode(JobExit{"node1", j1, 1, 0, 0, c.now, c.now + 5, 10, 100, ""});
  CHECK(c.job(j1).state == JobState::kCompleted);
  CHECK(c.job(j1).exit_code == 0);
  c.Tick();
  CHECK(c.job(j3).node == "node1");
  CHECK(c.job(j4).node == "node2");
}

TEST_CASE("core: memory is matched as well as cores") {
  Cluster c;
  c.AddNode("small", 8, 1000);
  c.AddNode("big", 8, 64000);
  JobId j = c.Submit(Spec(1, 32000));
  c.Tick();
  CHECK(c.job(j).node == "big");
}

TEST_CASE("core: exits, failures and start failures") {
  Cluster c;
  c.AddNode("n", 4);
  JobId ok = c.Submit(Spec());
  JobId bad = c.Submit(Spec());
  JobId sig = c.Submit(Spec());
  JobId nostart = c.Submit(Spec());
  c.Tick();
  auto exit = [&](JobId id, int code, int signal, std::string failure = "") {
    auto reply = c.FromNode(JobExit{"n", id, 1, code, signal, 1, 2, 3, 4, failure});
    REQUIRE(reply);
    CHECK(std::get<ExitAck>(*reply).job_id == id);
  };
  exit(ok, 0, 0);
  exit(bad, 3, 0);
  exit(sig, 137, 9);
  exit(nostart, 1, 0, "cannot chdir to /nope: No such file or directory");
  CHECK(c.job(ok).state == JobState::kCompleted);
  CHECK(c.job(bad).state == JobState::kFailed);
  CHECK(c.job(bad).reason == "exited with code 3");
  CHECK(c.job(ok).reason.empty());
  CHECK(c.job(ok).attempts.at(0).exit_reason == "exited with code 0");
  CHECK(c.job(sig).reason == "killed by signal 9");
  CHECK(c.job(sig).exit_code == 137);
  CHECK(c.job(nostart).reason.find("cannot chdir") != std::string::npos);
  CHECK(c.job(ok).cpu_ms == 3);
  CHECK(c.job(ok).max_rss_kb == 4);
}

TEST_CASE("core: a duplicate or stale exit is acknowledged and changes nothing") {
  Cluster c;
  c.AddNode("n", 1);
  JobId id = c.Submit(Spec());
  c.Tick();
  c.FromNode(JobExit{"n", id, 1, 0, 0, 1, 2, 0, 0, ""});
  Job done = c.job(id);
  auto again = c.FromNode(JobExit{"n", id, 1, 5, 0, 1, 9, 0, 0, ""});
  REQUIRE(again);
  CHECK(std::holds_alternative<ExitAck>(*again));
  CHECK(c.job(id) == done);  // recorded once
  auto stale = c.FromNode(JobExit{"n", 999, 1, 0, 0, 1, 2, 0, 0, ""});
  CHECK(std::holds_alternative<ExitAck>(*stale));
}

TEST_CASE("core: qdel of queued, held and running jobs; others' jobs are denied") {
  Cluster c;
  c.AddNode("n", 1);
  JobId run = c.Submit(Spec());
  JobId wait = c.Submit(Spec());
  c.Tick();
  c.TakeOrders();
  auto reply = std::get<OutcomeReply>(c.Client(CancelRequest{{run, wait, 77}, ""}));
  REQUIRE(reply.outcomes.size() == 3);
  CHECK(reply.outcomes[0].outcome == "registered");
  CHECK(reply.outcomes[1].outcome == "deleted");
  CHECK(reply.outcomes[2].outcome == "not_found");
  CHECK(c.job(wait).state == JobState::kCancelled);
  // The running job keeps its resources until the node reports the kill.
  CHECK(c.job(run).state == JobState::kRunning);
  CHECK(c.job(run).cancel_requested);
  auto orders = c.TakeOrders();
  REQUIRE(orders.size() == 1);
  CHECK(std::get<KillJob>(orders[0].message).job_id == run);
  c.FromNode(JobExit{"n", run, 1, 137, 9, 1, 2, 0, 0, ""});
  CHECK(c.job(run).state == JobState::kCancelled);
  CHECK(c.job(run).exit_code == 137);
  CHECK(c.job(run).reason == "cancelled by alice");
  CHECK(c.job(run).attempts.at(0).exit_reason == "cancelled by alice");

  JobId other = c.Submit(Spec(), User(1001, "bob"));
  auto denied = std::get<OutcomeReply>(c.Client(CancelRequest{{other}, ""}));
  CHECK(denied.outcomes[0].outcome == "denied");
  CHECK(c.job(other).state == JobState::kQueued);
  Caller root = User(0, "root");
  auto by_root = std::get<OutcomeReply>(c.Client(CancelRequest{{other}, ""}, root));
  CHECK(by_root.outcomes[0].outcome == "deleted");
  // A second qdel of a gone job: not_found.
  auto twice = std::get<OutcomeReply>(c.Client(CancelRequest{{other}, ""}, root));
  CHECK(twice.outcomes[0].outcome == "not_found");
}

TEST_CASE("core: qdel -u cancels only that user's active jobs") {
  Cluster c;
  JobId a1 = c.Submit(Spec());
  JobId b1 = c.Submit(Spec(), User(1001, "bob"));
  JobId a2 = c.Submit(Spec());
  auto reply = std::get<OutcomeReply>(c.Client(CancelRequest{{}, "alice"}));
  REQUIRE(reply.outcomes.size() == 2);
  CHECK(reply.outcomes[0].id == a1);
  CHECK(reply.outcomes[1].id == a2);
  CHECK(c.job(b1).state == JobState::kQueued);
}

TEST_CASE("core: hold and release") {
  Cluster c;
  JobId id = c.Submit(Spec());
  auto held = std::get<OutcomeReply>(c.Client(HoldRequest{{id}, true}));
  CHECK(held.outcomes[0].outcome == "held");
  c.AddNode("n", 4);
  c.Tick();
  CHECK(c.job(id).state == JobState::kHeld);  // a held job does not start
  CHECK(std::get<OutcomeReply>(c.Client(HoldRequest{{id}, true})).outcomes[0].outcome ==
        "already");
  CHECK(std::get<OutcomeReply>(c.Client(HoldRequest{{id}, false})).outcomes[0].outcome ==
        "released");
  c.Tick();
  CHECK(c.job(id).state == JobState::kRunning);
  CHECK(std::get<OutcomeReply>(c.Client(HoldRequest{{id}, true})).outcomes[0].outcome ==
        "invalid");
}

TEST_CASE("core: a silent node is declared unreachable and its jobs requeued elsewhere") {
  Cluster c;
  c.AddNode("node1", 1);
  JobId id = c.Submit(Spec());
  c.Tick();
  CHECK(c.job(id).node == "node1");
  c.AddNode("node2", 1);
  c.now += 2000;
  c.FromNode(Heartbeat{"node2", {}});
  c.FromNode(Heartbeat{"node1", {{id, 1}}});
  c.Tick();
  CHECK(c.state.nodes.at("node1").state == NodeState::kUp);
  c.now += 2500;  // node1 silent for 2.5 s, node2 speaks
  c.FromNode(Heartbeat{"node2", {}});
  c.now += 1000;  // node1 silent for 3.5 s > 3 s timeout
  c.Tick();
  CHECK(c.state.nodes.at("node1").state == NodeState::kUnreachable);
  CHECK(c.job(id).state == JobState::kQueued);
  CHECK(c.job(id).reason.find("unreachable") != std::string::npos);
  c.Tick();
  CHECK(c.job(id).node == "node2");
  CHECK(c.job(id).attempt == 2);
  REQUIRE(c.job(id).attempts.size() == 2);
  CHECK(c.job(id).attempts[0].node == "node1");
  CHECK(c.job(id).attempts[0].exit_reason == "node failed: node1 became unreachable");
  CHECK(c.job(id).attempts[0].end_time == c.now);
  CHECK(c.job(id).attempts[1] == Attempt{2, "node2", c.now, 0, ""});
  // The per-node index follows the job (heartbeats reconcile only their node's jobs).
  CHECK(c.state.running_on["node1"].empty());
  CHECK(c.state.running_on["node2"] == std::set<UnitKey>{{id, 0}});

  // node1 comes back still running attempt 1: it must register again, then the stale
  // attempt is killed and its late exit ignored.
  c.TakeOrders();
  auto reply = c.FromNode(Heartbeat{"node1", {{id, 1}}});
  REQUIRE(reply);
  CHECK(std::get<ErrorReply>(*reply).code == Code::kNotFound);
  c.FromNode(RegisterNode{"node1", {1, 4096}, {{id, 1}}});
  auto orders = c.TakeOrders();
  REQUIRE(orders.size() == 1);
  CHECK(orders[0].node == "node1");
  CHECK(std::get<KillJob>(orders[0].message).attempt == 1);
  c.FromNode(JobExit{"node1", id, 1, 137, 9, 1, 2, 0, 0, ""});
  CHECK(c.job(id).state == JobState::kRunning);
  c.FromNode(JobExit{"node2", id, 2, 0, 0, 1, 2, 0, 0, ""});
  CHECK(c.job(id).state == JobState::kCompleted);
  CHECK(c.job(id).attempts.size() == 2);
  CHECK(c.job(id).attempts[1].exit_reason == "exited with code 0");
}

TEST_CASE("core: -r n jobs fail with 'node failed'; max_attempts bounds requeues") {
  Cluster c;
  c.config.max_attempts = 2;
  c.AddNode("n", 2);
  JobSpec once = Spec();
  once.rerunnable = false;
  JobId a = c.Submit(once);
  JobId b = c.Submit(Spec());
  c.Tick();
  // The execd restarts without either job (authoritative registration).
  c.FromNode(RegisterNode{"n", {2, 4096}, {}});
  CHECK(c.job(a).state == JobState::kFailed);
  CHECK(c.job(a).reason == "node failed");
  CHECK(c.job(a).end_time == c.now);
  CHECK(c.job(b).state == JobState::kQueued);
  c.Tick();
  CHECK(c.job(b).attempt == 2);
  c.FromNode(RegisterNode{"n", {2, 4096}, {}});
  CHECK(c.job(b).state == JobState::kFailed);
  CHECK(c.job(b).reason == "node failed; 2 of 2 attempts used");
  REQUIRE(c.job(b).attempts.size() == 2);
  CHECK(c.job(b).attempts[1].exit_reason.find("restarted without the job") != std::string::npos);
  // A job's own max_attempts overrides the scheduler's.
  JobSpec more = Spec();
  more.max_attempts = 5;
  JobId d = c.Submit(more);
  for (int i = 0; i < 3; ++i) {
    c.Tick();
    c.FromNode(RegisterNode{"n", {2, 4096}, {}});
  }
  CHECK(c.job(d).state == JobState::kQueued);
  CHECK(c.job(d).attempt == 3);
}

TEST_CASE("core: qmod -d drains a node (admins and operators only), and a re-registration keeps it drained") {
  Cluster c;
  c.AddNode("a", 1);
  c.AddNode("b", 1);
  JobId running = c.Submit(Spec());
  c.Tick();
  CHECK(c.job(running).node == "a");
  CHECK(ErrorOf(c.Client(NodeAdminRequest{"a", false})).find("may not change nodes") != std::string::npos);
  CHECK(ErrorOf(c.Client(NodeAdminRequest{"zz", false}, User(0, "root"))).find("zz") !=
        std::string::npos);
  auto reply = std::get<NodesReply>(c.Client(NodeAdminRequest{"a", false}, User(0, "root")));
  CHECK_FALSE(reply.nodes.at(0).enabled);
  CHECK(NodeDisplayState(c.state.nodes.at("a"), 1) == "draining");
  CHECK(NodeDisplayState(c.state.nodes.at("a"), 0) == "down");
  CHECK(c.job(running).state == JobState::kRunning);  // running jobs finish
  c.FromNode(RegisterNode{"a", {1, 4096}, {{running, 1}}});
  CHECK_FALSE(c.state.nodes.at("a").enabled);
  c.FromNode(JobExit{"a", running, 1, 0, 0, 1, 2, 0, 0, ""});
  JobId next = c.Submit(Spec());
  c.Tick();
  CHECK(c.job(next).node == "b");  // no new work on a drained node
  c.Client(NodeAdminRequest{"a", true}, User(0, "root"));
  JobId third = c.Submit(Spec());
  c.Tick();
  CHECK(c.job(third).node == "a");
}

TEST_CASE("core: heartbeats re-send start orders that may be in flight; registration requeues") {
  Cluster c;
  c.AddNode("n", 2);
  JobId a = c.Submit(Spec());
  JobId b = c.Submit(Spec());
  c.Tick();
  c.TakeOrders();
  c.FromNode(Heartbeat{"n", {{a, 1}}});  // b not listed yet
  auto orders = c.TakeOrders();
  REQUIRE(orders.size() == 1);
  CHECK(std::get<StartJob>(orders[0].message).job.id == b);
  CHECK(c.job(b).state == JobState::kRunning);
  // The execd restarted (registration lists only a): b's attempt is lost.
  c.FromNode(RegisterNode{"n", {2, 4096}, {{a, 1}}});
  CHECK(c.job(b).state == JobState::kQueued);
  CHECK(c.job(b).reason.find("restarted") != std::string::npos);
  CHECK(c.job(a).state == JobState::kRunning);
}

TEST_CASE("core: queries filter by id, user and finished state") {
  Cluster c;
  c.AddNode("n", 1);
  JobId a = c.Submit(Spec());
  JobId b = c.Submit(Spec(), User(1001, "bob"));
  c.Tick();
  c.FromNode(JobExit{"n", a, 1, 0, 0, 1, 2, 0, 0, ""});
  auto active = std::get<QueryReply>(c.Client(QueryRequest{{}, "", false}));
  REQUIRE(active.jobs.size() == 1);
  CHECK(active.jobs[0].id == b);
  CHECK(active.jobs[0].spec.script.empty());
  auto all = std::get<QueryReply>(c.Client(QueryRequest{{}, "", true}));
  CHECK(all.jobs.size() == 2);
  auto by_id = std::get<QueryReply>(c.Client(QueryRequest{{a, 99}, "", false}));
  CHECK(by_id.jobs.empty());
  CHECK(by_id.missing == std::vector<JobId>{a, 99});
  auto finished = std::get<QueryReply>(c.Client(QueryRequest{{a}, "", true}));
  CHECK(finished.jobs.at(0).state == JobState::kCompleted);
  auto bobs = std::get<QueryReply>(c.Client(QueryRequest{{}, "bob", true}));
  CHECK(bobs.jobs.size() == 1);
}

TEST_CASE("core: node messages a client sends, and client messages a node sends, are refused") {
  Cluster c;
  CHECK(std::holds_alternative<ErrorReply>(c.Client(Heartbeat{"n", {}})));
  CHECK(std::holds_alternative<ErrorReply>(*c.FromNode(SubmitRequest{Spec()})));
}

TEST_CASE("core: a GPU request no node can hold is refused with the reason") {
  Cluster c;
  c.AddNode("a", 8, 4096, 4);
  c.AddNode("b", 8, 4096, 0);
  JobSpec s = Spec();
  s.request.gpus = 8;
  CHECK(ErrorOf(c.Client(SubmitRequest{s})) == "no node has 8 GPUs; largest has 4");
}

TEST_CASE("core: specific cores and GPUs are allocated, never shared, and survive a reload") {
  Cluster c;
  c.AddNode("gpu", 8, 64000, 4);
  JobSpec two = Spec(2);
  two.request.gpus = 2;
  JobId a = c.Submit(two);
  JobId b = c.Submit(two);
  JobId d = c.Submit(two);  // no GPUs left: waits
  JobId e = c.Submit(Spec(3));
  c.Tick();
  CHECK(c.job(a).alloc_gpus == std::vector<int>{0, 1});
  CHECK(c.job(b).alloc_gpus == std::vector<int>{2, 3});
  CHECK(c.job(a).alloc_cores == std::vector<int>{0, 1});
  CHECK(c.job(b).alloc_cores == std::vector<int>{2, 3});
  CHECK(c.job(d).state == JobState::kQueued);
  CHECK(c.job(e).state == JobState::kQueued);  // FCFS: waits behind d
  // The start order carries the allocation to the execd.
  auto orders = c.TakeOrders();
  CHECK(std::get<StartJob>(orders.at(1).message).job.alloc_gpus == std::vector<int>{2, 3});

  // a ends: d gets a's GPUs and cores; e gets the lowest free cores after that.
  c.FromNode(JobExit{"gpu", a, 1, 0, 0, 1, 2, 0, 0, ""});
  c.Tick();
  CHECK(c.job(d).alloc_gpus == std::vector<int>{0, 1});
  CHECK(c.job(d).alloc_cores == std::vector<int>{0, 1});
  CHECK(c.job(e).alloc_cores == std::vector<int>{4, 5, 6});
  CHECK(c.job(e).alloc_gpus.empty());

  // A scheduler restart rebuilds the allocation from the running jobs' records.
  ClusterState reloaded;
  reloaded.jobs = c.state.jobs;
  reloaded.nodes = c.state.nodes;
  reloaded.next_job_id = c.state.next_job_id;
  Reindex(reloaded);
  c.state = reloaded;
  JobId f = c.Submit(Spec(1));
  JobId g = c.Submit(Spec(1));
  c.Tick();
  CHECK(c.job(f).alloc_cores == std::vector<int>{7});  // the one core nobody holds
  CHECK(c.job(g).state == JobState::kQueued);          // and then none is left
}
