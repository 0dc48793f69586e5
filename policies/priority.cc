// The multifactor prioritizer (formula in priority.h).
#include "policies/priority.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>

namespace corral {
namespace {

constexpr int kMinUserPriority = -1023;
constexpr int kMaxUserPriority = 1024;

class MultifactorPrioritizer final : public Prioritizer {
 public:
  explicit MultifactorPrioritizer(const Policy& policy)
      : fairshare_(policy.fairshare), weights_(policy.priority) {
    for (const auto& [name, q] : policy.queues) {
      queue_priority_[name] = q.priority;
      max_queue_priority_ = std::max(max_queue_priority_, q.priority);
    }
  }

  std::vector<RankedJob> Rank(const PrioritySnapshot& snap, TimeMs now) const override {
    return RankBest(snap, now, snap.pending.size());
  }

  std::vector<RankedJob> RankBest(const PrioritySnapshot& snap, TimeMs now,
                                  size_t best) const override {
    // Fair Tree once per pass over the owners of pending jobs (users, not jobs, so cheap),
    // and each owner's factor looked up once: by group, then user (hashed: cheaper than
    // comparing names down a tree for each of 100k jobs).
    std::unordered_map<std::string, std::unordered_map<std::string, double>> owner_factor;
    for (const PendingJob& job : snap.pending) owner_factor[job.group].try_emplace(job.user, 0.0);
    std::set<Account> active;
    for (const auto& [group, users] : owner_factor) {
      for (const auto& [user, _] : users) active.insert({group, user});
    }
    std::map<Account, double> factor_of;
    for (const FairShareRow& row : FairTree(fairshare_, snap.usage, active, now)) {
      factor_of[row.account] = row.factor;
    }
    for (auto& [group, users] : owner_factor) {
      for (auto& [user, factor] : users) {
        auto fs = factor_of.find(EffectiveAccount(fairshare_, {group, user}));
        factor = fs == factor_of.end() ? 0 : fs->second;
      }
    }
    const double total_rate = UsageRate(snap.cluster_total, fairshare_);

    std::vector<RankedJob> out;
    out.reserve(snap.pending.size());
    for (const PendingJob& job : snap.pending) {
      RankedJob r;
      r.id = job.id;
      PriorityFactors& f = r.factors;
      f.fairshare = owner_factor.find(job.group)->second.find(job.user)->second;
      const double waited = static_cast<double>(now - job.submit_time);
      f.age = std::clamp(waited / (static_cast<double>(weights_.age_cap_s) * 1000.0), 0.0, 1.0);
      const double size =
          total_rate > 0 ? std::clamp(UsageRate(job.request, fairshare_) / total_rate, 0.0, 1.0)
                         : 0.0;
      f.job_size = weights_.favor_small ? 1 - size : size;
      int p = std::clamp(job.user_priority, kMinUserPriority, kMaxUserPriority);
      if (!job.priority_set_by_admin) p = std::min(p, 0);
      f.user = static_cast<double>(p - kMinUserPriority) / (kMaxUserPriority - kMinUserPriority);
      auto q = queue_priority_.find(job.queue);
      f.queue = (q == queue_priority_.end() || max_queue_priority_ == 0)
                    ? 0.0
                    : static_cast<double>(q->second) / static_cast<double>(max_queue_priority_);
      r.priority = weights_.fairshare * f.fairshare + weights_.age * f.age +
                   weights_.job_size * f.job_size + weights_.user * f.user +
                   weights_.queue * f.queue;
      out.push_back(r);
    }
    if (best < out.size()) {
      // The best `best` to the front (in any order), then only those sorted.
      std::nth_element(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(best), out.end(),
                       RankedBefore);
      std::sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(best), RankedBefore);
    } else {
      std::sort(out.begin(), out.end(), RankedBefore);
    }
    return out;
  }

 private:
  FairSharePolicy fairshare_;
  PriorityWeights weights_;
  std::map<std::string, int64_t> queue_priority_;
  int64_t max_queue_priority_ = 0;
};

std::string Term(const char* name, double weight, double factor) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s %g x %.2f", name, weight, factor);
  return buf;
}

}  // namespace

std::unique_ptr<Prioritizer> MakePrioritizer(const Policy& policy) {
  return std::make_unique<MultifactorPrioritizer>(policy);
}

std::string DescribePriority(const RankedJob& job, const PriorityWeights& w) {
  char head[64];
  std::snprintf(head, sizeof head, "priority %.1f", job.priority);
  std::string out = head;
  const char* sep = " = ";
  auto add = [&](const char* name, double weight, double factor) {
    if (weight == 0) return;
    out += sep + Term(name, weight, factor);
    sep = " + ";
  };
  add("fairshare", w.fairshare, job.factors.fairshare);
  add("age", w.age, job.factors.age);
  add("job size", w.job_size, job.factors.job_size);
  add("user", w.user, job.factors.user);
  add("queue", w.queue, job.factors.queue);
  return out;
}

std::vector<PendingJob> InPriorityOrder(std::vector<PendingJob> pending,
                                        const std::vector<RankedJob>& ranked) {
  std::unordered_map<JobId, size_t> index;
  index.reserve(pending.size());
  for (size_t i = 0; i < pending.size(); ++i) index[pending[i].id] = i;
  std::vector<PendingJob> out;
  out.reserve(ranked.size());
  for (const RankedJob& r : ranked) {
    auto it = index.find(r.id);
    if (it != index.end()) out.push_back(std::move(pending[it->second]));
  }
  return out;
}

}  // namespace corral
