// Metrics formulas (metrics.h).
#include "sim/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "policies/fairshare.h"

namespace corral::sim {

double BoundedSlowdown(int64_t wait_s, int64_t run_s, int64_t tau_s) {
  const double denom = static_cast<double>(std::max(run_s, tau_s));
  return std::max(static_cast<double>(wait_s + run_s) / denom, 1.0);
}

Metrics ComputeMetrics(const std::vector<SimJob>& jobs, const std::vector<JobOutcome>& outcomes,
                       int64_t procs, double warmup_percent) {
  Metrics m;
  std::vector<size_t> ran;
  int64_t first = std::numeric_limits<int64_t>::max();
  int64_t last = std::numeric_limits<int64_t>::min();
  for (size_t i = 0; i < jobs.size() && i < outcomes.size(); ++i) {
    if (!outcomes[i].Ran()) continue;
    ran.push_back(i);
    first = std::min(first, jobs[i].submit_s);
    last = std::max(last, outcomes[i].end_s);
    m.core_seconds += static_cast<double>(jobs[i].run_s) * jobs[i].size;
  }
  m.jobs = static_cast<int64_t>(ran.size());
  if (ran.empty()) return m;
  m.first_submit_s = first;
  m.last_end_s = last;
  m.makespan_s = last - first;
  if (procs > 0 && m.makespan_s > 0) {
    m.utilization =
        m.core_seconds / (static_cast<double>(procs) * static_cast<double>(m.makespan_s));
  }
  // Warm-up: leave out the first jobs to terminate.
  const auto skip = static_cast<size_t>(
      std::floor(std::clamp(warmup_percent, 0.0, 100.0) / 100.0 * static_cast<double>(ran.size())));
  if (skip > 0) {
    std::stable_sort(ran.begin(), ran.end(), [&outcomes](size_t a, size_t b) {
      return outcomes[a].end_s < outcomes[b].end_s;
    });
  }
  double wait = 0, response = 0, bsld = 0;
  for (size_t k = skip; k < ran.size(); ++k) {
    const size_t i = ran[k];
    const int64_t w = outcomes[i].start_s - jobs[i].submit_s;
    wait += static_cast<double>(w);
    response += static_cast<double>(w + jobs[i].run_s);
    bsld += BoundedSlowdown(w, jobs[i].run_s);
    m.max_wait_s = std::max(m.max_wait_s, w);
  }
  m.averaged = static_cast<int64_t>(ran.size() - skip);
  if (m.averaged > 0) {
    const double n = static_cast<double>(m.averaged);
    m.mean_wait_s = wait / n;
    m.mean_response_s = response / n;
    m.mean_bsld = bsld / n;
  }
  return m;
}

std::vector<UserShare> UserShares(const std::vector<SimJob>& jobs, const SimResult& result,
                                  const Policy& policy) {
  std::map<Account, UserShare> by_account;
  double total = 0;
  for (size_t i = 0; i < jobs.size() && i < result.jobs.size(); ++i) {
    const JobOutcome& o = result.jobs[i];
    if (!o.Ran()) continue;
    const Account a = EffectiveAccount(policy.fairshare, {result.accounts[i], jobs[i].user});
    UserShare& u = by_account[a];
    u.user = a.user;
    u.group = a.group;
    ++u.jobs;
    const double cs = static_cast<double>(jobs[i].run_s) * jobs[i].size;
    u.core_seconds += cs;
    u.mean_wait_s += static_cast<double>(o.start_s - jobs[i].submit_s);
    total += cs;
  }
  std::set<Account> active;
  for (const auto& [a, _] : by_account) active.insert(a);
  for (const FairShareRow& row : FairTree(policy.fairshare, {}, active, 0)) {
    auto it = by_account.find(row.account);
    if (it != by_account.end()) it->second.target = row.group_share * row.user_share;
  }
  std::vector<UserShare> out;
  out.reserve(by_account.size());
  for (auto& [_, u] : by_account) {
    u.share = total > 0 ? u.core_seconds / total : 0;
    u.mean_wait_s /= static_cast<double>(u.jobs);
    out.push_back(std::move(u));
  }
  std::sort(out.begin(), out.end(), [](const UserShare& a, const UserShare& b) {
    return a.core_seconds != b.core_seconds ? a.core_seconds > b.core_seconds : a.user < b.user;
  });
  return out;
}

}  // namespace corral::sim
