// The backfill planner (algorithm in planner.h). One Pass object per Plan() call holds the
// profiles and per-pass caches; nothing outlives the call.
#include "policies/planner.h"

#include <algorithm>
#include <unordered_map>

#include "policies/availability.h"
#include "policies/limits.h"
#include "policies/plan_text.h"
#include "policies/queues.h"

namespace corral {
namespace {

using planning::Amounts;
using planning::Availability;
using planning::EndOf;
using planning::InText;
using planning::kNever;
using planning::RequestText;

using planning::NameTable;
using planning::ToAmounts;

struct NodeSlot {
  const NodeView* view;
  Amounts total;
  Availability profile;
};

// The nodes a job may use, by (features, queue, asks for GPUs), in the job's node order.
struct Candidates {
  std::vector<size_t> available;
  std::vector<size_t> unavailable;
};

// What one pass has learnt about a job shape (request, features, queue, wall time).
struct ShapeInfo {
  bool checked = false;
  std::string never;        // why it can never run on this cluster; empty if it can
  bool failed_now = false;  // does not start now (stays true: free resources only shrink)
  TimeMs earliest = 0;      // no fit before this (likewise)
};

class Pass {
 public:
  Pass(const PlannerPolicy& settings, const LimitsPolicy& limits,
       const std::map<std::string, QueuePolicy>& queues, const PlanSnapshot& snap, TimeMs now)
      : settings_(settings), limits_(limits), queues_(queues), now_(now),
        count_limits_(AnyRunLimit(limits)) {
    for (const NodeView& n : snap.nodes) {
      for (const auto& [name, _] : n.total.consumables) node_names_.try_emplace(name, 0);
    }
    size_t i = 0;
    for (auto& [name, index] : node_names_) index = i++;
    i = 0;
    for (const auto& [name, _] : snap.pool_total) pool_names_[name] = i++;

    auto amounts = [this](const Resources& r) {
      Amounts a;
      ToAmounts(r, node_names_, a);
      return a;
    };
    std::vector<const NodeView*> sorted;
    for (const NodeView& n : snap.nodes) sorted.push_back(&n);
    std::sort(sorted.begin(), sorted.end(),
              [](const NodeView* a, const NodeView* b) { return a->name < b->name; });
    for (size_t n = 0; n < sorted.size(); ++n) node_at_[sorted[n]->name] = n;

    // Each running job gives back what it holds at its expected end, on its node and in the
    // pool. The profiles are built from those releases sorted by time (O(k log k)), not by
    // inserting each into a growing profile (O(k x steps)); only what holds a cluster-wide
    // consumable is released into the pool.
    std::vector<Amounts> held(snap.running.size()), pool_held;
    std::vector<std::vector<planning::Freed>> on_node(sorted.size());
    std::vector<planning::Freed> to_pool;
    pool_held.reserve(snap.running.size());  // (the Freed entries point into it)
    for (size_t k = 0; k < snap.running.size(); ++k) {
      const RunningJob& job = snap.running[k];
      const TimeMs end = std::max(EndOf(job.start_time, DurationMs(job.h_rt_s)), now + 1);
      if (count_limits_) {
        Count(user_counts_[job.user], job.alloc);
        Count(group_counts_[job.group], job.alloc);
      }
      auto at = node_at_.find(job.node);
      if (at != node_at_.end() && sorted[at->second]->available) {
        ToAmounts(job.alloc, node_names_, held[k]);
        on_node[at->second].push_back({end, &held[k]});
      }
      if (job.cluster_alloc.empty()) continue;
      ToAmounts(job.cluster_alloc, pool_names_, pool_held.emplace_back());
      to_pool.push_back({end, &pool_held.back()});
    }
    nodes_.reserve(sorted.size());
    for (size_t n = 0; n < sorted.size(); ++n) {
      nodes_.push_back({sorted[n], amounts(sorted[n]->total),
                        Availability(now, amounts(sorted[n]->free), on_node[n])});
    }
    Amounts pool_free;
    ToAmounts(snap.pool_free, pool_names_, pool_free);
    ToAmounts(snap.pool_total, pool_names_, pool_total_);
    pool_ = Availability(now, pool_free, to_pool);
    UpdateMaxFree();
  }

  PlanResult Run(const std::vector<PendingJob>& pending) {
    PlanResult out;
    for (const PendingJob& job : pending) {
      if (out.examined >= settings_.max_jobs_per_pass) break;
      ++out.examined;
      if (!Visit(job, out)) break;
    }
    return out;
  }

