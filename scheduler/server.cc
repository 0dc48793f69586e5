// The ZeroMQ loop. Order within one iteration: receive a batch -> core (handle, decide)
// -> install in memory -> persist the batch -> send. Replies and orders are held back
// until the transaction commits; if it fails, the in-memory state is reloaded from the
// database and every client in the batch gets an "unavailable" error instead.
#include "scheduler/server.h"

#include <pwd.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "common/transport.h"

namespace corral {
namespace {

void Log(const std::string& line) { std::cerr << "corral-scheduler: " << line << std::endl; }

bool IsNodeMessage(const Message& m) {
  return std::holds_alternative<RegisterNode>(m) || std::holds_alternative<Heartbeat>(m) ||
         std::holds_alternative<JobExit>(m);
}

const std::string* NodeOf(const Message& m) {
  if (const auto* r = std::get_if<RegisterNode>(&m)) return &r->node;
  if (const auto* h = std::get_if<Heartbeat>(&m)) return &h->node;
  if (const auto* e = std::get_if<JobExit>(&m)) return &e->node;
  return nullptr;
}

void LogJobChanges(const Actions& actions, const ClusterState& before) {
  for (const Job& job : actions.put_jobs) {
    const Job* old = FindUnit(before, KeyOf(job));
    // Submissions are not logged, nor are the starts and successful ends of array tasks
    // (an array of a million tasks would log two million lines); their failures are.
    if (old == nullptr || old->state == job.state) continue;
    if (job.task != 0 && job.state != JobState::kFailed && job.state != JobState::kQueued) {
      continue;
    }
    if (job.task == 0 && job.IsArray() && !IsFinal(job.state)) continue;  // its tasks run
    std::string line = "job " + UnitName(KeyOf(job)) + " " + std::string(StateName(job.state));
    if (job.state == JobState::kRunning) {
      line += " on " + job.node + " (attempt " + std::to_string(job.attempt) + ")";
    }
    if (!job.reason.empty()) line += ": " + job.reason;
    Log(line);
  }
}

}  // namespace

Server::Server(SchedulerConfig config, Store& store, const Clock& clock)
    : config_(std::move(config)), store_(store), clock_(clock), context_(1) {
  core_config_.heartbeat_interval_ms = config_.heartbeat_interval_ms;
  core_config_.node_timeout_ms = config_.node_timeout_ms;
  core_config_.max_attempts = config_.max_attempts;
  core_config_.consumables = config_.consumables;
  core_config_.default_h_rt_s = config_.default_h_rt_s;
  core_config_.default_mem_per_core_mb = config_.default_mem_per_core_mb;
  core_config_.oversubscribe = config_.oversubscribe;
}

void Server::ReloadPolicy() {
  if (config_.policy.empty()) {
    Log("SIGHUP: no policy file configured; nothing to reload");
    return;
  }
  Result<Policy> policy = LoadPolicy(config_.policy);
  if (!policy) {
    Log("SIGHUP: " + policy.error().message() + "; the old policy stays in force");
    return;
  }
  // Swapped between passes: the next Decide uses it; usage is recharged under its tree.
  core_config_.policy = std::make_shared<const PolicyEngine>(std::move(*policy));
  RebuildUsage(state_, core_config_);
  Log("SIGHUP: policy " + config_.policy + " reloaded");
}

Status Server::Start() {
  if (!config_.policy.empty()) {
    Result<Policy> policy = LoadPolicy(config_.policy);
    if (!policy) return policy.error();
    core_config_.policy = std::make_shared<const PolicyEngine>(std::move(*policy));
    Log("policy " + config_.policy + " loaded");
  }
  Result<ClusterState> loaded = store_.Load();
  if (!loaded) return loaded.error();
  state_ = std::move(*loaded);
  RebuildUsage(state_, core_config_);
  // Execds reconnect on their own after a restart; give every node a full timeout to
  // be heard from before its jobs are declared lost.
  now_ = clock_.Now();
  for (auto& [name, node] : state_.nodes) node.last_seen = now_;
  Log("loaded " + std::to_string(state_.jobs.size()) + " jobs (" +
      std::to_string(state_.running.size()) + " running, " +
      std::to_string(state_.queued.size() + state_.held.size()) + " pending), " +
      std::to_string(state_.nodes.size()) + " nodes");

  std::vector<std::string> bound;
  try {
    for (const std::string& endpoint : config_.endpoints) {
      const bool ipc = endpoint.rfind("ipc://", 0) == 0;
      std::unique_ptr<zmq::socket_t>& sock = ipc ? local_ : remote_;
      if (!sock) {
        sock = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::router);
        sock->set(zmq::sockopt::router_handover, 1);
        sock->set(zmq::sockopt::router_mandatory, 1);
        sock->set(zmq::sockopt::linger, 0);
        sock->set(zmq::sockopt::sndhwm, 1000000);
        sock->set(zmq::sockopt::rcvhwm, 1000000);
        sock->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxMessageBytes));
      }
      sock->bind(endpoint);
      std::string last = sock->get(zmq::sockopt::last_endpoint);
      if (ipc) {
        // Any local user may connect; who they are comes from the kernel, not the socket mode.
        chmod(endpoint.substr(6).c_str(), 0777);
        last = endpoint;
      }
      bound.push_back(last);
      Log("listening on " + last);
    }
  } catch (const zmq::error_t& e) {
    return Error(Code::kUnavailable, std::string("cannot bind: ") + e.what());
  }
  return WriteEndpointsFile(config_.state_dir + "/endpoints", bound);
}

