// The one request/reply library every q-tool uses to talk to the scheduler: a ZeroMQ
// DEALER connection (qtools/zmtp_dealer.h: the wire protocol without libzmq, whose
// start-up cost more than a q-tool's request), a correlation tag per request, bounded
// waits. It knows nothing of Grid Engine text (sge_format.h) or of argv (qsub_options.h,
// cli.h).
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/protocol.h"
#include "common/status.h"
#include "qtools/zmtp_dealer.h"

namespace corral {

// kInterruptedMessage (zmtp_dealer.h) is the message of the Unavailable status a Call
// returns when a signal interrupted the wait.

// Records a client asks for per page of a listing: a few milliseconds of the scheduler's
// time each (bench/perf.sh queries, corral-decide-bench's query figures).
inline constexpr int64_t kQueryPageRecords = 2000;

class Client {
 public:
  // A client of `endpoint` (ipc://... or tcp://...): InvalidArgument for a malformed
  // endpoint, Unavailable at once when an ipc:// socket file does not exist. The
  // connection is made by the first Call (and again by a later one if it was lost), so
  // an absent scheduler shows up there.
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
  // the scheduler at <endpoint> within N s". A connection lost while waiting is made
  // again and the wait goes on to the deadline (as libzmq would: the request may have
  // been lost, it is never sent twice). A signal during the wait (or the flag set by
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

  // Call for many requests at once, pipelined: sends `requests` in order, keeping at most
  // `window` (>= 1) unanswered, and returns one result per request in the same order (the
  // reply, or an ErrorReply as its Status, as Call). The scheduler commits what arrives
  // together in one transaction, so the window sets how many share an fsync. The wait
  // for the next reply is bounded by `timeout_ms` since the last one arrived. When the
  // transport fails (timeout, lost connection, interruption) every request not yet
  // answered gets that Unavailable status and transport_failed() is true: those may or
  // may not have been carried out. Never throws.
  std::vector<Result<Message>> CallMany(const std::vector<Message>& requests, size_t window,
                                        int64_t timeout_ms);

  // True when the last Call failed without an answer from the scheduler (timeout,
  // interruption, socket error), false when the scheduler answered (even with an error).
  bool transport_failed() const { return transport_failed_; }
  const std::string& endpoint() const { return endpoint_; }

  // While waiting, Call also checks `*flag` (set by the caller's signal handler) at least
  // every 200 ms, so a signal that lands between two polls is not missed. Not owned.
  void SetInterruptFlag(const volatile std::sig_atomic_t* flag) { interrupt_flag_ = flag; }

 private:
  Client(std::string endpoint, ZmtpEndpoint parsed);
  // Connects if not connected: Unavailable "cannot reach ..." after `deadline`.
  Status EnsureConnected(int64_t start, int64_t deadline);
  // What a failed Receive (`lost`) ends a call with: an interruption; a handshake the
  // scheduler refused (an ERROR command) or a peer that is no ROUTER; or a scheduler older
  // than this client that dropped a request sent right behind the handshake
  // (ZmtpDealer::refused_pipelining: not resent, it may have been read). nullopt when the
  // connection was only lost and may be made again.
  std::optional<Status> GiveUp(const Status& lost) const;
  // The request's bytes with a fresh tag in `tag` (signed over tcp; `unsigned_reason`
  // says why not when munged could not sign).
  std::string Frame(const Message& request, std::string& tag, std::string& unsigned_reason);

  std::string endpoint_;
  ZmtpEndpoint parsed_;
  std::string munge_socket_;  // "" = libmunge's default; used for tcp endpoints only
  ZmtpDealer dealer_;
  uint64_t next_tag_ = 1;
  bool transport_failed_ = false;
  const volatile std::sig_atomic_t* interrupt_flag_ = nullptr;
};

}  // namespace corral
