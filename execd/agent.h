// The execd's protocol state: registration, heartbeats, which attempts run here, exits
// waiting for the scheduler's ack. No sockets and no clock: the loop in main.cc passes each
// message and `now` in and sends what comes out; processes (and their wall-clock limits,
// which the shepherds enforce) are the Launcher's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/protocol.h"
#include "common/types.h"
#include "execd/launcher.h"

namespace corral {

struct AgentOptions {
  std::string node;
  Resources total;                      // what RegisterNode offers
  std::vector<int> gpu_ids;             // the GPUs it offers; total.gpus == gpu_ids.size()
  std::vector<std::string> features;    // node features, e.g. "avx512"
  std::function<double()> read_load;    // the 1-minute load average sent with heartbeats
  int64_t register_retry_ms = 1000;     // RegisterNode is resent this often until answered
  int64_t default_heartbeat_ms = 5000;  // if NodeRegistered carries no usable interval
  size_t seen_limit = 100000;           // (job, attempt) pairs remembered against re-sends
};

// One line per event, without the "corral-execd[node]: " prefix (the sink adds it).
using LogSink = std::function<void(const std::string&)>;

// Whether a StartJob's allocation fits this node: each of job.alloc_cores an index in
// [0, total.cores), each of job.alloc_gpus one of `gpu_ids`, none twice. InvalidArgument
// naming the first offender otherwise. Empty lists (an older scheduler) are fine. Pure.
Status CheckAllocation(const Job& job, const Resources& total, const std::vector<int>& gpu_ids);

// Single-threaded. Each call returns the messages to send to the scheduler, in order.
// `now` is wall-clock time from the loop's Clock; it stamps exits and drives the timers.
class Agent {
 public:
  // `launcher` and `log` must outlive the agent.
  Agent(AgentOptions options, Launcher& launcher, LogSink log);

  // The first RegisterNode. `recovered` is what an earlier execd left (PosixLauncher::Recover):
  // its running attempts are listed in every RegisterNode and heartbeat, its ended ones
  // become JobExits kept until acked, and both count as seen (a re-sent StartJob for them
  // is ignored). Every RegisterNode, this one included, is preceded by the unacked exits:
  // the scheduler requeues any attempt a registration does not list, so it must have
  // their exits first.
  std::vector<Message> Start(TimeMs now, const Recovery& recovered = {});

  // A message from the scheduler: NodeRegistered, StartJob, KillJob, ExitAck, ErrorReply.
  // Anything else is logged and ignored.
  std::vector<Message> OnMessage(const Message& message, TimeMs now);

  // An attempt ended (from Launcher::Reap): its JobExit, sent at once and kept until
  // acknowledged. The times are the shepherd's when it recorded them, else its start and `now`.
  std::vector<Message> OnExit(const AttemptEnd& end, TimeMs now);

  // Timers: RegisterNode retries and heartbeats, each preceded by every unacked exit. Call
  // when MsUntilTick(now) reaches 0; calling earlier is harmless.
  std::vector<Message> Tick(TimeMs now);

  // Milliseconds until Tick has something to do (0 = now); the loop's poll timeout.
  int64_t MsUntilTick(TimeMs now) const;

  std::vector<RunningAttempt> Running() const;
  size_t UnackedCount() const { return unacked_.size(); }
  bool Registered() const { return registered_; }

 private:
  struct Attempt {
    TimeMs start_time = 0;  // 0 when re-attached after a restart
  };

  RegisterNode MakeRegister() const;
  std::vector<Message> Registration() const;  // unacked exits, then RegisterNode
  JobExit MakeExit(const AttemptEnd& end, TimeMs start_time, TimeMs now) const;
  std::vector<Message> StartAttempt(const Job& job, TimeMs now);
  bool Seen(const AttemptKey& key) const;
  void Remember(const AttemptKey& key);
  void Log(const std::string& line) const { log_(line); }

  AgentOptions options_;
  Launcher& launcher_;
  LogSink log_;

  bool registered_ = false;
  int register_tries_ = 0;  // RegisterNode sent since the last registration was lost
  TimeMs next_register_ = 0;
  int64_t heartbeat_ms_ = 0;
  TimeMs next_heartbeat_ = 0;

  std::map<AttemptKey, Attempt> running_;
  std::map<AttemptKey, JobExit> unacked_;
  std::set<AttemptKey> seen_;          // every attempt ordered here, bounded by seen_limit
  std::deque<AttemptKey> seen_order_;  // oldest first, for eviction
};

}  // namespace corral
