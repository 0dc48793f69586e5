// Fair-share: decayed usage and the Fair Tree against numbers computed by hand (the worked
// example of fairshare.h among them).
#include <doctest/doctest.h>

#include <cmath>

#include "policies/fairshare.h"

using namespace corral;

namespace {

constexpr int64_t kHour = 3600;
constexpr TimeMs kHourMs = 3600 * 1000;

FairSharePolicy PhysicsChemistry() {
  FairSharePolicy fs;
  fs.groups["physics"] = {60, {{"alice", 3}, {"bob", 1}}};
  fs.groups["chemistry"] = {40, {{"carol", 1}}};
  return fs;
}

const FairShareRow& Row(const std::vector<FairShareRow>& rows, const std::string& user) {
  for (const FairShareRow& r : rows) {
    if (r.account.user == user) return r;
  }
  FAIL("no row for " << user);
  return rows.front();
}

}  // namespace

TEST_CASE("policy fairshare: usage halves every half-life and charging is tick-independent") {
  const int64_t h = 24 * kHour;
  DecayedUsage u{1000, 0};
  CHECK(ValueAt(u, h * 1000, h) == doctest::Approx(500));
  CHECK(ValueAt(u, 2 * h * 1000, h) == doctest::Approx(250));
  CHECK(ValueAt(u, -5, h) == 1000);  // never grows backwards
  CHECK(DecayFactor(0, h) == 1);

  // 4 cores for one hour with a 1-day half-life: 4*86400/ln2*(1-2^(-1/24)) = 14194.04
  const DecayedUsage once = ChargeRun({}, 4, 0, kHourMs, h);
  CHECK(once.value == doctest::Approx(4 * 86400 / std::log(2.0) * (1 - std::exp2(-1.0 / 24))));
  CHECK(once.value == doctest::Approx(14194.04).epsilon(1e-6));
  CHECK(once.value < 4 * 3600);  // the early part has already decayed a little
  CHECK(once.at == kHourMs);
  DecayedUsage ticks;
  for (TimeMs t = 0; t < kHourMs; t += 7000) {
    ticks = ChargeRun(ticks, 4, t, std::min(t + 7000, kHourMs), h);
  }
  CHECK(ticks.value == doctest::Approx(once.value));
  CHECK(ChargeRun(once, 4, 10, 10, h) == once);

  // Adding a value dated before the last update decays it to that update.
  const DecayedUsage late = AddUsage({100, h * 1000}, 100, 0, h);
  CHECK(late.at == h * 1000);
  CHECK(late.value == doctest::Approx(150));
}

TEST_CASE("policy fairshare: usage rate charges GPUs and memory by the admin's weights") {
  FairSharePolicy fs;
  fs.gpu_weight = 8;
  fs.mem_weight = 0.25;
  CHECK(UsageRate({4, 16 * 1024, 2}, fs) == doctest::Approx(4 + 16 + 4));
  CHECK(UsageRate({1, 512, 0}, fs) == doctest::Approx(1.125));
}

TEST_CASE("policy fairshare: the worked example of fairshare.h") {
  const FairSharePolicy fs = PhysicsChemistry();
  const UsageTable usage = {{{"physics", "alice"}, {350, 0}},
                            {{"physics", "bob"}, {50, 0}},
                            {{"chemistry", "carol"}, {100, 0}}};
  const std::vector<FairShareRow> rows = FairTree(fs, usage, {}, 0);
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].account.user == "carol");
  CHECK(rows[1].account.user == "bob");
  CHECK(rows[2].account.user == "alice");
  const FairShareRow& carol = Row(rows, "carol");
  CHECK(carol.group_share == doctest::Approx(0.4));
  CHECK(carol.group_usage == doctest::Approx(0.2));
  CHECK(carol.group_level == doctest::Approx(2.0));
  CHECK(carol.user_level == doctest::Approx(1.0));
  CHECK(carol.rank == 3);
  CHECK(carol.factor == doctest::Approx(1.0));
  const FairShareRow& bob = Row(rows, "bob");
  CHECK(bob.group_level == doctest::Approx(0.75));
  CHECK(bob.user_share == doctest::Approx(0.25));
  CHECK(bob.user_usage == doctest::Approx(0.125));
  CHECK(bob.user_level == doctest::Approx(2.0));
  CHECK(bob.factor == doctest::Approx(2.0 / 3));
  const FairShareRow& alice = Row(rows, "alice");
  CHECK(alice.user_level == doctest::Approx(0.75 / 0.875));
  CHECK(alice.factor == doctest::Approx(1.0 / 3));
  CHECK(alice.group_position == 2);
  CHECK(alice.group_count == 2);
  CHECK(DescribeFairShare(bob) ==
        "physics has 60% of the shares and 80% of recent usage (level 0.75, 2nd of 2 groups); "
        "bob has 25% of physics's shares and 12.5% of its usage (level 2); rank 2 of 3 users, "
        "fair-share factor 0.67");
}

