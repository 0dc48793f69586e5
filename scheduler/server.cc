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

#include <zmq.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "common/transport.h"
#include "scheduler/authz.h"
#include "scheduler/events.h"
#include "common/curve.h"
#include "common/munge_auth.h"

namespace corral {
namespace {

constexpr std::string_view kLogPrefix = "corral-scheduler: ";

void Log(const std::string& line) { std::cerr << kLogPrefix << line << std::endl; }

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

// One write for the whole batch: a qdel of 10,000 jobs logs 10,000 lines, and a flush
// per line was a tenth of its time.
void LogJobChanges(const Actions& actions, const ClusterState& before) {
  std::string text;
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
    text.append(kLogPrefix).append(line).push_back('\n');
  }
  if (!text.empty()) std::cerr << text << std::flush;
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
  core_config_.admins = config_.admins;
  core_config_.operators = config_.operators;
  core_config_.private_jobs = config_.private_jobs;
}

Result<std::string> Server::ReloadPolicy(const std::string& why) {
  if (config_.policy.empty()) {
    Log(why + ": no policy file configured; nothing to reload");
    return Error(Code::kFailedPrecondition,
                 "no policy file is configured ('policy:' in the scheduler config); "
                 "jobs start first come, first served");
  }
  Result<Policy> policy = LoadPolicy(config_.policy);
  if (!policy) {
    Log(why + ": " + policy.error().message() + "; the old policy stays in force");
    return Error(policy.error().code(),
                 policy.error().message() + "; the old policy stays in force");
  }
  const Policy& p = *policy;
  const std::string summary =
      "planner " + std::string(PlannerKindName(p.planner.kind)) + ", " +
      std::to_string(p.fairshare.groups.size()) + " share groups, " +
      std::to_string(p.queues.size()) + " queues";
  // Swapped between passes: the next Decide uses it; usage is recharged under its tree.
  core_config_.policy = std::make_shared<const PolicyEngine>(std::move(*policy));
  RebuildUsage(state_, core_config_);
  Log(why + ": policy " + config_.policy + " reloaded (" + summary + ")");
  return summary;
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

  if (Status s = StartCurve(); !s.ok()) return s;
  std::vector<std::string> bound;
  try {
    for (const std::string& endpoint : config_.endpoints) {
      if (endpoint.starts_with("ipc://")) {
        if (!ipc_) ipc_ = std::make_unique<IpcEndpoints>(IpcEndpoints::Limits{kMaxMessageBytes});
        if (Status s = ipc_->Listen(endpoint); !s.ok()) return s;
        bound.push_back(endpoint);
        Log("listening on " + endpoint);
        continue;
      }
      std::unique_ptr<zmq::socket_t>& sock = remote_;
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
      const std::string last = sock->get(zmq::sockopt::last_endpoint);
      bound.push_back(last);
      Log("listening on " + last);
    }
  } catch (const zmq::error_t& e) {
    return Error(Code::kUnavailable, std::string("cannot bind: ") + e.what());
  }
  // Execds connect here: with CURVE, this socket's handshakes go through ServeZap.
  std::vector<std::string> node_bound;
  try {
    for (const std::string& endpoint : config_.node_endpoints) {
      if (!nodes_) {
        nodes_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::router);
        nodes_->set(zmq::sockopt::router_handover, 1);
        nodes_->set(zmq::sockopt::router_mandatory, 1);
        nodes_->set(zmq::sockopt::linger, 0);
        nodes_->set(zmq::sockopt::sndhwm, 1000000);
        nodes_->set(zmq::sockopt::rcvhwm, 1000000);
        nodes_->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxMessageBytes));
        if (curve_) {
          nodes_->set(zmq::sockopt::curve_server, 1);
          nodes_->set(zmq::sockopt::curve_secretkey, curve_secret_);
          nodes_->set(zmq::sockopt::zap_domain, "corral-nodes");
        }
      }
      nodes_->bind(endpoint);
      const std::string last = nodes_->get(zmq::sockopt::last_endpoint);
      node_bound.push_back(last);
      Log("listening for execds on " + last + (curve_ ? " (CURVE)" : " (in clear, unauthenticated)"));
    }
  } catch (const zmq::error_t& e) {
    return Error(Code::kUnavailable, std::string("cannot bind a node endpoint: ") + e.what());
  }
  // corral events: a PUB socket; sequence numbers continue from the store's newest.
  Result<std::pair<int64_t, int64_t>> bounds = store_.EventBounds();
  if (!bounds) return bounds.error();
  next_event_seq_ = bounds->second + 1;
  try {
    std::vector<std::string> wanted = config_.event_endpoints;
    if (wanted.empty()) wanted.push_back("ipc://" + config_.state_dir + "/events.sock");
    events_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::pub);
    events_->set(zmq::sockopt::linger, 0);
    events_->set(zmq::sockopt::sndhwm, 100000);
    for (const std::string& endpoint : wanted) {
      events_->bind(endpoint);
      std::string last = events_->get(zmq::sockopt::last_endpoint);
      if (endpoint.starts_with("ipc://")) {
        chmod(endpoint.substr(6).c_str(), 0777);
        last = endpoint;
      }
      event_bound_.push_back(last);
      Log("publishing events on " + last);
    }
  } catch (const zmq::error_t& e) {
    return Error(Code::kUnavailable, std::string("cannot bind an event endpoint: ") + e.what());
  }
  // Before `endpoints`: whoever waits for that file finds this one complete.
  const std::string node_file = config_.state_dir + "/node_endpoints";
  if (node_bound.empty()) {
    std::remove(node_file.c_str());
  } else if (Status s = WriteEndpointsFile(node_file, node_bound); !s.ok()) {
    return s;
  }
  return WriteEndpointsFile(config_.state_dir + "/endpoints", bound);
}

