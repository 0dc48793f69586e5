#include "scheduler/ranked_queue.h"

#include <queue>
#include <tuple>

#include "scheduler/requests.h"

namespace corral {

bool RankClass::operator<(const RankClass& o) const {
  return std::tie(owner, project, queue, priority, request.cores, request.mem_mb, request.gpus,
                  request.consumables) < std::tie(o.owner, o.project, o.queue, o.priority,
                                                  o.request.cores, o.request.mem_mb,
                                                  o.request.gpus, o.request.consumables);
}

void IndexRanked(ClusterState& state, const Job& job, int sign) {
  const JobSpec& s = job.spec;
  const bool walked = job.IsArray() || !s.after_ok.empty() || !s.after_notok.empty() ||
                      !s.after_any.empty() || !s.after_tasks.empty();
  if (walked) {
    if (sign > 0) {
      state.queued_walked.insert(job.id);
    } else {
      state.queued_walked.erase(job.id);
    }
    return;
  }
  RankClass key{job.owner, s.project, s.queue, s.priority, s.request};
  if (sign > 0) {
    state.queued_by_class[std::move(key)].insert({job.submit_time, job.id});
    return;
  }
  auto it = state.queued_by_class.find(key);
  if (it == state.queued_by_class.end()) return;
  it->second.erase({job.submit_time, job.id});
  if (it->second.empty()) state.queued_by_class.erase(it);
}

PendingJob PendingView(const Job& owner_job, const JobSpec& spec, const std::string& group,
                       const CoreConfig& config) {
  PendingJob p;
  p.user = owner_job.owner;
  p.group = group;
  p.submit_time = owner_job.submit_time;
  p.request = NodePart(spec.request, config);
  p.cluster_request = ClusterPart(spec.request, config);
  p.features = spec.features;
  p.h_rt_s = spec.h_rt_s;
  p.queue = spec.queue;
  p.user_priority = spec.priority;
  p.priority_set_by_admin = spec.priority > 0;  // Submit refuses it from anyone else
  return p;
}

std::vector<JobId> BestOfClasses(const ClusterState& state, const PassScorer& scorer, size_t best,
                                 const std::function<PendingJob(const Job&)>& view) {
  std::vector<JobId> out;
  if (best == 0) return out;
  using Members = std::set<std::pair<TimeMs, JobId>>;
  struct Head {
    double priority;
    size_t cls;  // into `likes` and `next`
  };
  auto lower = [](const Head& a, const Head& b) { return a.priority < b.priority; };
  std::priority_queue<Head, std::vector<Head>, decltype(lower)> heads(lower);
  std::vector<PendingJob> likes;  // each class's view; id and submit time set per member
  std::vector<std::pair<Members::const_iterator, Members::const_iterator>> next;  // head, end
  likes.reserve(state.queued_by_class.size());
  next.reserve(state.queued_by_class.size());
  auto score = [&](size_t cls) {
    PendingJob& like = likes[cls];
    like.submit_time = next[cls].first->first;
    like.id = next[cls].first->second;
    heads.push({scorer.Score(like).priority, cls});
  };
  for (const auto& [key, members] : state.queued_by_class) {
    likes.push_back(view(state.jobs.at(members.begin()->second)));
    next.emplace_back(members.begin(), members.end());
    score(likes.size() - 1);
  }
  // Each class's priorities do not increase along it, so heads come off in non-increasing
  // priority order: once `best` are taken, only heads tied with the last of them remain.
  double last = 0;
  while (!heads.empty()) {
    const Head top = heads.top();
    if (out.size() >= best && top.priority < last) break;
    heads.pop();
    out.push_back(next[top.cls].first->second);
    if (out.size() == best) last = top.priority;
    if (++next[top.cls].first != next[top.cls].second) score(top.cls);
  }
  return out;
}

}  // namespace corral
