// The scheduler's shell: the ZeroMQ loop around the pure core. Each loop iteration
// receives a batch of messages, lets the core handle them and decide, persists the
// resulting Actions in one SQLite transaction (group commit), installs them, and only
// then sends replies and orders. Single-threaded; all waiting is zmq_poll.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "common/clock.h"
#include "common/config.h"
#include "scheduler/core.h"
#include "scheduler/store.h"

namespace corral {

class Server {
 public:
  // `store` and `clock` must outlive the server.
  Server(SchedulerConfig config, Store& store, const Clock& clock);

  // Loads the state, binds every endpoint and writes STATE_DIR/endpoints.
  Status Start();
  // Serves until SIGTERM or SIGINT (taken from a signalfd; the caller blocks them);
  // SIGHUP reloads the policy file (an invalid one is logged and the old one kept).
  Status Run(int signal_fd);
  void ReloadPolicy();

 private:
  struct Route {
    zmq::socket_t* socket = nullptr;
    std::string routing_id;
  };
  struct Outgoing {
    Route to;
    Message message;
    std::string req;
    bool to_client = false;  // replaced by an error if the batch fails to commit
  };
  struct Waiter {
    Route from;
    std::string req;
    std::vector<JobId> ids;
    TimeMs deadline = 0;  // monotonic
  };

  void Receive(zmq::socket_t& socket, bool local, Actions& batch, std::vector<Outgoing>& out);
  void Dispatch(const Route& from, bool local, zmq::message_t& payload, Actions& batch,
                std::vector<Outgoing>& out);
  void Send(const Outgoing& o);
  void AnswerWaiters(bool all_due);
  std::string UserName(uint32_t uid);

  SchedulerConfig config_;
  CoreConfig core_config_;
  Store& store_;
  const Clock& clock_;
  ClusterState state_;
  TimeMs now_ = 0;

  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> local_;   // ipc:// endpoints: callers known by peer credentials
  std::unique_ptr<zmq::socket_t> remote_;  // tcp:// endpoints: execds, read-only clients
  std::map<std::string, Route> node_routes_;
  std::vector<Waiter> waiters_;
  std::map<uint32_t, std::string> user_names_;
};

}  // namespace corral
