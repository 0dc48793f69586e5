// Fair-share: decayed usage per (group, user) account, and the fair-share factor by Slurm's
// Fair Tree algorithm over the policy's two-level share tree (groups -> users). Pure
// functions of their arguments; the caller keeps the UsageTable and charges it.
//
// Usage. A job holding R accrues usage at
//     rate(R) = cores + gpu_weight * GPUs + mem_weight * GiB        (per second)
// so usage is in core-seconds whatever a job holds. Usage decays with a half-life H: a value
// U recorded at time t is worth U * 2^(-(now - t) / H) at `now`. Charging a run at rate r
// from t0 to t1 adds the decayed integral r * H/ln2 * (1 - 2^(-(t1 - t0) / H)) (as of t1),
// so charging every tick or once at the end gives the same number.
//
// Fair Tree. At each level (the groups; the users of one group) every sibling gets
//     S = its shares / the sum of its siblings' shares (itself included)
//     U = its usage  / the sum of its siblings' usage, 0 when that sum is 0
//     level = S / U  (infinite when U = 0 and S > 0: nothing used yet; 0 when S = 0)
// Groups are visited by level, highest first; within a group, users by level. Users are
// ranked in visiting order: the first gets rank N (the number of users), the next N - 1, ...
// Groups with equal levels are visited as one (their users sorted together, each by its
// level within its own group); users with equal levels share a rank and the next rank
// down skips as many. The fair-share factor is rank / N, in (0, 1]. Every user of an
// under-served group thus ranks above every user of an over-served one, and the factor
// reads "ahead of this fraction of users", not a ratio that is easy to misread.
//
// Worked example: physics (60 shares: alice 3, bob 1) and chemistry (40 shares: carol 1),
// with decayed usage alice 350, bob 50, carol 100 core-hours; N = 3.
//   groups     physics   S = 60/100 = 0.6  U = 400/500 = 0.8    level 0.75
//              chemistry S = 40/100 = 0.4  U = 100/500 = 0.2    level 2.0   -> visited first
//   chemistry  carol     S = 1             U = 1                level 1     -> rank 3, 1.00
//   physics    bob       S = 1/4 = 0.25    U = 50/400 = 0.125   level 2.0   -> rank 2, 0.67
//              alice     S = 3/4 = 0.75    U = 350/400 = 0.875  level 0.857 -> rank 1, 0.33
// With no usage at all every level is infinite, all tie, and every factor is 1.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/types.h"
#include "policies/policy_config.h"

namespace corral {

// Who is charged: a share-tree group and a user in it.
struct Account {
  std::string group;
  std::string user;
  auto operator<=>(const Account&) const = default;
};

// A usage value as of a time; its worth decays from there.
struct DecayedUsage {
  double value = 0;  // core-seconds as of `at`
  TimeMs at = 0;
  bool operator==(const DecayedUsage&) const = default;
};

using UsageTable = std::map<Account, DecayedUsage>;

// cores + gpu_weight * gpus + mem_weight * mem_mb / 1024.
double UsageRate(const Resources& held, const FairSharePolicy& fs);

// 2^(-dt / half_life); 1 for dt <= 0.
double DecayFactor(int64_t dt_ms, int64_t half_life_s);

// The value of `u` at `now` (not decayed when now is before u.at).
double ValueAt(const DecayedUsage& u, TimeMs now, int64_t half_life_s);

// `u` plus `amount` core-seconds valued at time `when`; the result is dated the later of
// u.at and `when`, with the earlier of the two decayed to it.
DecayedUsage AddUsage(const DecayedUsage& u, double amount, TimeMs when, int64_t half_life_s);

// `u` plus a run at `rate` from `from` to `to` (the decayed integral above); `to <= from`
// adds nothing.
DecayedUsage ChargeRun(const DecayedUsage& u, double rate, TimeMs from, TimeMs to,
                       int64_t half_life_s);

// The group a job of `user` is charged to: `project` (qsub -P) when the tree lists the user
// in that group; else the first group (by name) listing the user; else kDefaultGroup.
std::string AccountGroup(const FairSharePolicy& fs, const std::string& user,
                         const std::string& project);

// The account the tree knows `a` as: `a` itself when its group lists its user, else
// {kDefaultGroup, user} (so usage of users since removed from a group is not lost).
Account EffectiveAccount(const FairSharePolicy& fs, const Account& a);

// One user's line of the Fair Tree, with the numbers that explain it.
struct FairShareRow {
  Account account;                                           // effective account
  double shares = 0;                                         // raw shares of the user in its group
  double usage = 0;                                          // decayed usage at `now`, core-seconds
  double group_share = 0, group_usage = 0, group_level = 0;  // S, U, level among groups
  double user_share = 0, user_usage = 0, user_level = 0;     // S, U, level within the group
  int group_position = 0;                                    // 1 = the group visited first
  int group_count = 0;
  int rank = 0;        // N for the user visited first
  int user_count = 0;  // N
  double factor = 0;   // rank / N
};

// The Fair Tree over the tree's users, the accounts in `usage` and the `active` ones (e.g.
// the owners of pending jobs), all mapped by EffectiveAccount. Rows come best first, ties
// by (group, user). Levels may be +infinity.
std::vector<FairShareRow> FairTree(const FairSharePolicy& fs, const UsageTable& usage,
                                   const std::set<Account>& active, TimeMs now);

// The row in words, e.g. "physics has 60% of the shares and 80% of recent usage (level
// 0.75, 2nd of 2 groups); bob has 25% of physics' shares and 12.5% of its usage (level 2);
// rank 2 of 3 users, fair-share factor 0.67".
std::string DescribeFairShare(const FairShareRow& row);

}  // namespace corral
