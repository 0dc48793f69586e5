// Decayed usage and the Fair Tree (the formula and a worked example are in fairshare.h).
#include "policies/fairshare.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace corral {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

double Level(double share, double usage) {
  if (share <= 0) return 0;
  return usage <= 0 ? kInf : share / usage;
}

struct Member {
  std::string user;
  double shares = 0;
  double usage = 0;
  double share_norm = 0, usage_norm = 0, level = 0;
};

struct Group {
  std::string name;
  double shares = 0;
  std::map<std::string, Member> members;
  double usage = 0;
  double share_norm = 0, usage_norm = 0, level = 0;
};

// Fills S, U and level for siblings given their raw shares and usage.
template <typename It, typename Get>
void Normalize(It begin, It end, Get get) {
  double shares = 0, usage = 0;
  for (It it = begin; it != end; ++it) {
    shares += get(*it).shares;
    usage += get(*it).usage;
  }
  for (It it = begin; it != end; ++it) {
    auto& x = get(*it);
    x.share_norm = shares > 0 ? x.shares / shares : 0;
    x.usage_norm = usage > 0 ? x.usage / usage : 0;
    x.level = Level(x.share_norm, x.usage_norm);
  }
}

std::string Percent(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g%%", x * 100);
  return buf;
}

std::string LevelText(double level) {
  if (std::isinf(level)) return "no usage yet";
  char buf[32];
  std::snprintf(buf, sizeof buf, "level %.3g", level);
  return buf;
}

std::string Ordinal(int n) {
  const char* suffix = "th";
  if (n % 100 < 11 || n % 100 > 13) {
    if (n % 10 == 1) suffix = "st";
    if (n % 10 == 2) suffix = "nd";
    if (n % 10 == 3) suffix = "rd";
  }
  return std::to_string(n) + suffix;
}

}  // namespace

double UsageRate(const Resources& held, const FairSharePolicy& fs) {
  return held.cores + fs.gpu_weight * held.gpus + fs.mem_weight * (held.mem_mb / 1024.0);
}

double DecayFactor(int64_t dt_ms, int64_t half_life_s) {
  if (dt_ms <= 0 || half_life_s <= 0) return 1;
  return std::exp2(-static_cast<double>(dt_ms) / (static_cast<double>(half_life_s) * 1000.0));
}

double ValueAt(const DecayedUsage& u, TimeMs now, int64_t half_life_s) {
  return u.value * DecayFactor(now - u.at, half_life_s);
}

DecayedUsage AddUsage(const DecayedUsage& u, double amount, TimeMs when, int64_t half_life_s) {
  if (when >= u.at) return {ValueAt(u, when, half_life_s) + amount, when};
  return {u.value + amount * DecayFactor(u.at - when, half_life_s), u.at};
}

DecayedUsage ChargeRun(const DecayedUsage& u, double rate, TimeMs from, TimeMs to,
                       int64_t half_life_s) {
  if (to <= from) return u;
  const double seconds = static_cast<double>(to - from) / 1000.0;
  // The integral of rate * 2^(-(to - t)/H) dt over [from, to]; for H -> infinity it is
  // rate * seconds, which also covers a disabled half-life.
  double amount = rate * seconds;
  if (half_life_s > 0) {
    const double h = static_cast<double>(half_life_s);
    amount = rate * h / std::log(2.0) * (1 - DecayFactor(to - from, half_life_s));
  }
  return AddUsage(u, amount, to, half_life_s);
}

std::string AccountGroup(const FairSharePolicy& fs, const std::string& user,
                         const std::string& project) {
  if (!project.empty()) {
    auto it = fs.groups.find(project);
    if (it != fs.groups.end() && it->second.users.count(user)) return project;
  }
  for (const auto& [name, group] : fs.groups) {
    if (group.users.count(user)) return name;
  }
  return kDefaultGroup;
}

Account EffectiveAccount(const FairSharePolicy& fs, const Account& a) {
  auto it = fs.groups.find(a.group);
  if (it != fs.groups.end() && it->second.users.count(a.user)) return a;
  return {kDefaultGroup, a.user};
}