 private:
  int64_t DurationMs(int64_t h_rt_s) const {
    const int64_t s = h_rt_s > 0 ? h_rt_s : settings_.default_runtime_s;
    return s > 0 ? s * 1000 : kNever;
  }

  static void Count(LimitCounts& c, const Resources& r) {
    ++c.running_jobs;
    c.cores += r.cores;
    c.gpus += r.gpus;
  }

  // Handles one job; false ends the pass.
  bool Visit(const PendingJob& job, PlanResult& out) {
    std::string& reason = out.reasons[job.id];
    auto wait = [&reason](std::string why) {  // the job waits; the pass goes on
      reason = std::move(why);
      return true;
    };
    if (count_limits_) {
      reason = RunLimitReason(limits_, job.user, job.group, user_counts_[job.user],
                              group_counts_[job.group], job.request);
      if (!reason.empty()) return true;
    }
    const QueuePolicy* queue = nullptr;
    if (!job.queue.empty()) {
      auto q = queues_.find(job.queue);
      if (q == queues_.end()) return wait("no queue '" + job.queue + "'");
      queue = &q->second;
    }
    std::string unknown;
    Amounts need, pool_need;
    if (!ToAmounts(job.request, node_names_, need, &unknown)) {
      return wait("no node offers " + unknown);
    }
    if (!ToAmounts(job.cluster_request, pool_names_, pool_need, &unknown)) {
      return wait("no cluster-wide consumable " + unknown + " is configured");
    }
    const int64_t duration = DurationMs(job.h_rt_s);
    const std::string cands_key = CandidatesKey(job);
    const Candidates& cands = CandidatesFor(cands_key, job, queue);
    ShapeInfo& shape = shapes_[ShapeKey(cands_key, need, pool_need, duration)];
    if (!shape.checked) {
      shape.checked = true;
      shape.never = NeverReason(job, queue, cands, need, pool_need);
      shape.earliest = now_;
    }
    if (!shape.never.empty()) return wait(shape.never);

    const TimeMs end = EndOf(now_, duration);
    if (!shape.failed_now) {
      if (std::optional<size_t> node = FitNow(cands, need, pool_need, end)) {
        Start(job, *node, need, pool_need, end, out);
        out.reasons.erase(job.id);
        return true;
      }
      shape.failed_now = true;
    }
    reason = Waiting(job, cands, need, pool_need);
    const int depth = settings_.reservation_depth;
    const bool reserve = reserved_ < depth;
    if (reserve || depth == 0) {
      auto [t, node] = Earliest(cands, need, pool_need, duration, shape.earliest);
      shape.earliest = t;
      if (t == kNever) {
        reason += duration == kNever
                      ? "; no expected start: it has no wall-time limit, and every node it "
                        "could use is reserved later or held indefinitely"
                      : "; no expected start: the nodes it could use are held indefinitely "
                        "(jobs without a wall-time limit)";
      } else {
        reason += "; expected to start in " + InText(t - now_) + " on " + nodes_[node].view->name;
        if (reserve) {
          nodes_[node].profile.Take(need, t, EndOf(t, duration));
          if (!pool_need.IsZero()) pool_.Take(pool_need, t, EndOf(t, duration));
          out.reservations.push_back({job.id, nodes_[node].view->name, t});
          ++reserved_;
        }
      }
    }
    if (depth == 0) {
      out.stopped_at = job.id;
      return false;
    }
    if (!reserve) {
      reason += "; not reserved (reservation depth " + std::to_string(depth) + " reached)";
    }
    return true;
  }

  static std::string CandidatesKey(const PendingJob& job) {
    std::vector<std::string> f = job.features;
    std::sort(f.begin(), f.end());
    std::string key = job.queue + "|" + (job.request.gpus > 0 ? "g" : "c");
    for (const std::string& name : f) key += "|" + name;
    return key;
  }

  const Candidates& CandidatesFor(const std::string& key, const PendingJob& job,
                                  const QueuePolicy* queue) {
    auto [it, fresh] = candidates_.try_emplace(key);
    if (!fresh) return it->second;
    std::vector<std::string> want = job.features;
    std::sort(want.begin(), want.end());
    for (size_t i = 0; i < nodes_.size(); ++i) {
      const NodeView& n = *nodes_[i].view;
      if (!std::includes(n.features.begin(), n.features.end(), want.begin(), want.end())) continue;
      if (queue && !QueueHasNode(*queue, n.name, n.features)) continue;
      (n.available ? it->second.available : it->second.unavailable).push_back(i);
    }
    if (job.request.gpus == 0) {  // keep GPU nodes for GPU jobs where there is a choice
      std::stable_partition(it->second.available.begin(), it->second.available.end(),
                            [&](size_t i) { return nodes_[i].total.gpus == 0; });
    }
    return it->second;
  }

