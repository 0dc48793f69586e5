// corral events: the events of a batch (scheduler/events.h), their wire form, and the
// store keeping them for resumption and pruning old ones.
#include <doctest/doctest.h>

#include "scheduler/events.h"
#include "scheduler/store.h"
#include "unit/core_driver.h"

using namespace corral;
using namespace corral::testing;

TEST_CASE("events: a job's life is queued, running, completed; a lost node is an event") {
  Cluster c;
  c.AddNode("n", 1);
  Outcome submitted = HandleClient(c.state, SubmitRequest{Spec()}, User(), c.config, c.now);
  std::vector<Event> events = EventsOf(c.state, submitted.actions, c.now);
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == "job");
  CHECK(events[0].from.empty());
  CHECK(events[0].to == "queued");
  CHECK(events[0].owner == "alice");
  Install(c.state, submitted.actions);
  const JobId id = std::get<SubmitReply>(*submitted.reply).id;

  Actions started = Decide(c.state, c.config, c.now);
  events = EventsOf(c.state, started, c.now);
  REQUIRE(events.size() == 1);
  CHECK(events[0].job == id);
  CHECK(events[0].from == "queued");
  CHECK(events[0].to == "running");
  CHECK(events[0].node == "n");
  CHECK(events[0].attempt == 1);
  Install(c.state, started);

  const Job& j = c.job(id);
  Outcome ended = HandleNode(c.state, JobExit{"n", id, 1, 3, 0, j.start_time, c.now + 5}, c.config,
                             c.now + 5);
  events = EventsOf(c.state, ended.actions, c.now + 5);
  REQUIRE(events.size() == 1);
  CHECK(events[0].to == "failed");
  REQUIRE(events[0].exit_code.has_value());
  CHECK(*events[0].exit_code == 3);
  CHECK(events[0].reason == "exited with code 3");
  Install(c.state, ended.actions);

  // Nothing changes state: no events (a heartbeat).
  Outcome beat = HandleNode(c.state, Heartbeat{"n", {}}, c.config, c.now + 6);
  CHECK(EventsOf(c.state, beat.actions, c.now + 6).empty());
  Install(c.state, beat.actions);
  // The node falls silent past the timeout.
  Actions lost = Decide(c.state, c.config, c.now + 6 + c.config.node_timeout_ms + 1);
  events = EventsOf(c.state, lost, c.now);
  REQUIRE(events.size() == 1);
  CHECK(events[0].kind == "node");
  CHECK(events[0].from == "up");
  CHECK(events[0].to == "unreachable");

  // The wire form round-trips.
  events[0].seq = 7;
  Result<Event> back = DecodeEvent(EncodeEvent(events[0]));
  REQUIRE(back.has_value());
  CHECK(*back == events[0]);
  CHECK_FALSE(DecodeEvent("{\"seq\":1,\"kind\":\"bogus\",\"to\":\"x\"}").has_value());
}

TEST_CASE("events: private_jobs shows a job's events to its owner, operators and admins") {
  CoreConfig config;
  Event e;
  e.kind = "job";
  e.owner = "alice";
  CHECK(MaySeeEvent(User(1001, "bob"), e, config));
  config.private_jobs = true;
  config.operators = {"carol"};
  CHECK_FALSE(MaySeeEvent(User(1001, "bob"), e, config));
  CHECK(MaySeeEvent(User(1000, "alice"), e, config));
  CHECK(MaySeeEvent(User(1002, "carol"), e, config));
  CHECK(MaySeeEvent(User(0, "root"), e, config));
  e.kind = "node";
  CHECK(MaySeeEvent(User(1001, "bob"), e, config));
}

TEST_CASE("store: events are kept by sequence number and pruned by age, keeping the newest") {
  auto store = Store::Open(":memory:");
  REQUIRE(store.has_value());
  auto bounds = (*store)->EventBounds();
  REQUIRE(bounds.has_value());
  CHECK(*bounds == std::pair<int64_t, int64_t>{0, 0});
  Actions a;
  for (int i = 1; i <= 5; ++i) {
    Event e;
    e.seq = i;
    e.time = i * 1000;
    e.kind = "job";
    e.job = i;
    e.to = "queued";
    a.events.push_back(e);
  }
  REQUIRE(a.Persistent());
  REQUIRE((*store)->Apply(a).ok());
  auto after2 = (*store)->ReadEvents(2, 100);
  REQUIRE(after2.has_value());
  REQUIRE(after2->size() == 3);
  CHECK((*after2)[0].seq == 3);
  CHECK((*after2)[0] == a.events[2]);
  CHECK((*store)->ReadEvents(2, 1)->size() == 1);
  REQUIRE((*store)->PruneEvents(4000).ok());  // drops 1..3
  CHECK(*(*store)->EventBounds() == std::pair<int64_t, int64_t>{4, 5});
  REQUIRE((*store)->PruneEvents(1000000).ok());  // the newest stays: numbering goes on
  CHECK(*(*store)->EventBounds() == std::pair<int64_t, int64_t>{5, 5});
}

TEST_CASE("events: a prune after the clock stepped back deletes no event it must keep") {
  auto store = Store::Open(":memory:");
  REQUIRE(store.has_value());
  Actions a;
  for (int64_t i = 1; i <= 6; ++i) {
    Event e;
    e.seq = i;
    e.time = i == 4 ? 500 : i * 1000;  // event 4 was stamped after the clock stepped back
    e.kind = "job";
    e.job = i;
    e.to = "queued";
    a.events.push_back(e);
  }
  REQUIRE((*store)->Apply(a).ok());
  REQUIRE((*store)->PruneEvents(2500).ok());  // 1 and 2 are old and precede every recent one
  CHECK(*(*store)->EventBounds() == std::pair<int64_t, int64_t>{3, 6});
  REQUIRE((*store)->PruneEvents(5500).ok());  // 3, 4 (old), 5 (old); 6 is recent
  CHECK(*(*store)->EventBounds() == std::pair<int64_t, int64_t>{6, 6});
  CHECK((*store)->ReadEvents(0, 10)->size() == 1);
}