Status Server::StartCurve() {
  const bool tcp_nodes = !config_.node_endpoints.empty() ||
                         std::any_of(config_.endpoints.begin(), config_.endpoints.end(),
                                     [](const std::string& e) { return e.starts_with("tcp://"); });
  const auto& auth = config_.tcp_client_auth;
  const bool munge = std::find(auth.begin(), auth.end(), "munge") != auth.end();
  const bool anonymous = std::find(auth.begin(), auth.end(), "anonymous") != auth.end();
  Log(std::string("tcp clients: ") +
      (munge ? "MUNGE credentials (" +
                   (config_.munge_socket.empty() ? std::string("munged's default socket")
                                                 : config_.munge_socket) +
                   ")" + (anonymous ? ", else anonymous and read-only" : ", required")
             : anonymous ? "anonymous and read-only"
                         : "refused"));
  if (config_.curve_secret_key.empty()) {
    if (tcp_nodes) {
      Log("WARNING: nodes are NOT authenticated: without curve_secret_key anyone who can reach "
          "a tcp endpoint can pose as a node (register, report job ends) and read job scripts; "
          "see docs/security.md");
    }
    return OkStatus();
  }
  if (!CurveAvailable()) {
    return Error(Code::kFailedPrecondition,
                 "curve_secret_key is set but this libzmq was built without CURVE");
  }
  Result<CurveKeyPair> pair = LoadSecretKeyFile(config_.curve_secret_key);
  if (!pair) return pair.error();
  curve_secret_ = pair->secret_key;
  Result<NodeKeys> keys = NodeKeysFromMap(config_.node_keys);
  if (!keys) return keys.error();
  config_keys_ = std::move(*keys);
  node_keys_ = config_keys_;
  if (!config_.node_keys_dir.empty()) {
    struct stat st {};
    if (stat(config_.node_keys_dir.c_str(), &st) == 0) {
      keys_dir_mtime_ns_ = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    }
    if (Status s = LoadNodeKeysDir(config_.node_keys_dir, node_keys_); !s.ok()) return s;
  }
  // The ZAP handler must exist before the first CURVE handshake; it is served by Run's poll.
  try {
    zap_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::rep);
    zap_->set(zmq::sockopt::linger, 0);
    zap_->bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    return Error(Code::kInternal, std::string("cannot bind the ZAP handler: ") + e.what());
  }
  curve_ = true;
  std::string names;
  size_t listed = 0;
  for (const auto& [key, node] : node_keys_) {
    if (++listed > 10) {
      names += ", ...";
      break;
    }
    names += (names.empty() ? "" : ", ") + node;
  }
  Log("CURVE on: public key " + pair->public_key + "; " + std::to_string(node_keys_.size()) +
      " node key(s) allowed" + (names.empty() ? "" : " (" + names + ")"));
  return OkStatus();
}

