// A ZeroMQ DEALER peer written against the wire protocol itself (ZMTP 3.0, NULL mechanism,
// RFC 23), for the client library: a q-tool makes one or a few requests and exits, and
// libzmq's start-up (loading it and the libraries it needs, its I/O and reaper threads)
// cost more than the request. The scheduler's ROUTER sockets cannot tell it from libzmq.
// Plain blocking POSIX sockets with poll() deadlines; no threads, no reconnection.
// CURVE and the other mechanisms are not spoken (client endpoints do not use them).
#pragma once

#include <csignal>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace corral {

// Message of the Unavailable status a wait returns when a signal interrupted it.
inline constexpr std::string_view kInterruptedMessage = "interrupted by a signal";

// Set by the caller's signal handler; null = none. Not owned.
using Interrupt = const volatile std::sig_atomic_t*;

// A parsed endpoint a DEALER can connect to: "ipc://PATH", "ipc://@ABSTRACT",
// "tcp://HOST:PORT" (HOST a name, an IPv4 address or [IPv6]).
struct ZmtpEndpoint {
  enum class Kind { kIpc, kTcp };
  Kind kind = Kind::kIpc;
  std::string path;  // ipc: the socket path ('@' first for the abstract namespace)
  std::string host;  // tcp
  std::string port;  // tcp
};

// InvalidArgument naming what is wrong for anything else ("inproc://x", "tcp://h", ...).
Result<ZmtpEndpoint> ParseZmtpEndpoint(std::string_view endpoint);

// One connection. Every wait ends at a deadline on the monotonic clock (ms, as
// common/clock.h MonotonicNowMs) or when a signal interrupts it; `interrupt` (optional,
// not owned) is also checked every 200 ms, so that a signal landing between two waits
// is seen. Interrupted waits return Unavailable with kInterruptedMessage.
// Not thread-safe; movable, closes its descriptor.
class ZmtpDealer {
 public:
  ZmtpDealer() = default;
  ZmtpDealer(ZmtpDealer&& other) noexcept;
  ZmtpDealer& operator=(ZmtpDealer&& other) noexcept;
  ZmtpDealer(const ZmtpDealer&) = delete;
  ZmtpDealer& operator=(const ZmtpDealer&) = delete;
  ~ZmtpDealer();

  // Connects and starts the handshake. A peer that refuses the connection (or an ipc
  // socket file that does not exist yet) is tried again every 100 ms until `deadline`,
  // as libzmq reconnects. Unavailable when it never answers; InvalidArgument when the
  // peer is not a ZMTP 3 ROUTER.
  //
  // tcp: the handshake is done here (the peer is libzmq, which takes no message before
  // it has sent its own READY). ipc: the peer is the scheduler's own endpoint
  // (scheduler/ipc_endpoints.h), which reads whatever follows the handshake, so our
  // greeting and READY wait in the output for the first request and all three go in
  // one write; the first Receive reads the peer's side. That saves one of a qsub's two
  // round trips (docs/performance.md). Receive then also returns the handshake's errors.
  static Result<ZmtpDealer> Connect(const ZmtpEndpoint& endpoint, int64_t deadline,
                                    Interrupt interrupt);

  bool connected() const { return fd_ >= 0; }

  // Whether any byte came from the peer on the last connection, closed or not. A ROUTER
  // (libzmq or the scheduler's own) writes its greeting before it reads any message, so
  // a connection that broke before the peer said anything carried no request the peer
  // acted on: it may be sent again on a new one.
  bool peer_spoke() const { return peer_spoke_; }
  // After a Receive error: we sent a request behind our handshake, the peer spoke, and
  // no READY of its said it takes one (zmtp::kPipelinedProperty): a scheduler older than
  // this client (libzmq's ipc socket), which drops such a connection. (The scheduler's
  // own endpoint writes its greeting and READY in one write, so having heard from it
  // means having its READY.)
  bool refused_pipelining() const { return pipelined_ && peer_spoke_ && !peer_pipelines_; }

  // Queues one single-frame message (written out by Flush, or by Send once more than
  // 64 KiB wait). Never fails.
  void Queue(std::string_view payload);
  // Writes what Queue gathered. Unavailable on a broken connection (then closed).
  Status Flush(int64_t deadline, Interrupt interrupt);
  Status Send(std::string_view payload, int64_t deadline, Interrupt interrupt) {
    Queue(payload);
    return Flush(deadline, interrupt);
  }

  // The next whole message (its frames joined), or nullopt at `deadline`. Unavailable
  // when the peer closed the connection or broke the protocol (the connection is then
  // closed) or on interruption. Messages larger than `max_bytes` are a protocol error.
  Result<std::optional<std::string>> Receive(int64_t deadline, Interrupt interrupt,
                                             size_t max_bytes = size_t{1} << 31);

  // True when a whole message is already buffered (Receive returns without waiting).
  bool HasBufferedMessage() const;

 private:
  explicit ZmtpDealer(int fd) : fd_(fd) {}
  // Waits for the connection and queues our greeting and READY; with `eager`, also
  // writes them and reads the peer's.
  Status Greet(bool eager, int64_t deadline, Interrupt interrupt);
  // Reads and checks the peer's greeting and READY: true once done, false at the deadline.
  Result<bool> ReadPeerHandshake(int64_t deadline, Interrupt interrupt);
  // Waits until fd_ has `events` (POLLIN/POLLOUT): true, false at the deadline.
  Result<bool> Wait(short events, int64_t deadline, Interrupt interrupt);
  Status WriteAll(std::string_view bytes, int64_t deadline, Interrupt interrupt);
  // Reads what is available into in_ (waiting up to the deadline): false at the deadline.
  Result<bool> Fill(int64_t deadline, Interrupt interrupt);
  // One frame from in_ if complete: its flags and body; nullopt if more bytes are needed.
  struct Frame {
    uint8_t flags = 0;
    std::string_view body;
  };
  Result<std::optional<Frame>> NextFrame(size_t max_bytes);
  void Close();

  int fd_ = -1;
  bool pipelined_ = false;       // our handshake and first request went in one write
  bool peer_greeted_ = false;    // the peer's greeting and READY were read (this connection)
  bool peer_pipelines_ = false;  // ... and its READY had kPipelinedProperty
  bool peer_spoke_ = false;      // a byte came from the peer (the last connection)
  std::string out_;  // queued frames not yet written
  std::string in_;   // bytes read and not yet consumed, from in_at_
  size_t in_at_ = 0;
  std::string partial_;  // frames of a multi-frame message read so far
};

}  // namespace corral
