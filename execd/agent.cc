// The execd agent's reactions to scheduler messages, process exits and timers. The
// scheduler re-sends orders and relies on message order on the one connection: exits go
// out before the heartbeat or registration that stops listing their attempt.
#include "execd/agent.h"

#include <algorithm>
#include <set>
#include <type_traits>
#include <utility>
#include <variant>

#include "execd/inventory.h"

namespace corral {

Agent::Agent(AgentOptions options, Launcher& launcher, LogSink log)
    : options_(std::move(options)), launcher_(launcher), log_(std::move(log)) {}

Status CheckAllocation(const Job& job, const Resources& total, const std::vector<int>& gpu_ids) {
  std::set<int> seen;
  for (int core : job.alloc_cores) {
    if (core < 0 || core >= total.cores) {
      return Error(Code::kInvalidArgument, "allocated core index " + std::to_string(core) +
                                               " is not one of this node's 0.." +
                                               std::to_string(total.cores - 1));
    }
    if (!seen.insert(core).second) {
      return Error(Code::kInvalidArgument,
                   "core index " + std::to_string(core) + " allocated twice");
    }
  }
  seen.clear();
  for (int gpu : job.alloc_gpus) {
    if (std::find(gpu_ids.begin(), gpu_ids.end(), gpu) == gpu_ids.end()) {
      return Error(Code::kInvalidArgument,
                   "allocated GPU " + std::to_string(gpu) + " is not offered by this node");
    }
    if (!seen.insert(gpu).second) {
      return Error(Code::kInvalidArgument, "GPU " + std::to_string(gpu) + " allocated twice");
    }
  }
  return OkStatus();
}

RegisterNode Agent::MakeRegister() const {
  return RegisterNode{.node = options_.node,
                      .total = options_.total,
                      .running = Running(),
                      .gpu_ids = options_.gpu_ids,
                      .features = options_.features};
}

std::vector<RunningAttempt> Agent::Running() const {
  std::vector<RunningAttempt> out;
  out.reserve(running_.size());
  for (const auto& [key, attempt] : running_) out.push_back({key.job_id, key.attempt, key.task});
  return out;
}

std::vector<Message> Agent::Registration() const {
  std::vector<Message> out;
  for (const auto& [key, exit] : unacked_) out.push_back(exit);
  out.push_back(MakeRegister());
  return out;
}

std::vector<Message> Agent::Start(TimeMs now, const Recovery& recovered) {
  for (const AttemptKey& key : recovered.running) {
    running_[key] = Attempt{};
    Remember(key);
  }
  for (const AttemptEnd& end : recovered.ended) {
    unacked_[end.key] = MakeExit(end, 0, now);
    Remember(end.key);
    Log("job " + AttemptName(end.key) + " ended while the execd was away: " +
        (end.failure.empty() ? "exit code " + std::to_string(end.exit_code) : end.failure));
  }
  Log("registering with the scheduler: " + std::to_string(options_.total.cores) + " cores, " +
      std::to_string(options_.total.mem_mb) + " MiB, " +
      (options_.gpu_ids.empty() ? "no GPUs" : "GPUs " + JoinIds(options_.gpu_ids)) +
      (running_.empty() ? "" : ", " + std::to_string(running_.size()) + " job(s) running"));
  registered_ = false;
  register_tries_ = 1;
  next_register_ = now + options_.register_retry_ms;
  return Registration();
}

JobExit Agent::MakeExit(const AttemptEnd& end, TimeMs start_time, TimeMs now) const {
  return JobExit{.node = options_.node,
                 .job_id = end.key.job_id,
                 .attempt = end.key.attempt,
                 .exit_code = end.exit_code,
                 .signal = end.signal,
                 .start_time = end.start_time != 0 ? end.start_time : start_time,
                 .end_time = end.end_time != 0 ? end.end_time : now,
                 .cpu_ms = end.cpu_ms,
                 .max_rss_kb = end.max_rss_kb,
                 .failure = end.failure,
                 .reason = end.reason,
                 .task = end.key.task,
                 .result = end.result,
                 .result_error = end.result_error};
}

bool Agent::Seen(const AttemptKey& key) const {
  return seen_.contains(key) || running_.contains(key) || unacked_.contains(key);
}

void Agent::Remember(const AttemptKey& key) {
  if (!seen_.insert(key).second) return;
  seen_order_.push_back(key);
  // The oldest are long finished and acknowledged; running and unacked attempts stay
  // known through running_ and unacked_ even once evicted here.
  while (seen_order_.size() > options_.seen_limit) {
    seen_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
}

std::vector<Message> Agent::StartAttempt(const Job& job, TimeMs now) {
  const AttemptKey key{job.id, job.attempt, job.task};
  if (job.id <= 0 || job.attempt <= 0) {
    Log("ignoring start of job " + AttemptName(key) + ": invalid job id or attempt");
    return {};
  }
  if (Seen(key)) {
    // The scheduler re-sends orders until it sees their effect; the first one counts.
    Log("ignoring repeated start of job " + AttemptName(key));
    return {};
  }
  Remember(key);
  Result<pid_t> pid = [&]() -> Result<pid_t> {
    if (Status s = CheckAllocation(job, options_.total, options_.gpu_ids); !s.ok()) {
      return std::unexpected(s);
    }
    return launcher_.Launch(job);
  }();
  if (!pid) {
    JobExit exit{.node = options_.node,
                 .job_id = job.id,
                 .attempt = job.attempt,
                 .exit_code = 1,
                 .start_time = now,
                 .end_time = now,
                 .failure = pid.error().message(),
                 .task = job.task};
    Log("job " + AttemptName(key) + " could not start: " + exit.failure);
    unacked_[key] = exit;
    return {exit};
  }
  running_[key] = Attempt{.start_time = now};
  Log("started job " + AttemptName(key) + " under shepherd pid " + std::to_string(*pid));
  return {};
}

std::vector<Message> Agent::OnMessage(const Message& message, TimeMs now) {
  return std::visit(
      [&](const auto& m) -> std::vector<Message> {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, NodeRegistered>) {
          heartbeat_ms_ =
              m.heartbeat_interval_ms > 0 ? m.heartbeat_interval_ms : options_.default_heartbeat_ms;
          if (!registered_) {
            Log("registered; heartbeat every " + std::to_string(heartbeat_ms_) + " ms");
          }
          registered_ = true;
          next_heartbeat_ = now + heartbeat_ms_;
          return {};
        } else if constexpr (std::is_same_v<T, StartJob>) {
          return StartAttempt(m.job, now);
        } else if constexpr (std::is_same_v<T, KillJob>) {
          const AttemptKey key{m.job_id, m.attempt, m.task};
          if (running_.contains(key) && launcher_.Kill(key)) {
            Log("killing job " + AttemptName(key) + " (scheduler order)");
          } else {
            Log("ignoring kill of job " + AttemptName(key) + ": not running here");
          }
          return {};
        } else if constexpr (std::is_same_v<T, ExitAck>) {
          const AttemptKey key{m.job_id, m.attempt, m.task};
          // An ack of an exit already acked (it was re-sent meanwhile) needs nothing.
          if (unacked_.erase(key) == 0) return {};
          if (Status s = launcher_.Release(key); !s.ok()) Log(s.message());
          return {};
        } else if constexpr (std::is_same_v<T, ErrorReply>) {
          Log("scheduler error: " + std::string(CodeName(m.code)) + ": " + m.message);
          // not_found: the scheduler does not know this node (e.g. a fresh database).
          // While unregistered the retry timer already re-sends, so one re-send suffices.
          if (m.code == Code::kNotFound && registered_) {
            Log("scheduler does not know this node; registering again");
            registered_ = false;
            register_tries_ = 1;
            next_register_ = now + options_.register_retry_ms;
            return Registration();
          }
          return {};
        } else {
          Log("ignoring unexpected '" + std::string(T::kType) + "' message");
          return {};
        }
      },
      message);
}

std::vector<Message> Agent::OnExit(const AttemptEnd& end, TimeMs now) {
  const auto it = running_.find(end.key);
  if (it == running_.end()) {
    Log("ignoring exit of job " + AttemptName(end.key) + ": not started by this agent");
    return {};
  }
  const JobExit exit = MakeExit(end, it->second.start_time, now);
  running_.erase(it);
  std::string how;
  if (!end.failure.empty()) {
    how = "failed: " + end.failure;
  } else {
    how = end.signal != 0 ? "killed by signal " + std::to_string(end.signal) + " (exit code " +
                                std::to_string(end.exit_code) + ")"
                          : "exited with code " + std::to_string(end.exit_code);
    if (!end.reason.empty()) how += " (" + end.reason + ")";
  }
  Log("job " + AttemptName(end.key) + " " + how + ", cpu " + std::to_string(end.cpu_ms) +
      " ms, max rss " + std::to_string(end.max_rss_kb) + " kB");
  unacked_[end.key] = exit;
  return {exit};
}

std::vector<Message> Agent::Tick(TimeMs now) {
  std::vector<Message> out;
  // A timer further away than one period means the wall clock stepped back: fire now
  // rather than stay silent for the size of the step.
  if (!registered_) {
    if (now >= next_register_ || next_register_ - now > options_.register_retry_ms) {
      next_register_ = now + options_.register_retry_ms;
      // One line, not one per second while the scheduler is down.
      if (++register_tries_ == 2) {
        Log("no answer from the scheduler yet; registering again every " +
            std::to_string(options_.register_retry_ms) + " ms");
      }
      out = Registration();
    }
  } else if (now >= next_heartbeat_ || next_heartbeat_ - now > heartbeat_ms_) {
    next_heartbeat_ = now + heartbeat_ms_;
    // Exits first: the heartbeat no longer lists their attempts.
    for (const auto& [key, exit] : unacked_) out.push_back(exit);
    out.push_back(Heartbeat{options_.node, Running(),
                            options_.read_load ? options_.read_load() : 0.0});
  }
  return out;
}

int64_t Agent::MsUntilTick(TimeMs now) const {
  const int64_t period = registered_ ? heartbeat_ms_ : options_.register_retry_ms;
  int64_t wait = (registered_ ? next_heartbeat_ : next_register_) - now;
  wait = std::min(wait, period);  // a clock stepped back must not stretch the wait
  return std::max<int64_t>(wait, 0);
}

}  // namespace corral
