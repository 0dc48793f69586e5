// The one request/reply library every q-tool uses to talk to the scheduler: a ZeroMQ
// DEALER socket, a correlation tag per request, bounded waits. It knows nothing of
// Grid Engine text (sge_format.h) or of argv (qsub_options.h, cli.h).
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/protocol.h"
#include "common/status.h"

namespace zmq {
class socket_t;
}

namespace corral {

// Message of the Unavailable status a Call returns when a signal interrupted the wait.
inline constexpr std::string_view kInterruptedMessage = "interrupted by a signal";
// Records a client asks for per page of a listing: a few milliseconds of the scheduler's
// time each (bench/perf.sh queries, corral-decide-bench's query figures).
inline constexpr int64_t kQueryPageRecords = 2000;

class Client {
 public:
  // Connects a DEALER socket (linger 0, immediate) to `endpoint` (ipc://... or tcp://...).
  // Unavailable at once when an ipc:// socket file does not exist; otherwise ZeroMQ
  // connects in the background and an absent scheduler shows up in Call.
  // Over tcp every request carries a MUNGE credential (docs/security.md) from munged at
  // $CORRAL_MUNGE_SOCKET, or libmunge's default socket when that is unset; without munged
  // the request goes without one, and the scheduler treats it as anonymous (read-only).
  static Result<Client> Connect(const std::string& endpoint);
  // Connect($CORRAL_SCHEDULER); InvalidArgument naming the fix when the variable is unset.
  static Result<Client> ConnectFromEnv();

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // Sends `request` with a fresh tag and waits up to `timeout_ms` for the reply with the
  // same tag (replies to earlier, abandoned requests are dropped). An ErrorReply becomes
  // a Status with its code and message. No connection within 5 s: Unavailable "cannot
  // reach the scheduler at <endpoint> ..."; no answer in time: Unavailable "no answer from
  // the scheduler at <endpoint> within N s". A signal during the wait (or the flag set by
  // SetInterruptFlag turning non-zero): Unavailable with kInterruptedMessage. Never throws.
  Result<Message> Call(const Message& request, int64_t timeout_ms);

  // A job listing in pages (QueryRequest paging, protocol.h): asks for `query` with
  // limit kQueryPageRecords (unless the query sets one), hands each page to `on_page` as it
  // arrives and asks for the next, until the scheduler says there is no more or a Call or
  // `on_page` fails (that Status is returned). Each page is its own Call of `timeout_ms`,
  // so the scheduler serves other requests between pages and no reply is large.
  Status QueryPages(QueryRequest query, int64_t timeout_ms,
                    const std::function<Status(QueryReply&)>& on_page);
  // Every page of `query` gathered into one reply (missing ids of all pages, no `next`).
  Result<QueryReply> Query(const QueryRequest& query, int64_t timeout_ms);

  // True when the last Call failed without an answer from the scheduler (timeout,
  // interruption, socket error), false when the scheduler answered (even with an error).
  bool transport_failed() const { return transport_failed_; }
  const std::string& endpoint() const { return endpoint_; }

  // While waiting, Call also checks `*flag` (set by the caller's signal handler) at least
  // every 200 ms, so a signal that lands between two polls is not missed. Not owned.
  void SetInterruptFlag(const volatile std::sig_atomic_t* flag) { interrupt_flag_ = flag; }

 private:
  Client(std::string endpoint, std::unique_ptr<zmq::socket_t> socket);
  // True once the socket has `events` (ZMQ_POLLIN/POLLOUT), false at `deadline`
  // (monotonic ms), Unavailable when interrupted or on a socket error.
  Result<bool> Poll(short events, int64_t deadline);

  std::string endpoint_;
  std::string munge_socket_;  // "" = libmunge's default; used for tcp endpoints only
  std::unique_ptr<zmq::socket_t> socket_;
  uint64_t next_tag_ = 1;
  bool transport_failed_ = false;
  const volatile std::sig_atomic_t* interrupt_flag_ = nullptr;
};

}  // namespace corral
