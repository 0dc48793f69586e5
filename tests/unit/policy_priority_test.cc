// The multifactor prioritizer: each factor normalized by hand, the weighted sum, the order
// and its tie-break, and the -p clamp for non-admins.
#include <doctest/doctest.h>

#include "policies/priority.h"

using namespace corral;

namespace {

constexpr TimeMs kHourMs = 3600 * 1000;

PendingJob Waiting(JobId id, std::string user, std::string group, TimeMs submit = 0) {
  PendingJob j;
  j.id = id;
  j.user = std::move(user);
  j.group = std::move(group);
  j.submit_time = submit;
  j.request = {1, 0};
  return j;
}

const RankedJob& Find(const std::vector<RankedJob>& ranked, JobId id) {
  for (const RankedJob& r : ranked) {
    if (r.id == id) return r;
  }
  FAIL("job " << id << " not ranked");
  return ranked.front();
}

}  // namespace

TEST_CASE("policy priority: the default policy is first come, first served; -p only lowers") {
  const auto prioritizer = MakePrioritizer(Policy{});
  PrioritySnapshot snap;
  snap.pending = {Waiting(3, "a", ""), Waiting(1, "b", ""), Waiting(2, "c", ""),
                  Waiting(4, "d", "")};
  snap.pending[3].user_priority = -100;  // lowered by its owner
  snap.pending[2].user_priority = 500;   // raised by a non-admin: clamped to 0
  const std::vector<RankedJob> ranked = prioritizer->Rank(snap, 0);
  REQUIRE(ranked.size() == 4);
  CHECK(ranked[0].id == 1);
  CHECK(ranked[1].id == 2);
  CHECK(ranked[2].id == 3);
  CHECK(ranked[3].id == 4);
  CHECK(Find(ranked, 2).factors.user == doctest::Approx(1023.0 / 2047));
  CHECK(Find(ranked, 4).factors.user == doctest::Approx(923.0 / 2047));

  snap.pending[2].priority_set_by_admin = true;  // an admin may raise it
  CHECK(prioritizer->Rank(snap, 0)[0].id == 2);
  CHECK(Find(prioritizer->Rank(snap, 0), 2).factors.user == doctest::Approx(1523.0 / 2047));
}

TEST_CASE("policy priority: the example of priority.h, factor by factor") {
  Policy p;
  p.priority.fairshare = 1000;
  p.priority.age = 100;
  p.priority.age_cap_s = 24 * 3600;
  p.priority.user = 10;
  p.fairshare.groups["lab"] = {1, {{"alice", 1}, {"bob", 1}}};
  PrioritySnapshot snap;
  snap.pending = {Waiting(7, "alice", "lab", 0)};
  snap.usage = {{{"lab", "alice"}, {100, 0}}};  // bob has none: bob ranks first, alice 1/2
  const RankedJob r = MakePrioritizer(p)->Rank(snap, 6 * kHourMs)[0];
  CHECK(r.factors.fairshare == doctest::Approx(0.5));
  CHECK(r.factors.age == doctest::Approx(0.25));
  CHECK(r.priority == doctest::Approx(500 + 25 + 10 * 1023.0 / 2047));
  CHECK(DescribePriority(r, p.priority) ==
        "priority 530.0 = fairshare 1000 x 0.50 + age 100 x 0.25 + user 10 x 0.50");
  // Age is capped at 1.
  CHECK(MakePrioritizer(p)->Rank(snap, 48 * kHourMs)[0].factors.age == 1.0);
}

TEST_CASE("policy priority: job size, queue priority and fair-share move jobs as weighted") {
  Policy p;
  p.priority.user = 0;
  p.priority.job_size = 100;
  p.priority.queue = 50;
  p.fairshare.gpu_weight = 4;
  p.queues["low"].priority = 1;
  p.queues["high"].priority = 4;
  PrioritySnapshot snap;
  snap.cluster_total = {64, 0, 8};  // rate 64 + 4*8 = 96
  PendingJob big = Waiting(1, "a", "");
  big.request = {16, 0, 2};  // rate 24 -> size 0.25
  big.queue = "low";         // 1/4
  PendingJob small = Waiting(2, "b", "");
  small.queue = "high";  // size 1/96, queue 1
  snap.pending = {big, small};
  const std::vector<RankedJob> ranked = MakePrioritizer(p)->Rank(snap, 0);
  CHECK(Find(ranked, 1).factors.job_size == doctest::Approx(0.25));
  CHECK(Find(ranked, 1).factors.queue == doctest::Approx(0.25));
  CHECK(Find(ranked, 1).priority == doctest::Approx(25 + 12.5));
  CHECK(Find(ranked, 2).priority == doctest::Approx(100.0 / 96 + 50));
  CHECK(ranked[0].id == 2);
  p.priority.favor_small = true;
  CHECK(Find(MakePrioritizer(p)->Rank(snap, 0), 1).factors.job_size == doctest::Approx(0.75));

  // Fair-share: the same two jobs, but a's group has used nothing and b's a lot.
  Policy fair;
  fair.priority.fairshare = 1000;
  fair.fairshare.groups["x"] = {1, {{"a", 1}}};
  fair.fairshare.groups["y"] = {1, {{"b", 1}}};
  PrioritySnapshot fs_snap;
  fs_snap.pending = {Waiting(5, "b", "y"), Waiting(6, "a", "x")};
  fs_snap.usage = {{{"y", "b"}, {1000, 0}}};
  const std::vector<RankedJob> by_share = MakePrioritizer(fair)->Rank(fs_snap, 0);
  CHECK(by_share[0].id == 6);
  CHECK(by_share[0].factors.fairshare == 1.0);
  CHECK(by_share[1].factors.fairshare == 0.5);
}

TEST_CASE("policy priority: InPriorityOrder reorders pending jobs for the planner") {
  std::vector<PendingJob> pending = {Waiting(1, "a", ""), Waiting(2, "b", ""), Waiting(3, "c", "")};
  std::vector<RankedJob> ranked = {{3, 9, {}}, {1, 5, {}}};
  std::vector<PendingJob> ordered = InPriorityOrder(pending, ranked);
  REQUIRE(ordered.size() == 2);
  CHECK(ordered[0].id == 3);
  CHECK(ordered[1].id == 1);
  CHECK(ordered[1].user == "a");
}
