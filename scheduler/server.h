// The scheduler's shell: the ZeroMQ loop around the pure core. Each loop iteration
// receives a batch of messages, lets the core handle them and decide, persists the
// resulting Actions in one SQLite transaction (group commit), installs them, and only
// then sends replies and orders. Single-threaded; all waiting is zmq_poll.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "common/clock.h"
#include "common/config.h"
#include "common/curve.h"
#include "common/transport.h"
#include "scheduler/core.h"
#include "scheduler/ipc_endpoints.h"
#include "scheduler/store.h"

namespace corral {

class Server {
 public:
  // `store` and `clock` must outlive the server.
  Server(SchedulerConfig config, Store& store, const Clock& clock);

  // Loads the state and the CURVE keys, binds every endpoint (the ZAP handler first),
  // writes STATE_DIR/node_endpoints (when there are node endpoints), then
  // STATE_DIR/endpoints. A bad or world-readable key file is an error here.
  Status Start();
  // Serves until SIGTERM or SIGINT (taken from a signalfd; the caller blocks them);
  // SIGHUP reloads the policy file (an invalid one is logged and the old one kept).
  Status Run(int signal_fd);
  // Re-reads the policy file and swaps it in; on error the old policy stays in force.
  // Returns a one-line summary of the new policy. `why` prefixes the log lines.
  Result<std::string> ReloadPolicy(const std::string& why);

 private:
  // Where a reply goes: a libzmq ROUTER and a routing id, or (socket null) a connection
  // of ipc_ (its routing id is then the peer's READY Identity).
  struct Route {
    zmq::socket_t* socket = nullptr;
    std::string routing_id;
    uint64_t ipc_conn = 0;
  };
  struct Outgoing {
    Route to;
    Message message;
    std::string req;
    bool to_client = false;  // replaced by an error if the batch fails to commit
  };
  // A job listing waiting for its turn (AnswerQueries).
  struct PendingQuery {
    Route from;
    std::string req;
    Caller caller;
    QueryRequest query;
  };
  struct Waiter {
    Route from;
    std::string req;
    std::vector<JobId> ids;
    TimeMs deadline = 0;  // monotonic
  };

  // Which socket a message came in on: it decides how the caller is identified.
  enum class Origin {
    kLocal,   // ipc:// (ipc_): the kernel's peer credentials
    kRemote,  // tcp:// endpoints: MUNGE credential per request, or anonymous
    kNodes,   // node_endpoints: execds (CURVE + ZAP User-Id when a key is configured)
  };

  Status StartCurve();
  void Receive(zmq::socket_t& socket, Origin origin, Actions& batch, std::vector<Outgoing>& out);
  // What the transport knows of a message's sender.
  struct Peer {
    std::string_view user_id;                // ZAP's User-Id (CURVE node connections)
    const PeerCredentials* creds = nullptr;  // the kernel's, on ipc connections
  };
  // Serves ipc_'s polled descriptors and dispatches the messages it has whole (up to
  // max_batch).
  void ReceiveIpc(std::span<const zmq::pollitem_t> polled, Actions& batch,
                  std::vector<Outgoing>& out);
  void Dispatch(const Route& from, Origin origin, std::string_view payload, const Peer& peer,
                Actions& batch, std::vector<Outgoing>& out);
  // Who a tcp client is (its MUNGE credential), or the error to answer it with.
  Result<Caller> RemoteCaller(std::string_view payload, const Envelope& env);
  void Send(const Outgoing& o);
  // Numbers the events of `actions` (events.h), logs its job changes and installs it.
  void InstallActions(Actions& actions);
  // Publishes committed events on the event endpoints.
  void Publish(const std::vector<Event>& events);
  void AnswerWaiters(bool all_due);
  // Answers queued job listings, oldest first, for about kQueryBudgetMs (at least one):
  // the rest wait for the next loop turn, after the nodes' messages and the decisions.
  void AnswerQueries();
  std::string UserName(uint32_t uid);
  // Answers every pending ZAP request (CURVE handshakes on the node endpoints).
  void ServeZap();
  // Re-reads node_keys_dir when its modification time changed (a key added or removed),
  // or with `force` (an unknown key knocked) when the last scan is a second old.
  void ReloadNodeKeysIfChanged(bool force);

  SchedulerConfig config_;
  CoreConfig core_config_;
  Store& store_;
  const Clock& clock_;
  ClusterState state_;
  TimeMs now_ = 0;

  zmq::context_t context_;
  std::unique_ptr<IpcEndpoints> ipc_;      // ipc:// endpoints: callers known by peer credentials
  std::vector<IpcEndpoints::Incoming> ipc_in_;  // ReceiveIpc's messages (kept for its capacity)
  std::unique_ptr<zmq::socket_t> remote_;  // tcp:// endpoints: clients (MUNGE or read-only)
  std::unique_ptr<zmq::socket_t> nodes_;   // node_endpoints: execds
  std::unique_ptr<zmq::socket_t> zap_;     // REP on inproc://zeromq.zap.01 when CURVE is on
  bool curve_ = false;
  std::string curve_secret_;  // Z85, for the node endpoints
  NodeKeys config_keys_;  // from node_keys
  NodeKeys node_keys_;    // config_keys_ plus node_keys_dir: what ZAP accepts
  int64_t keys_dir_mtime_ns_ = -1;
  TimeMs keys_scanned_at_ = 0;  // monotonic
  std::set<std::string> refused_keys_;  // logged once each (bounded)
  std::map<std::string, Route> node_routes_;
  std::vector<Waiter> waiters_;
  std::deque<PendingQuery> queries_;
  std::vector<Outgoing> out_;  // Run's replies of the current batch (kept for its capacity)
  std::unique_ptr<zmq::socket_t> events_;  // PUB: corral events
  std::vector<std::string> event_bound_;
  int64_t next_event_seq_ = 1;
  TimeMs next_prune_ = 0;
  std::map<uint32_t, std::string> user_names_;
};

}  // namespace corral