  static std::string ShapeKey(const std::string& cands_key, const Amounts& need,
                              const Amounts& pool_need, int64_t duration) {
    std::string key = cands_key + "#" + std::to_string(need.cores) + "," +
                      std::to_string(need.mem_mb) + "," + std::to_string(need.gpus) + "," +
                      std::to_string(duration);
    for (int64_t x : need.extra) key += "," + std::to_string(x);
    key += "#";
    for (int64_t x : pool_need.extra) key += "," + std::to_string(x);
    return key;
  }

  std::string NeverReason(const PendingJob& job, const QueuePolicy* queue, const Candidates& cands,
                          const Amounts& need, const Amounts& pool_need) const {
    const std::string in_queue = queue ? " in queue " + queue->name : "";
    if (cands.available.empty() && cands.unavailable.empty()) {
      if (!job.features.empty()) {
        return std::string("no node") + in_queue + " has " +
               (job.features.size() == 1 ? "feature " : "features ") +
               planning::ListText(job.features);
      }
      return queue ? "queue " + queue->name + " has no nodes" : "there are no nodes";
    }
    auto big = [&](size_t i) { return nodes_[i].total.Covers(need); };
    if (std::none_of(cands.available.begin(), cands.available.end(), big)) {
      const auto down = std::count_if(cands.unavailable.begin(), cands.unavailable.end(), big);
      const std::string what = RequestText(job.request, {});
      if (down > 0) {
        return "the " + std::to_string(down) + " eligible node(s) with " + what +
               " are unavailable (down or disabled)";
      }
      if (cands.available.empty()) return "every eligible node is unavailable (down or disabled)";
      Resources largest;
      for (size_t i : cands.available) {
        largest.cores = std::max<int>(largest.cores, static_cast<int>(nodes_[i].total.cores));
        largest.mem_mb = std::max(largest.mem_mb, nodes_[i].total.mem_mb);
        largest.gpus = std::max<int>(largest.gpus, static_cast<int>(nodes_[i].total.gpus));
      }
      return "no eligible node" + in_queue + " has " + what +
             " (largest: " + RequestText(largest, {}) + ")";
    }
    if (!pool_total_.Covers(pool_need)) {
      return "needs " + RequestText({}, job.cluster_request) +
             " but the cluster-wide pool is smaller";
    }
    return "";
  }

  std::optional<size_t> FitNow(const Candidates& cands, const Amounts& need,
                               const Amounts& pool_need, TimeMs end) const {
    if (!FitsMaxFree(need)) return std::nullopt;
    if (!pool_need.IsZero() && !pool_.FitsDuring(pool_need, now_, end)) return std::nullopt;
    for (size_t i : cands.available) {
      const Availability& p = nodes_[i].profile;
      if (p.Now().Covers(need) && p.FitsDuring(need, now_, end)) return i;
    }
    return std::nullopt;
  }

  // The earliest (time, node) where the job fits for its whole run, node order on ties.
  std::pair<TimeMs, size_t> Earliest(const Candidates& cands, const Amounts& need,
                                     const Amounts& pool_need, int64_t duration,
                                     TimeMs from) const {
    TimeMs best = kNever;
    size_t best_node = 0;
    const bool pool = !pool_need.IsZero();
    for (size_t i : cands.available) {
      if (from >= best) break;
      if (!nodes_[i].total.Covers(need)) continue;
      TimeMs t = from;
      while (t != kNever) {  // alternate node and pool until both agree
        t = nodes_[i].profile.EarliestFit(need, duration, t, best);
        if (t == kNever || !pool) break;
        const TimeMs p = pool_.EarliestFit(pool_need, duration, t, best);
        if (p == t) break;
        t = p;
      }
      if (t < best) {
        best = t;
        best_node = i;
      }
    }
    return {best, best_node};
  }

