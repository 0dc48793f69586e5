// The multifactor prioritizer (formula in priority.h).
#include "policies/priority.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>

namespace corral {
namespace {

constexpr int kMinUserPriority = -1023;
constexpr int kMaxUserPriority = 1024;

// What the formula needs of the policy, shared by the prioritizer and its pass scorers (a
// scorer kept with a pass may outlive a reloaded prioritizer).
struct Formula {
  FairSharePolicy fairshare;
  PriorityWeights weights;
  std::map<std::string, int64_t> queue_priority;
  int64_t max_queue_priority = 0;
};

class MultifactorScorer final : public PassScorer {
 public:
  // Fair Tree once per pass over the active accounts (users, not jobs, so cheap), and each
  // account's factor kept by group, then user (hashed: cheaper than comparing names down a
  // tree for each of 100k jobs).
  MultifactorScorer(std::shared_ptr<const Formula> formula, const PrioritySnapshot& snap,
                    TimeMs now)
      : f_(std::move(formula)), now_(now), total_rate_(UsageRate(snap.cluster_total, f_->fairshare)) {
    std::set<Account> active = snap.also_active;
    for (const PendingJob& job : snap.pending) {
      if (owner_factor_[job.group].try_emplace(job.user, 0.0).second) active.insert({job.group, job.user});
    }
    for (const Account& a : snap.also_active) owner_factor_[a.group].try_emplace(a.user, 0.0);
    std::map<Account, double> factor_of;
    for (const FairShareRow& row : FairTree(f_->fairshare, snap.usage, active, now)) {
      factor_of[row.account] = row.factor;
    }
    for (auto& [group, users] : owner_factor_) {
      for (auto& [user, factor] : users) {
        auto fs = factor_of.find(EffectiveAccount(f_->fairshare, {group, user}));
        factor = fs == factor_of.end() ? 0 : fs->second;
      }
    }
  }

  RankedJob Score(const PendingJob& job) const override {
    const PriorityWeights& w = f_->weights;
    RankedJob r;
    r.id = job.id;
    PriorityFactors& f = r.factors;
    if (auto g = owner_factor_.find(job.group); g != owner_factor_.end()) {
      if (auto u = g->second.find(job.user); u != g->second.end()) f.fairshare = u->second;
    }
    const double waited = static_cast<double>(now_ - job.submit_time);
    f.age = std::clamp(waited / (static_cast<double>(w.age_cap_s) * 1000.0), 0.0, 1.0);
    const double size =
        total_rate_ > 0 ? std::clamp(UsageRate(job.request, f_->fairshare) / total_rate_, 0.0, 1.0)
                        : 0.0;
    f.job_size = w.favor_small ? 1 - size : size;
    int p = std::clamp(job.user_priority, kMinUserPriority, kMaxUserPriority);
    if (!job.priority_set_by_admin) p = std::min(p, 0);
    f.user = static_cast<double>(p - kMinUserPriority) / (kMaxUserPriority - kMinUserPriority);
    auto q = f_->queue_priority.find(job.queue);
    f.queue = (q == f_->queue_priority.end() || f_->max_queue_priority == 0)
                  ? 0.0
                  : static_cast<double>(q->second) / static_cast<double>(f_->max_queue_priority);
    r.priority = w.fairshare * f.fairshare + w.age * f.age + w.job_size * f.job_size +
                 w.user * f.user + w.queue * f.queue;
    return r;
  }

 private:
  std::shared_ptr<const Formula> f_;
  TimeMs now_;
  double total_rate_;
  std::unordered_map<std::string, std::unordered_map<std::string, double>> owner_factor_;
};

class MultifactorPrioritizer final : public Prioritizer {
 public:
  explicit MultifactorPrioritizer(const Policy& policy) {
    auto f = std::make_shared<Formula>();
    f->fairshare = policy.fairshare;
    f->weights = policy.priority;
    for (const auto& [name, q] : policy.queues) {
      f->queue_priority[name] = q.priority;
      f->max_queue_priority = std::max(f->max_queue_priority, q.priority);
    }
    const PriorityWeights& w = f->weights;
    // Within a class (same user, group, request, queue, -p) only the age differs, and
    // w_age * age plus the same other terms is non-decreasing in age when w_age >= 0 (each
    // rounding is monotone); with a cap of 0 or weights that are not finite it may not be.
    by_class_ = w.age >= 0 && w.age_cap_s > 0 &&
                std::isfinite(w.fairshare) && std::isfinite(w.age) &&
                std::isfinite(w.job_size) && std::isfinite(w.user) && std::isfinite(w.queue);
    formula_ = std::move(f);
  }

  std::vector<RankedJob> Rank(const PrioritySnapshot& snap, TimeMs now) const override {
    return RankBest(snap, now, snap.pending.size());
  }

  std::vector<RankedJob> RankBest(const PrioritySnapshot& snap, TimeMs now,
                                  size_t best) const override {
    const MultifactorScorer scorer(formula_, snap, now);
    std::vector<RankedJob> out;
    out.reserve(snap.pending.size());
    for (const PendingJob& job : snap.pending) out.push_back(scorer.Score(job));
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

  std::unique_ptr<const PassScorer> ScorerByClass(const PrioritySnapshot& snap,
                                                  TimeMs now) const override {
    if (!by_class_) return nullptr;
    return std::make_unique<MultifactorScorer>(formula_, snap, now);
  }

 private:
  std::shared_ptr<const Formula> formula_;
  bool by_class_ = false;
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
