// Job listings, one page at a time. The walk goes over candidate job ids in ascending
// order from the smallest source that holds every match (one owner's ids, the active
// indexes, or every job), and over each array's dispatched tasks, resuming strictly after
// the cursor: the cost of a page is what it examines, bounded by QueryScanBudget().
#include "scheduler/query.h"

#include <algorithm>
#include <limits>

#include "scheduler/authz.h"
#include "scheduler/policy_queries.h"

namespace corral {
namespace {

using StateMask = uint32_t;  // bit 1 << JobState; 0 = any state
StateMask Bit(JobState s) { return StateMask{1} << static_cast<int>(s); }

Result<StateMask> MaskOf(const std::vector<std::string>& names) {
  StateMask mask = 0;
  for (const std::string& name : names) {
    std::optional<JobState> s = StateFromName(name);
    if (!s) return Error(Code::kInvalidArgument, "query: states: '" + name + "' is not a job state");
    mask |= Bit(*s);
  }
  return mask;
}

// Ascending candidate job ids from one source, from `from` on (inclusive).
class Candidates {
 public:
  // A sorted list of ids (one owner's, or the asked-for ids).
  Candidates(const std::vector<JobId>& ids, JobId from)
      : list_(&ids), at_(std::lower_bound(ids.begin(), ids.end(), from) - ids.begin()) {}
  // Every job.
  Candidates(const ClusterState& state, JobId from)
      : all_(&state.jobs), it_(state.jobs.lower_bound(from)) {}
  // The active indexes: waiting (queued, held) and/or running units' jobs.
  Candidates(const ClusterState& state, bool waiting, bool running, JobId from)
      : state_(&state), waiting_(waiting), running_(running),
        queued_(state.queued.lower_bound(from)), held_(state.held.lower_bound(from)),
        run_(state.running.lower_bound({from, 0})) {}

  std::optional<JobId> Next() {
    if (list_ != nullptr) {
      if (at_ >= list_->size()) return std::nullopt;
      return (*list_)[at_++];
    }
    if (all_ != nullptr) {
      if (it_ == all_->end()) return std::nullopt;
      return (it_++)->first;
    }
    constexpr JobId kNone = std::numeric_limits<JobId>::max();
    JobId q = waiting_ && queued_ != state_->queued.end() ? *queued_ : kNone;
    JobId h = waiting_ && held_ != state_->held.end() ? *held_ : kNone;
    JobId r = running_ && run_ != state_->running.end() ? run_->job : kNone;
    const JobId id = std::min({q, h, r});
    if (id == kNone) return std::nullopt;
    if (q == id) ++queued_;
    if (h == id) ++held_;
    while (running_ && run_ != state_->running.end() && run_->job == id) ++run_;
    return id;
  }