void Server::ReloadNodeKeysIfChanged(bool force) {
  if (config_.node_keys_dir.empty()) return;
  struct stat st {};
  if (stat(config_.node_keys_dir.c_str(), &st) != 0) return;
  const int64_t mtime =
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  // Directory times are coarse (a clock tick): a key written in the same tick as the last
  // scan leaves the time unchanged. So an unknown key may also force a scan, once a second.
  const TimeMs mono = MonotonicNowMs();
  if (mtime == keys_dir_mtime_ns_ && !(force && mono - keys_scanned_at_ >= 1000)) return;
  keys_dir_mtime_ns_ = mtime;  // a broken directory is reported once, not per handshake
  keys_scanned_at_ = mono;
  NodeKeys fresh = config_keys_;
  if (Status s = LoadNodeKeysDir(config_.node_keys_dir, fresh); !s.ok()) {
    Log("node keys not reloaded, the previous ones stay in force: " + s.message());
    return;
  }
  if (fresh == node_keys_) return;
  node_keys_ = std::move(fresh);
  Log("node keys reloaded from " + config_.node_keys_dir + ": " + std::to_string(node_keys_.size()) +
      " allowed");
}

void Server::ServeZap() {
  while (true) {
    std::vector<std::string> frames;
    try {
      zmq::message_t frame;
      if (!zap_->recv(frame, zmq::recv_flags::dontwait)) return;
      frames.push_back(frame.to_string());
      while (frame.more()) {
        if (!zap_->recv(frame, zmq::recv_flags::none)) break;  // the rest is already queued
        frames.push_back(frame.to_string());
      }
    } catch (const zmq::error_t& e) {
      Log(std::string("ZAP receive failed: ") + e.what());
      return;
    }
    ReloadNodeKeysIfChanged(false);
    ZapReply reply;
    if (Result<ZapRequest> request = ParseZapRequest(frames)) {
      reply = DecideZap(*request, node_keys_);
      if (reply.status_code == "400" && !reply.client_key.empty()) {
        ReloadNodeKeysIfChanged(true);
        reply = DecideZap(*request, node_keys_);
      }
      if (reply.status_code != "200") {
        // Once per key: a refused execd retries its handshake every few hundred ms.
        if (refused_keys_.size() < 1000 && refused_keys_.insert(reply.client_key).second) {
          Log("refused a CURVE connection from " + request->address + " (routing id '" +
              request->routing_id + "', key " + reply.client_key + "): " + reply.status_text +
              "; a node's public key must be in node_keys or node_keys_dir");
        }
      } else if (!reply.user_id.empty()) {
        Log("CURVE connection from " + request->address + " authenticated as " + reply.user_id);
      }
    } else {
      reply.request_id = frames.size() > 1 ? frames[1] : "";
      reply.status_code = "500";
      reply.status_text = request.error().message();
    }
    try {
      const std::vector<std::string> out = ZapReplyFrames(reply);
      for (size_t i = 0; i < out.size(); ++i) {
        zap_->send(zmq::buffer(out[i]),
                   i + 1 < out.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    } catch (const zmq::error_t& e) {
      Log(std::string("ZAP reply failed: ") + e.what());
    }
  }
}

Result<Caller> Server::RemoteCaller(std::string_view payload, const Envelope& env) {
  const auto& auth = config_.tcp_client_auth;
  const bool munge = std::find(auth.begin(), auth.end(), "munge") != auth.end();
  const bool anonymous = std::find(auth.begin(), auth.end(), "anonymous") != auth.end();
  if (!munge && !anonymous) {
    return Error(Code::kPermissionDenied,
                 "this scheduler takes no clients over tcp (tcp_client_auth is empty); use its "
                 "ipc:// endpoint on its host");
  }
  if (munge && !env.cred.empty()) {
    Result<MungeIdentity> who = MungeVerify(payload, env.cred, config_.munge_socket);
    if (!who) {
      Log("tcp request refused: " + who.error().message());
      return std::unexpected(who.error());
    }
    Caller caller;
    caller.uid = who->uid;
    caller.gid = who->gid;
    caller.user = UserName(who->uid);
    return caller;
  }
  if (!anonymous) {
    return Error(Code::kPermissionDenied,
                 "this scheduler takes tcp clients only with a MUNGE credential "
                 "(tcp_client_auth: [munge]); is munged running on the client's host?");
  }
  return Caller{};  // anonymous: may look, may not change anything
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

void Server::InstallActions(Actions& actions) {
  actions.events = EventsOf(state_, actions, now_);
  for (Event& e : actions.events) e.seq = next_event_seq_++;
  LogJobChanges(actions, state_);
  Install(state_, actions);
}

void Server::Publish(const std::vector<Event>& events) {
  if (!events_) return;
  for (const Event& e : events) {
    Event shown = e;
    if (config_.private_jobs && shown.kind == "job") {
      // The stream cannot tell subscribers apart: under private_jobs it carries no names;
      // EventsRequest (corral events) fills them in for whoever may see them.
      shown.owner.clear();
      shown.name.clear();
      shown.reason.clear();
    }
    try {
      events_->send(zmq::buffer(EncodeEvent(shown)), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& err) {
      Log(std::string("cannot publish an event: ") + err.what());
    }
  }
}

void Server::Send(const Outgoing& o) {
  if (o.to.socket == nullptr) {
    if (!ipc_ || !ipc_->Send(o.to.ipc_conn, Encode(o.message, o.req))) {
      Log("cannot send " + std::string(TypeName(o.message)) + ": the local caller is gone");
    }
    return;
  }
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

void Server::Dispatch(const Route& from, Origin origin, std::string_view payload,
                      const Peer& peer, Actions& batch, std::vector<Outgoing>& out) {
  Result<Envelope> env = Decode(payload);
  if (!env) {
    out.push_back({from, ErrorReply{env.error().code(), env.error().message()}, "", true});
    return;
  }
  const Message& msg = env->message;
  if (IsNodeMessage(msg)) {
    const std::string& node = *NodeOf(msg);
    // The ZAP handler set this connection's User-Id from its CURVE key (ServeZap).
    if (Status s = CheckNodeSender(node, curve_, origin == Origin::kNodes, from.routing_id,
                                   peer.user_id, node_keys_);
        !s.ok()) {
      out.push_back({from, ErrorReply{s.code(), s.message()}, env->req, false});
      return;
    }
    node_routes_[node] = from;
    Outcome o = HandleNode(state_, msg, core_config_, now_);
    if (std::holds_alternative<RegisterNode>(msg)) {
      Log("node " + node + " registered (" + std::to_string(std::get<RegisterNode>(msg).total.cores) +
          " cores, " + std::to_string(std::get<RegisterNode>(msg).total.mem_mb) + " MiB)");
    }
    InstallActions(o.actions);
    if (o.reply) out.push_back({from, std::move(*o.reply), env->req, false});
    batch.Append(std::move(o.actions));
    return;
  }
  if (origin == Origin::kNodes && curve_) {
    out.push_back({from,
                   ErrorReply{Code::kInvalidArgument,
                              "this endpoint is for execds; clients use the scheduler's other "
                              "endpoints"},
                   env->req, true});
    return;
  }
  Caller caller;
  if (origin != Origin::kLocal) {
    Result<Caller> remote = RemoteCaller(payload, *env);
    if (!remote) {
      out.push_back({from, ErrorReply{remote.error().code(), remote.error().message()}, env->req,
                     true});
      return;
    }
    caller = std::move(*remote);
  } else if (peer.creds != nullptr) {
    caller.uid = peer.creds->uid;
    caller.gid = peer.creds->gid;
    caller.user = UserName(peer.creds->uid);
  }
  // Requests that touch the edges (the policy file, the audit log), answered here.
  if (std::holds_alternative<ReloadRequest>(msg) || std::holds_alternative<AuditRequest>(msg)) {
    const Role role = RoleOf(caller, core_config_);
    const bool reload = std::holds_alternative<ReloadRequest>(msg);
    if (role != Role::kAdmin && !(role == Role::kOperator && !reload)) {
      out.push_back({from,
                     ErrorReply{Code::kPermissionDenied,
                                (caller.uid ? caller.user : std::string("an anonymous caller")) +
                                    (reload ? " may not reload the policy (admins only: see "
                                              "'admins' in the scheduler config)"
                                            : " may not read the audit log (admins and "
                                              "operators only)")},
                     env->req, true});
      return;
    }
    if (reload) {
      Result<std::string> summary = ReloadPolicy("qconf -reload by " + caller.user);
      if (!summary) {
        out.push_back({from, ErrorReply{summary.error().code(), summary.error().message()},
                       env->req, true});
        return;
      }
      Actions audit;
      audit.audit.push_back(Audit(caller, now_, "reload", config_.policy + ": " + *summary));
      batch.Append(std::move(audit));
      out.push_back({from, ReloadReply{config_.policy, *summary}, env->req, true});
    } else {
      Result<std::vector<AuditEntry>> entries =
          store_.ReadAudit(std::get<AuditRequest>(msg).limit);
      if (!entries) {
        out.push_back({from, ErrorReply{entries.error().code(), entries.error().message()},
                       env->req, true});
      } else {
        out.push_back({from, AuditReply{std::move(*entries)}, env->req, true});
      }
    }
    return;
  }
  if (const auto* req = std::get_if<EventsRequest>(&msg)) {
    Result<std::vector<Event>> events = store_.ReadEvents(req->after, req->limit);
    Result<std::pair<int64_t, int64_t>> bounds = store_.EventBounds();
    if (!events || !bounds) {
      const Status e = !events ? events.error() : bounds.error();
      out.push_back({from, ErrorReply{e.code(), e.message()}, env->req, true});
      return;
    }
    EventsReply reply;
    for (Event& e : *events) {
      if (MaySeeEvent(caller, e, core_config_)) reply.events.push_back(std::move(e));
    }
    reply.first_kept = bounds->first;
    reply.last = bounds->second;
    // Where to subscribe: an ipc endpoint for local callers, tcp for remote ones.
    for (const std::string& e : event_bound_) {
      const bool ipc = e.starts_with("ipc://");
      if (reply.publish.empty() || ipc == (origin == Origin::kLocal)) reply.publish = e;
      if (ipc == (origin == Origin::kLocal)) break;
    }
    out.push_back({from, std::move(reply), env->req, true});
    return;
  }
  // Job listings are read-only and may be long (a page of thousands of records): they
  // wait until this turn's node messages are handled, its decisions committed and its
  // orders sent, and are then answered within a time budget (AnswerQueries), so that a
  // storm of qstat loops delays no job start by more than that budget.
  if (const auto* query = std::get_if<QueryRequest>(&msg)) {
    queries_.push_back({from, env->req, std::move(caller), *query});
    return;
  }
  if (const auto* wait = std::get_if<WaitRequest>(&msg)) {
    waiters_.push_back({from, env->req, wait->ids, MonotonicNowMs() + wait->timeout_ms});
    return;
  }
  Outcome o = HandleClient(state_, msg, caller, core_config_, now_);
  InstallActions(o.actions);
  if (o.reply) out.push_back({from, std::move(*o.reply), env->req, true});
  batch.Append(std::move(o.actions));
}

void Server::Receive(zmq::socket_t& socket, Origin origin, Actions& batch,
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
      const char* user_id = zmq_msg_gets(payload.handle(), "User-Id");
      Dispatch(from, origin, payload.to_string_view(), Peer{user_id ? user_id : ""}, batch, out);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) return;
      Log(std::string("receive failed: ") + e.what());
      return;
    }
  }
}

void Server::ReceiveIpc(std::span<const zmq::pollitem_t> polled, Actions& batch,
                        std::vector<Outgoing>& out) {
  ipc_in_.clear();
  ipc_->Serve(polled, static_cast<size_t>(std::max(config_.max_batch, 1)), ipc_in_,
              MonotonicNowMs());
  for (IpcEndpoints::Incoming& m : ipc_in_) {
    const Route from{nullptr, m.identity, m.conn};
    if (m.multipart) {
      out.push_back({from, ErrorReply{Code::kInvalidArgument, "message must be one frame"}, "",
                     true});
      continue;
    }
    Dispatch(from, Origin::kLocal, m.payload, Peer{"", &m.peer}, batch, out);
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

// Long enough for a few pages of kQueryPageRecords, short beside a job's start.
constexpr TimeMs kQueryBudgetMs = 5;

void Server::AnswerQueries() {
  const TimeMs start = MonotonicNowMs();
  while (!queries_.empty()) {
    PendingQuery q = std::move(queries_.front());
    queries_.pop_front();
    Outcome o = HandleClient(state_, q.query, q.caller, core_config_, now_);
    if (o.reply) Send({q.from, std::move(*o.reply), q.req, true});
    if (MonotonicNowMs() - start >= kQueryBudgetMs) break;
  }
}

Status Server::Run(int signal_fd) {
  // Node timeouts are checked on this period even when nothing arrives.
  const TimeMs tick_ms = std::clamp<TimeMs>(config_.heartbeat_interval_ms / 2, 50, 1000);
  TimeMs next_tick = 0;
  std::vector<zmq::pollitem_t> items;
  while (true) {
    // The last turn's replies, one write per local connection (every path of a turn
    // comes back here).
    if (ipc_) ipc_->FlushAll();
    items.clear();
    items.push_back({nullptr, signal_fd, ZMQ_POLLIN, 0});
    // Where each source's items are (npos: not polled).
    auto add = [&](zmq::socket_t* socket) {
      if (socket == nullptr) return std::string::npos;
      items.push_back({socket->handle(), 0, ZMQ_POLLIN, 0});
      return items.size() - 1;
    };
    const size_t ipc_first = items.size();
    if (ipc_) ipc_->AddPollItems(items);
    const size_t ipc_count = items.size() - ipc_first;
    const size_t remote_at = add(remote_.get());
    const size_t nodes_at = add(nodes_.get());
    // Handshakes wait for this socket's answers: it is polled with the rest, never blocking.
    const size_t zap_at = add(zap_.get());
    // Listings still queued, or whole messages left over: look at the sockets without
    // waiting, then go on.
    const bool more = !queries_.empty() || (ipc_ && ipc_->backlog());
    const TimeMs wait = more ? 0 : std::max<TimeMs>(0, next_tick - MonotonicNowMs());
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(wait));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) return Error(Code::kInternal, std::string("poll: ") + e.what());
    }
    // Only the sockets with something to read are read: every look at an idle libzmq
    // socket is two system calls (its mailbox and its fork check).
    auto readable = [&](size_t at) {
      return at != std::string::npos && (items[at].revents & ZMQ_POLLIN) != 0;
    };
    if (items[0].revents & ZMQ_POLLIN) {
      signalfd_siginfo info{};
      if (read(signal_fd, &info, sizeof info) > 0) {
        if (info.ssi_signo == SIGHUP) {
          (void)ReloadPolicy("SIGHUP");
        } else {
          Log("signal " + std::to_string(info.ssi_signo) + ": shutting down");
          return OkStatus();
        }
      }
    }
    now_ = clock_.Now();
    Actions batch;
    // Reused: a batch of a thousand submits has a thousand replies of ~1 KiB each, and a
    // fresh vector paid its page faults and reallocations on every batch.
    std::vector<Outgoing>& out = out_;
    out.clear();
    if (readable(zap_at)) ServeZap();
    // A key removed from node_keys_dir takes effect within a tick, also for connections
    // already made with it (CheckNodeSender checks every node message against node_keys_).
    if (curve_ && MonotonicNowMs() >= next_tick) ReloadNodeKeysIfChanged(false);
    if (ipc_) ReceiveIpc(std::span(items).subspan(ipc_first, ipc_count), batch, out);
    if (readable(remote_at)) Receive(*remote_, Origin::kRemote, batch, out);
    if (readable(nodes_at)) Receive(*nodes_, Origin::kNodes, batch, out);

    const bool tick_due = MonotonicNowMs() >= next_tick;
    if (batch.Persistent() || tick_due) {
      Actions decided = Decide(state_, core_config_, now_);
      InstallActions(decided);
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
      // The batch's events were not kept: their numbers are given out again.
      if (auto b = store_.EventBounds(); b) next_event_seq_ = b->second + 1;
      for (auto& [name, node] : state_.nodes) node.last_seen = seen.count(name) ? seen[name] : now_;
      for (Outgoing& o : out) {
        if (o.to_client) Send({o.to, ErrorReply{Code::kUnavailable, "could not persist: " + s.message()}, o.req, true});
      }
      continue;
    }
    for (const Outgoing& o : out) Send(o);
    Publish(batch.events);
    if (tick_due && now_ >= next_prune_) {
      if (Status s = store_.PruneEvents(now_ - config_.event_retention_ms); !s.ok()) {
        Log("cannot prune old events: " + s.ToString());
      }
      next_prune_ = now_ + 60 * 1000;
    }
    for (Order& order : batch.orders) {
      auto route = node_routes_.find(order.node);
      if (route == node_routes_.end()) continue;  // resent when the node is heard from
      Send({route->second, std::move(order.message), "", false});
    }
    if (!waiters_.empty()) AnswerWaiters(tick_due);
    AnswerQueries();
  }
}

}  // namespace corral