  std::string Waiting(const PendingJob& job, const Candidates& cands, const Amounts& need,
                      const Amounts& pool_need) const {
    const std::string what = "waiting for " + RequestText(job.request, job.cluster_request);
    if (!pool_.Now().Covers(pool_need)) {
      std::vector<std::string> short_of;
      for (const auto& [name, i] : pool_names_) {
        const int64_t want = i < pool_need.extra.size() ? pool_need.extra[i] : 0;
        const int64_t free = i < pool_.Now().extra.size() ? pool_.Now().extra[i] : 0;
        const int64_t total = i < pool_total_.extra.size() ? pool_total_.extra[i] : 0;
        if (want > free) {
          short_of.push_back(name + " " + std::to_string(std::max<int64_t>(free, 0)) + " of " +
                             std::to_string(total) + " free");
        }
      }
      return what + " (cluster-wide: " + planning::ListText(short_of) + ")";
    }
    for (size_t i : cands.available) {
      if (!FitsMaxFree(need)) break;  // free nowhere: spare the scan
      if (nodes_[i].profile.Now().Covers(need)) {
        return what + " (free now on " + nodes_[i].view->name +
               ", but starting it would delay a reserved higher-priority job)";
      }
    }
    const size_t n = cands.available.size();
    if (n == 1) {
      return what + " (" + nodes_[cands.available[0]].view->name + " does not have that free now)";
    }
    return what + " (none of the " + std::to_string(n) + " eligible nodes has that free now)";
  }

  void Start(const PendingJob& job, size_t node, const Amounts& need, const Amounts& pool_need,
             TimeMs end, PlanResult& out) {
    nodes_[node].profile.Take(need, now_, end);
    if (!pool_need.IsZero()) pool_.Take(pool_need, now_, end);
    if (count_limits_) {
      Count(user_counts_[job.user], job.request);
      Count(group_counts_[job.group], job.request);
    }
    out.starts.push_back({job.id, nodes_[node].view->name, now_});
    UpdateMaxFree();
  }

  // False when no available node has `need`'s cores, memory or GPUs free now.
  bool FitsMaxFree(const Amounts& need) const {
    return need.cores <= max_free_.cores && need.mem_mb <= max_free_.mem_mb &&
           need.gpus <= max_free_.gpus;
  }

  // The largest free cores, memory and GPUs of any one available node, now: a job needing
  // more cannot start anywhere, whatever its features.
  void UpdateMaxFree() {
    max_free_ = Amounts{};
    for (const NodeSlot& n : nodes_) {
      if (!n.view->available) continue;
      max_free_.cores = std::max(max_free_.cores, n.profile.Now().cores);
      max_free_.mem_mb = std::max(max_free_.mem_mb, n.profile.Now().mem_mb);
      max_free_.gpus = std::max(max_free_.gpus, n.profile.Now().gpus);
    }
  }

  const PlannerPolicy& settings_;
  const LimitsPolicy& limits_;
  const std::map<std::string, QueuePolicy>& queues_;
  const TimeMs now_;
  const bool count_limits_;  // some limit can keep a job from starting: count what runs
  NameTable node_names_, pool_names_;
  std::vector<NodeSlot> nodes_;  // by name
  std::unordered_map<std::string, size_t> node_at_;  // looked up once per running job
  Availability pool_;
  Amounts pool_total_;
  Amounts max_free_;
  std::unordered_map<std::string, LimitCounts> user_counts_, group_counts_;  // never iterated
  std::unordered_map<std::string, Candidates> candidates_;
  std::unordered_map<std::string, ShapeInfo> shapes_;
  int reserved_ = 0;
};

class BackfillPlanner final : public Planner {
 public:
  BackfillPlanner(const Policy& policy, bool will_run)
      : settings_(policy.planner), limits_(policy.limits), queues_(policy.queues) {
    if (will_run) settings_.reservation_depth = kUnlimitedDepth;
  }

  PlanResult Plan(const PlanSnapshot& snapshot, TimeMs now) const override {
    return Pass(settings_, limits_, queues_, snapshot, now).Run(snapshot.pending);
  }

 private:
  PlannerPolicy settings_;
  LimitsPolicy limits_;
  std::map<std::string, QueuePolicy> queues_;
};

}  // namespace

std::unique_ptr<Planner> MakePlanner(const Policy& policy) {
  return std::make_unique<BackfillPlanner>(policy, false);
}

std::unique_ptr<Planner> MakeWillRunPlanner(const Policy& policy) {
  return std::make_unique<BackfillPlanner>(policy, true);
}

}  // namespace corral