 private:
  const std::vector<JobId>* list_ = nullptr;
  size_t at_ = 0;
  const JobMap* all_ = nullptr;
  JobMap::const_iterator it_;
  const ClusterState* state_ = nullptr;
  bool waiting_ = false, running_ = false;
  std::set<JobId>::const_iterator queued_, held_;
  std::set<UnitKey>::const_iterator run_;
};

size_t Strings(const std::vector<std::string>& v) {
  size_t n = 0;
  for (const std::string& s : v) n += s.size() + 3;
  return n;
}
size_t Strings(const std::map<std::string, std::string>& m) {
  size_t n = 0;
  for (const auto& [k, v] : m) n += k.size() + v.size() + 6;
  return n;
}

}  // namespace

int64_t QueryScanBudget(int64_t limit) { return std::max<int64_t>(10 * limit, 1000); }

size_t ApproxRecordBytes(const Job& job) {
  const JobSpec& s = job.spec;
  // The fixed keys and numbers of a record with its spec come to about 800 bytes.
  size_t n = 800 + job.owner.size() + job.node.size() + job.reason.size() + job.params.size() +
             job.result.size() + job.result_error.size() + s.name.size() + s.shell.size() +
             s.cwd.size() + s.stdout_path.size() + s.stderr_path.size() + s.queue.size() +
             s.project.size() + Strings(s.args) + Strings(s.env) + Strings(s.other_resources) +
             Strings(s.features) + 12 * (job.alloc_cores.size() + job.alloc_gpus.size()) +
             21 * (s.after_any.size() + s.after_ok.size() + s.after_notok.size() +
                   s.after_tasks.size()) +
             24 * job.pending.size();
  for (const auto& [name, count] : s.request.consumables) n += name.size() + 24;
  for (const Attempt& a : job.attempts) n += 110 + a.node.size() + a.exit_reason.size();
  return n;
}

void IndexOwner(ClusterState& state, const Job& job) {
  std::vector<JobId>& ids = state.by_owner[job.owner];
  // Ids are handed out in increasing order, so this appends; a store loaded out of order
  // (or a test) still gets a sorted list.
  if (ids.empty() || ids.back() < job.id) {
    ids.push_back(job.id);
    return;
  }
  auto at = std::lower_bound(ids.begin(), ids.end(), job.id);
  if (at == ids.end() || *at != job.id) ids.insert(at, job.id);
}

Result<QueryReply> ListJobs(const ClusterState& state, const QueryRequest& req,
                            const Caller& caller, const CoreConfig& config, TimeMs now) {
  Result<StateMask> mask = MaskOf(req.states);
  if (!mask) return std::unexpected(mask.error());
  constexpr StateMask kWaiting = (StateMask{1} << static_cast<int>(JobState::kQueued)) |
                                 (StateMask{1} << static_cast<int>(JobState::kHeld));
  const StateMask kRunningBit = Bit(JobState::kRunning);
  const StateMask kFinal =
      Bit(JobState::kCompleted) | Bit(JobState::kFailed) | Bit(JobState::kCancelled);

  QueryReply reply;
  const bool paged = req.limit > 0;
  const int64_t limit = paged ? std::min(req.limit, kMaxQueryPage) : 0;
  const int64_t budget = paged ? QueryScanBudget(limit) : 0;
  const UnitKey after = paged && req.after ? *req.after : UnitKey{0, 0};
  size_t bytes = 0;
  int64_t examined = 0;
  UnitKey last = after;
  bool full = false;

  auto matches = [&](const Job& unit) {
    if (!req.include_finished && IsFinal(unit.state)) return false;
    return *mask == 0 || (*mask & Bit(unit.state)) != 0;
  };
  // Whose jobs: checked on the job's own record; an array's tasks go with it.
  auto visible = [&](const Job& job) {
    if (!req.user.empty() && job.owner != req.user) return false;
    return MaySee(caller, job, config);
  };
  auto emit = [&](const Job& unit) {
    if (unit.task != 0) {
      reply.jobs.push_back(unit);
    } else {
      Job copy = unit;
      copy.spec.script.clear();  // never shipped to clients; keeps replies small
      copy.spec.sweep.clear();
      if (auto w = state.waiting.find(unit.id);
          w != state.waiting.end() && copy.reason.empty() && !IsFinal(unit.state)) {
        copy.reason = w->second;  // why it waits, from the last scheduling pass
      }
      // qstat -j of a waiting job: when the planner, in will-run mode, expects it to start.
      if (!req.ids.empty() && unit.state == JobState::kQueued &&
          copy.reason.find("expected to start") == std::string::npos) {
        if (std::string when = Forecast(state, config, unit.id, now); !when.empty()) {
          copy.reason += (copy.reason.empty() ? "" : "; ") + when;
        }
      }
      reply.jobs.push_back(std::move(copy));
    }
    if (paged) bytes += ApproxRecordBytes(reply.jobs.back());
  };
  // Examines one unit; false once the page is full (or an unpaged reply too large).
  auto visit = [&](const Job& unit) {
    ++examined;
    last = KeyOf(unit);
    if (matches(unit)) emit(unit);
    if (!paged) {
      full = reply.jobs.size() > kMaxUnpagedRecords;
    } else {
      full = static_cast<int64_t>(reply.jobs.size()) >= limit || bytes >= kQueryPageBytes ||
             examined >= budget;
    }
    return !full;
  };
  // Only running units wanted: an array's running tasks are in state.running.
  const bool running_only = *mask == kRunningBit;
  // The units of `job` after the cursor: its own record, then its dispatched tasks.
  auto list_job = [&](const Job& job) {
    if (KeyOf(job) > after && !visit(job)) return false;
    if (!job.IsArray() || req.without_tasks) return true;
    if (!req.include_finished && IsFinal(job.state)) return true;
    const UnitKey from{job.id, after.job == job.id ? std::max<TaskId>(after.task + 1, 1) : 1};
    if (running_only) {
      for (auto it = state.running.lower_bound(from); it != state.running.end() && it->job == job.id;
           ++it) {
        if (!visit(state.tasks.at(*it))) return false;
      }
      return true;
    }
    for (auto it = state.tasks.lower_bound(from); it != state.tasks.end() && it->first.job == job.id;
         ++it) {
      if (!visit(it->second)) return false;
    }
    return true;
  };
  // A job id to consider: false once the page is full.
  auto consider = [&](JobId id, bool report_missing) {
    auto it = state.jobs.find(id);
    const bool fresh = UnitKey{id, 0} > after;  // its record is not on an earlier page
    if (it == state.jobs.end() || !visible(it->second) ||
        (report_missing && !req.include_finished && IsFinal(it->second.state))) {
      if (report_missing && fresh) reply.missing.push_back(id);
      if (!fresh) return true;
      ++examined;
      last = {id, 0};
      full = paged && examined >= budget;
      return !full;
    }
    return list_job(it->second);
  };

  if (!req.ids.empty() && !paged) {
    for (JobId id : req.ids) {
      if (!consider(id, true)) break;
    }
  } else if (!req.ids.empty()) {
    std::vector<JobId> ids = req.ids;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    Candidates c(ids, after.job);
    while (std::optional<JobId> id = c.Next()) {
      if (!consider(*id, true)) break;
    }
  } else {
    // The smallest source that holds every match.
    const bool finished_wanted = req.include_finished && (*mask == 0 || (*mask & kFinal) != 0);
    const bool waiting = *mask == 0 || (*mask & kWaiting) != 0;
    const bool running = *mask == 0 || (*mask & kRunningBit) != 0;
    const size_t active = (waiting ? state.queued.size() + state.held.size() : 0) +
                          (running ? state.running.size() : 0);
    const size_t general = finished_wanted ? state.jobs.size() : active;
    static const std::vector<JobId> kNobody;
    const std::vector<JobId>* owned = nullptr;
    if (!req.user.empty()) {
      auto o = state.by_owner.find(req.user);
      owned = o == state.by_owner.end() ? &kNobody : &o->second;
    }
    // Requeued array tasks wait (queued) while their array is in state.queued; running
    // tasks of a waiting array are found through state.running.
    Candidates c = owned != nullptr && owned->size() <= general ? Candidates(*owned, after.job)
                   : finished_wanted ? Candidates(state, after.job)
                                     : Candidates(state, waiting, running, after.job);
    while (std::optional<JobId> id = c.Next()) {
      if (!consider(*id, false)) break;
    }
  }
  if (!paged && full) {
    return Error(Code::kFailedPrecondition,
                 "the answer holds more than " + std::to_string(kMaxUnpagedRecords) +
                     " job records; this client does not ask for it in pages (use a newer "
                     "qstat, or narrow the query)");
  }
  if (full) reply.next = last;
  return reply;
}

}  // namespace corral