std::string Server::UserName(uint32_t uid) {
  auto it = user_names_.find(uid);
  if (it != user_names_.end()) return it->second;
  passwd pw{};
  passwd* result = nullptr;
  char buf[4096];
  std::string name = std::to_string(uid);
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &result) == 0 && result != nullptr) {
    name = pw.pw_name;
  }
  user_names_[uid] = name;
  return name;
}

void Server::Send(const Outgoing& o) {
  try {
    const std::string bytes = Encode(o.message, o.req);
    o.to.socket->send(zmq::buffer(o.to.routing_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    o.to.socket->send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    // The peer is gone (router_mandatory): a client that gave up, or a node that
    // will be re-sent its orders when it reconnects.
    Log("cannot send " + std::string(TypeName(o.message)) + ": " + e.what());
  }
}

void Server::Dispatch(const Route& from, bool local, zmq::message_t& payload,
                      Actions& batch, std::vector<Outgoing>& out) {
  Result<Envelope> env = Decode(payload.to_string_view());
  if (!env) {
    out.push_back({from, ErrorReply{env.error().code(), env.error().message()}, "", true});
    return;
  }
  const Message& msg = env->message;
  if (IsNodeMessage(msg)) {
    const std::string& node = *NodeOf(msg);
    if (from.routing_id != "execd/" + node) {
      out.push_back({from,
                     ErrorReply{Code::kInvalidArgument,
                                "node messages must come from routing id 'execd/" + node + "'"},
                     env->req, false});
      return;
    }
    node_routes_[node] = from;
    Outcome o = HandleNode(state_, msg, core_config_, now_);
    if (std::holds_alternative<RegisterNode>(msg)) {
      Log("node " + node + " registered (" + std::to_string(std::get<RegisterNode>(msg).total.cores) +
          " cores, " + std::to_string(std::get<RegisterNode>(msg).total.mem_mb) + " MiB)");
    }
    LogJobChanges(o.actions, state_);
    Install(state_, o.actions);
    if (o.reply) out.push_back({from, std::move(*o.reply), env->req, false});
    batch.Append(std::move(o.actions));
    return;
  }
  Caller caller;
  if (local) {
    try {
      if (auto creds = ParsePeerCredentials(payload.gets("Peer-Address"))) {
        caller.uid = creds->uid;
        caller.gid = creds->gid;
        caller.user = UserName(creds->uid);
      }
    } catch (const zmq::error_t&) {
      // No credentials on this message: treated like a remote, unauthenticated caller.
    }
  }
  if (const auto* wait = std::get_if<WaitRequest>(&msg)) {
    waiters_.push_back({from, env->req, wait->ids, MonotonicNowMs() + wait->timeout_ms});
    return;
  }
  Outcome o = HandleClient(state_, msg, caller, core_config_, now_);
  LogJobChanges(o.actions, state_);
  Install(state_, o.actions);
  if (o.reply) out.push_back({from, std::move(*o.reply), env->req, true});
  batch.Append(std::move(o.actions));
}

void Server::Receive(zmq::socket_t& socket, bool local, Actions& batch,
                     std::vector<Outgoing>& out) {
  for (int i = 0; i < config_.max_batch; ++i) {
    zmq::message_t id;
    zmq::message_t payload;
    try {
      if (!socket.recv(id, zmq::recv_flags::dontwait)) return;
      if (!id.more()) continue;  // a routing id with no body: nothing to answer
      if (!socket.recv(payload, zmq::recv_flags::dontwait)) return;
      Route from{&socket, id.to_string()};
      if (payload.more()) {
        // Drain and refuse multi-frame messages: the protocol is one frame of JSON.
        zmq::message_t extra;
        while (payload.more() || extra.more()) {
          if (!socket.recv(extra, zmq::recv_flags::dontwait) || !extra.more()) break;
        }
        out.push_back({from, ErrorReply{Code::kInvalidArgument, "message must be one frame"},
                       "", true});
        continue;
      }
      Dispatch(from, local, payload, batch, out);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) return;
      Log(std::string("receive failed: ") + e.what());
      return;
    }
  }
}

void Server::AnswerWaiters(bool all_due) {
  const TimeMs mono = MonotonicNowMs();
  auto done = [&](Waiter& w) {
    const bool finished = std::all_of(w.ids.begin(), w.ids.end(),
                                      [&](JobId id) { return IsFinished(state_, id); });
    if (!finished && !(all_due && mono >= w.deadline)) return false;
    WaitReply reply;
    reply.done = finished;
    for (JobId id : w.ids) {
      auto it = state_.jobs.find(id);
      if (it == state_.jobs.end() || !IsFinal(it->second.state)) continue;
      Job copy = it->second;
      copy.spec.script.clear();
      reply.jobs.push_back(std::move(copy));
    }
    Send({w.from, std::move(reply), w.req, true});
    return true;
  };
  waiters_.erase(std::remove_if(waiters_.begin(), waiters_.end(), done), waiters_.end());
}

Status Server::Run(int signal_fd) {
  // Node timeouts are checked on this period even when nothing arrives.
  const TimeMs tick_ms = std::clamp<TimeMs>(config_.heartbeat_interval_ms / 2, 50, 1000);
  TimeMs next_tick = 0;
  while (true) {
    std::vector<zmq::pollitem_t> items;
    items.push_back({nullptr, signal_fd, ZMQ_POLLIN, 0});
    if (local_) items.push_back({local_->handle(), 0, ZMQ_POLLIN, 0});
    if (remote_) items.push_back({remote_->handle(), 0, ZMQ_POLLIN, 0});
    const TimeMs wait = std::max<TimeMs>(0, next_tick - MonotonicNowMs());
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(wait));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) return Error(Code::kInternal, std::string("poll: ") + e.what());
    }
    if (items[0].revents & ZMQ_POLLIN) {
      signalfd_siginfo info{};
      if (read(signal_fd, &info, sizeof info) > 0) {
        if (info.ssi_signo == SIGHUP) {
          ReloadPolicy();
        } else {
          Log("signal " + std::to_string(info.ssi_signo) + ": shutting down");
          return OkStatus();
        }
      }
    }
    now_ = clock_.Now();
    Actions batch;
    std::vector<Outgoing> out;
    if (local_) Receive(*local_, true, batch, out);
    if (remote_) Receive(*remote_, false, batch, out);

    const bool tick_due = MonotonicNowMs() >= next_tick;
    if (batch.Persistent() || tick_due) {
      Actions decided = Decide(state_, core_config_, now_);
      LogJobChanges(decided, state_);
      Install(state_, decided);
      for (Order& o : decided.orders) batch.orders.push_back(std::move(o));
      decided.orders.clear();
      batch.Append(std::move(decided));
    }
    if (tick_due) next_tick = MonotonicNowMs() + tick_ms;

    if (Status s = store_.Apply(batch); !s.ok()) {
      Log("could not persist a batch, reloading state: " + s.ToString());
      Result<ClusterState> reloaded = store_.Load();
      if (!reloaded) return Error(Code::kInternal, "reload failed: " + reloaded.error().message());
      std::map<std::string, TimeMs> seen;
      for (const auto& [name, node] : state_.nodes) seen[name] = node.last_seen;
      state_ = std::move(*reloaded);
      for (auto& [name, node] : state_.nodes) node.last_seen = seen.count(name) ? seen[name] : now_;
      for (Outgoing& o : out) {
        if (o.to_client) Send({o.to, ErrorReply{Code::kUnavailable, "could not persist: " + s.message()}, o.req, true});
      }
      continue;
    }
    for (const Outgoing& o : out) Send(o);
    for (Order& order : batch.orders) {
      auto route = node_routes_.find(order.node);
      if (route == node_routes_.end()) continue;  // resent when the node is heard from
      Send({route->second, std::move(order.message), "", false});
    }
    if (!waiters_.empty()) AnswerWaiters(tick_due);
  }
}

}  // namespace corral
