// The scheduler's ipc:// endpoints, served in its main thread without libzmq.
//
// Every local q-tool makes a connection, one request and goes. Through a libzmq ROUTER
// each of those crossed between libzmq's I/O thread and the main thread five or six
// times (accept, handshake, pipe attach, request, reply, close): on this project's
// 2-core machine that was 14 context switches and 1.2 ms of the scheduler's CPU per
// qsub, more than the submission itself (docs/performance.md). Here the main thread
// accepts, answers the handshake and reads the request itself, and the reply is written
// as soon as its batch commits.
//
// What is spoken is ZMTP 3.0 with the NULL mechanism, as a ROUTER (router_session.h):
// libzmq DEALER peers (corral-flood, the execd's socket, the tests' raw sockets) and the
// client library's own DEALER cannot tell it from libzmq. Callers are known by the
// kernel's credentials of the connection (SO_PEERCRED), as before.
//
// Limits, each ending only the offending connection: a frame larger than the message
// limit, a handshake not finished in time, a peer that lets more than
// Limits::max_output bytes of replies pile up unread, anything that is not ZMTP 3 NULL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "common/status.h"
#include "common/transport.h"
#include "scheduler/router_session.h"

namespace corral {

class IpcEndpoints {
 public:
  struct Limits {
    size_t max_message = 8 << 20;          // bytes of one message (all its frames)
    size_t max_output = size_t{256} << 20;  // bytes of replies waiting for one peer
    int64_t handshake_ms = 30000;           // libzmq's default handshake interval
  };
  // One whole message from a peer.
  struct Incoming {
    uint64_t conn = 0;
    std::string payload;  // the frames joined
    bool multipart = false;
    PeerCredentials peer;
    std::string identity;  // the peer's READY Identity (an execd's "execd/NODE")
  };

  explicit IpcEndpoints(Limits limits) : limits_(limits) {}
  IpcEndpoints(const IpcEndpoints&) = delete;
  IpcEndpoints& operator=(const IpcEndpoints&) = delete;
  // Closes every connection and removes the socket files.
  ~IpcEndpoints();

  // Listens on "ipc://PATH" (a file that is already there is replaced, as libzmq does;
  // the new one is mode 0777: who a caller is comes from the kernel, not the file mode)
  // or "ipc://@NAME" (the abstract namespace).
  Status Listen(const std::string& endpoint);

  // Appends what to wait for: the listening sockets, every connection (and POLLOUT
  // where replies wait). Serve takes the same items back after the poll.
  void AddPollItems(std::vector<zmq::pollitem_t>& items);
  // Accepts, reads and writes as `polled` says; then appends up to `budget` whole
  // messages to `in`. `mono_now` (monotonic ms) ends handshakes that took too long.
  void Serve(std::span<const zmq::pollitem_t> polled, size_t budget, std::vector<Incoming>& in,
             int64_t mono_now);
  // True when whole messages may still be buffered beyond the last budget: the caller
  // should call Serve again without waiting.
  bool backlog() const { return !backlog_.empty(); }

  // Queues one single-frame message to `conn`, written by the next FlushAll. False when
  // that connection is gone (or was just ended for not reading its replies).
  bool Send(uint64_t conn, std::string_view payload);
  // Writes what Send queued, as far as each socket takes it now (POLLOUT waits for the
  // rest): one write per connection and loop turn, not one per reply.
  void FlushAll();

  size_t connections() const { return conns_.size(); }

 private:
  struct Listener {
    int fd = -1;
    std::string path;  // removed on destruction; empty for the abstract namespace
  };
  struct Conn {
    explicit Conn(size_t max_message) : session(max_message) {}
    int fd = -1;
    PeerCredentials peer;
    int64_t opened_ms = 0;  // monotonic
    RouterSession session;
    std::string out;  // bytes not yet written, from out_at
    size_t out_at = 0;
    bool eof = false;
  };

  void Accept(const Listener& listener, int64_t mono_now);
  // Reads what is there (up to a bound per turn). An ended connection is marked eof and
  // closed by Serve once what it sent has been handed on.
  void Read(uint64_t id, Conn& c);
  // Writes what waits; false when the connection broke.
  bool Flush(Conn& c);
  // Takes whole messages into `in` until `budget`; false on a protocol violation.
  bool Parse(uint64_t id, Conn& c, size_t& budget, std::vector<Incoming>& in);
  void Close(uint64_t id);

  Limits limits_;
  std::vector<Listener> listeners_;
  std::unordered_map<uint64_t, Conn> conns_;
  uint64_t next_id_ = 1;
  std::vector<uint64_t> polled_;            // the connection of each polled item after the listeners
  std::unordered_set<uint64_t> backlog_;    // connections with unparsed bytes or at EOF
  std::vector<uint64_t> unflushed_;         // connections Send queued to since FlushAll
  size_t handshaking_ = 0;                  // connections not yet kOpen
  int64_t accept_paused_until_ = 0;         // after EMFILE: the listeners rest a moment
  std::string scratch_;                     // Read's buffer, shared by every connection
};

}  // namespace corral