TEST_CASE("policy fairshare: decay is applied at now, so old usage counts less") {
  FairSharePolicy fs = PhysicsChemistry();
  fs.half_life_s = kHour;
  // alice's 400 is two half-lives old (worth 100); bob's 100 is fresh: bob used more.
  const UsageTable usage = {{{"physics", "alice"}, {400, 0}},
                            {{"physics", "bob"}, {100, 2 * kHourMs}}};
  const std::vector<FairShareRow> rows = FairTree(fs, usage, {}, 2 * kHourMs);
  CHECK(Row(rows, "alice").usage == doctest::Approx(100));
  // physics U = 1 (carol has none), level 0.6; chemistry infinite: carol first.
  // alice S 0.75 U 0.5 -> 1.5; bob S 0.25 U 0.5 -> 0.5.
  CHECK(Row(rows, "carol").factor == doctest::Approx(1.0));
  CHECK(Row(rows, "alice").factor == doctest::Approx(2.0 / 3));
  CHECK(Row(rows, "bob").factor == doctest::Approx(1.0 / 3));
}

TEST_CASE("policy fairshare: no usage ties everyone at 1; tied groups are ranked as one") {
  const FairSharePolicy fs = PhysicsChemistry();
  for (const FairShareRow& r : FairTree(fs, {}, {}, 0)) {
    CHECK(r.factor == 1.0);
    CHECK(std::isinf(r.group_level));
  }
  // Both groups have level 1 (S = U); their users are sorted together by their own levels:
  // carol 1, alice 0.75/0.5 = 1.5, bob 0.25/0.5 = 0.5.
  const UsageTable usage = {{{"physics", "alice"}, {30, 0}},
                            {{"physics", "bob"}, {30, 0}},
                            {{"chemistry", "carol"}, {40, 0}}};
  const std::vector<FairShareRow> rows = FairTree(fs, usage, {}, 0);
  CHECK(rows[0].account.user == "alice");
  CHECK(rows[1].account.user == "carol");
  CHECK(rows[2].account.user == "bob");
  CHECK(rows[0].group_position == 1);
  CHECK(rows[1].group_position == 1);
  // Equal users share a rank; the next rank skips.
  FairSharePolicy flat;
  flat.groups["lab"] = {1, {{"a", 1}, {"b", 1}, {"c", 1}}};
  const std::vector<FairShareRow> tied = FairTree(
      flat, {{{"lab", "a"}, {10, 0}}, {{"lab", "b"}, {10, 0}}, {{"lab", "c"}, {20, 0}}}, {}, 0);
  CHECK(Row(tied, "a").rank == 3);
  CHECK(Row(tied, "b").rank == 3);
  CHECK(Row(tied, "c").rank == 1);
}

TEST_CASE("policy fairshare: unknown users go to the default group; accounts resolve by project") {
  FairSharePolicy fs = PhysicsChemistry();
  fs.groups["chemistry"].users["alice"] = 1;            // alice is in both groups
  CHECK(AccountGroup(fs, "alice", "") == "chemistry");  // first by name
  CHECK(AccountGroup(fs, "alice", "physics") == "physics");
  CHECK(AccountGroup(fs, "bob", "chemistry") == "physics");  // not listed in chemistry
  CHECK(AccountGroup(fs, "zed", "physics") == kDefaultGroup);
  CHECK(EffectiveAccount(fs, {"physics", "zed"}) == Account{kDefaultGroup, "zed"});
  CHECK(EffectiveAccount(fs, {"physics", "bob"}) == Account{"physics", "bob"});

  // zed (unknown, usage 0, pending) and yan (removed from physics, has usage): both in an
  // implicit default group of 1 share out of 101.
  FairSharePolicy two = PhysicsChemistry();
  two.default_shares = 2;
  const UsageTable usage = {{{"physics", "alice"}, {100, 0}}, {{"physics", "yan"}, {100, 0}}};
  const std::vector<FairShareRow> rows = FairTree(two, usage, {{"", "zed"}}, 0);
  REQUIRE(rows.size() == 5);
  const FairShareRow& zed = Row(rows, "zed");
  CHECK(zed.account.group == kDefaultGroup);
  CHECK(zed.shares == 2);
  CHECK(zed.group_share == doctest::Approx(1.0 / 101));
  CHECK(zed.group_usage == doctest::Approx(0.5));
  CHECK(Row(rows, "yan").account.group == kDefaultGroup);
  // Order: chemistry (no usage) carol 5; physics level 0.6/0.5 = 1.2: bob (inf) 4, alice 3;
  // default level (1/101)/0.5: zed (inf) 2, yan 1.
  CHECK(Row(rows, "carol").rank == 5);
  CHECK(Row(rows, "bob").rank == 4);
  CHECK(Row(rows, "alice").rank == 3);
  CHECK(zed.rank == 2);
  CHECK(Row(rows, "yan").rank == 1);

  // A user with zero shares ranks last even with no usage.
  FairSharePolicy zero;
  zero.groups["lab"] = {1, {{"guest", 0}, {"owner", 1}}};
  const std::vector<FairShareRow> z = FairTree(zero, {{{"lab", "owner"}, {1e6, 0}}}, {}, 0);
  CHECK(Row(z, "guest").rank == 1);
  CHECK(Row(z, "owner").rank == 2);
}