std::vector<FairShareRow> FairTree(const FairSharePolicy& fs, const UsageTable& usage,
                                   const std::set<Account>& active, TimeMs now) {
  std::map<std::string, Group> groups;
  for (const auto& [name, g] : fs.groups) {
    Group& out = groups[name];
    out.name = name;
    out.shares = g.shares;
    for (const auto& [user, shares] : g.users) out.members[user] = {user, shares};
  }
  auto member = [&](const Account& raw) -> Member& {
    const Account a = EffectiveAccount(fs, raw);
    auto [git, new_group] = groups.try_emplace(a.group);
    if (new_group) {  // the implicit default group: 1 share, only while it has members
      git->second.name = a.group;
      git->second.shares = 1;
    }
    auto [mit, new_member] = git->second.members.try_emplace(a.user);
    if (new_member) mit->second = {a.user, fs.default_shares};
    return mit->second;
  };
  for (const auto& [account, u] : usage) {
    member(account).usage += ValueAt(u, now, fs.half_life_s);
  }
  for (const Account& a : active) member(a);

  std::vector<Group*> order;
  int n = 0;
  for (auto& [name, g] : groups) {
    for (const auto& [user, m] : g.members) g.usage += m.usage;
    n += static_cast<int>(g.members.size());
    order.push_back(&g);
  }
  Normalize(order.begin(), order.end(), [](Group* g) -> Group& { return *g; });
  for (Group* g : order) {
    Normalize(g->members.begin(), g->members.end(), [](auto& kv) -> Member& { return kv.second; });
  }
  // By level, highest first; the map gave name order, which stable_sort keeps for ties.
  std::stable_sort(order.begin(), order.end(),
                   [](const Group* a, const Group* b) { return a->level > b->level; });

  std::vector<FairShareRow> rows;
  rows.reserve(n);
  int rank = n;
  int position = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    ++position;
    std::vector<std::pair<const Group*, const Member*>> bucket;  // tied groups, visited as one
    for (; j < order.size() && order[j]->level == order[i]->level; ++j) {
      for (const auto& [user, m] : order[j]->members) bucket.push_back({order[j], &m});
    }
    std::stable_sort(bucket.begin(), bucket.end(), [](const auto& a, const auto& b) {
      return a.second->level > b.second->level;
    });
    for (size_t k = 0; k < bucket.size();) {
      size_t tie_end = k;
      while (tie_end < bucket.size() && bucket[tie_end].second->level == bucket[k].second->level) {
        const auto& [g, m] = bucket[tie_end];
        FairShareRow row;
        row.account = {g->name, m->user};
        row.shares = m->shares;
        row.usage = m->usage;
        row.group_share = g->share_norm;
        row.group_usage = g->usage_norm;
        row.group_level = g->level;
        row.user_share = m->share_norm;
        row.user_usage = m->usage_norm;
        row.user_level = m->level;
        row.group_position = position;
        row.rank = rank;
        row.user_count = n;
        row.factor = static_cast<double>(rank) / n;
        rows.push_back(row);
        ++tie_end;
      }
      rank -= static_cast<int>(tie_end - k);
      k = tie_end;
    }
    position += static_cast<int>(j - i) - 1;  // tied groups share a position
    i = j;
  }
  for (FairShareRow& row : rows) row.group_count = static_cast<int>(order.size());
  return rows;
}

std::string DescribeFairShare(const FairShareRow& row) {
  const std::string& g = row.account.group;
  const std::string& u = row.account.user;
  char factor[32];
  std::snprintf(factor, sizeof factor, "%.2f", row.factor);
  return g + " has " + Percent(row.group_share) + " of the shares and " + Percent(row.group_usage) +
         " of recent usage (" + LevelText(row.group_level) + ", " + Ordinal(row.group_position) +
         " of " + std::to_string(row.group_count) + " groups); " + u + " has " +
         Percent(row.user_share) + " of " + g + "'s shares and " + Percent(row.user_usage) +
         " of its usage (" + LevelText(row.user_level) + "); rank " + std::to_string(row.rank) +
         " of " + std::to_string(row.user_count) + " users, fair-share factor " + factor;
}

}  // namespace corral
