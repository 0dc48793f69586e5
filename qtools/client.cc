// Client: request/reply over one ZMTP DEALER connection (zmtp_dealer.h). Nothing here
// throws; every failure is a Status.
#include "qtools/client.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "common/clock.h"
#include "common/munge_auth.h"

namespace corral {
namespace {

constexpr int64_t kConnectTimeoutMs = 5000;

std::string Seconds(int64_t ms) { return std::to_string((ms + 999) / 1000) + " s"; }

}  // namespace

Client::Client(std::string endpoint, ZmtpEndpoint parsed)
    : endpoint_(std::move(endpoint)), parsed_(std::move(parsed)) {
  if (const char* munge = std::getenv("CORRAL_MUNGE_SOCKET"); munge != nullptr)
    munge_socket_ = munge;
}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Result<Client> Client::Connect(const std::string& endpoint) {
  Result<ZmtpEndpoint> parsed = ParseZmtpEndpoint(endpoint);
  if (!parsed) {
    return Error(Code::kInvalidArgument, "cannot connect to the scheduler at '" + endpoint +
                                             "': " + parsed.error().message());
  }
  // A missing ipc socket file means no scheduler: say so now rather than after a timeout.
  if (parsed->kind == ZmtpEndpoint::Kind::kIpc && parsed->path[0] != '@') {
    struct stat st {};
    if (stat(parsed->path.c_str(), &st) != 0) {
      return Error(Code::kUnavailable, "no scheduler is listening at " + endpoint + " (" +
                                           parsed->path + ": " + std::strerror(errno) + ")");
    }
  }
  return Client(endpoint, std::move(*parsed));
}

Result<Client> Client::ConnectFromEnv() {
  const char* endpoint = std::getenv("CORRAL_SCHEDULER");
  if (endpoint == nullptr || *endpoint == '\0') {
    return Error(Code::kInvalidArgument,
                 "CORRAL_SCHEDULER is not set; run: eval \"$(corral local env --dir DIR)\"");
  }
  return Connect(endpoint);
}

std::optional<Status> Client::GiveUp(const Status& lost) const {
  if (lost.message() == kInterruptedMessage) return lost;
  if (lost.code() != Code::kUnavailable) {  // a refused handshake, or a peer that is no ROUTER
    return Status(lost.code(),
                  "cannot talk to the scheduler at " + endpoint_ + ": " + lost.message());
  }
  if (dealer_.refused_pipelining()) {
    return Status(Code::kUnavailable,
                  "the scheduler at " + endpoint_ + " closed the connection (" + lost.message() +
                      "): it is older than this client, whose request follows its handshake "
                      "at once; restart the scheduler from the same Corral version");
  }
  return std::nullopt;
}

Status Client::EnsureConnected(int64_t start, int64_t deadline) {
  if (dealer_.connected()) return OkStatus();
  Result<ZmtpDealer> dealer = ZmtpDealer::Connect(parsed_, deadline, interrupt_flag_);
  if (!dealer) {
    const Status& e = dealer.error();
    if (e.message() == kInterruptedMessage || e.code() != Code::kUnavailable) return e;
    return Error(Code::kUnavailable, "cannot reach the scheduler at " + endpoint_ + " within " +
                                         Seconds(deadline - start) + " (is it running?)");
  }
  dealer_ = std::move(*dealer);
  return OkStatus();
}

std::string Client::Frame(const Message& request, std::string& tag, std::string& unsigned_reason) {
  // The pid keeps tags unique across processes sharing a scheduler log; the counter
  // across the calls of this process.
  tag = std::to_string(getpid()) + "-" + std::to_string(next_tag_++);
  std::string bytes = Encode(request, tag);
  // Over tcp the scheduler cannot see who we are: a MUNGE credential bound to these
  // bytes says it. Without munged the request goes anyway, as an anonymous one.
  if (parsed_.kind == ZmtpEndpoint::Kind::kTcp) {
    if (Result<std::string> signed_bytes = MungeSign(bytes, munge_socket_)) {
      bytes = std::move(*signed_bytes);
    } else {
      unsigned_reason = signed_bytes.error().message();
    }
  }
  return bytes;
}

Result<Message> Client::Call(const Message& request, int64_t timeout_ms) {
  transport_failed_ = true;
  const int64_t start = MonotonicNowMs();
  const int64_t deadline = start + timeout_ms;
  // A dead scheduler is reported after kConnectTimeoutMs instead of after the whole timeout.
  if (Status s = EnsureConnected(start, std::min(deadline, start + kConnectTimeoutMs)); !s.ok()) {
    return std::unexpected(s);
  }
  std::string tag;
  std::string unsigned_reason;
  const std::string bytes = Frame(request, tag, unsigned_reason);
  if (Status s = dealer_.Send(bytes, deadline, interrupt_flag_); !s.ok()) {
    if (s.message() == kInterruptedMessage) return std::unexpected(s);
    // The connection broke since the last call (a restarted scheduler): the request did
    // not leave, so it may go once more on a new one.
    if (Status c = EnsureConnected(start, std::min(deadline, start + kConnectTimeoutMs)); !c.ok()) {
      return std::unexpected(c);
    }
    if (Status again = dealer_.Send(bytes, deadline, interrupt_flag_); !again.ok()) {
      if (again.message() == kInterruptedMessage) return std::unexpected(again);
      return Error(Code::kUnavailable,
                   "cannot send to the scheduler at " + endpoint_ + ": " + again.message());
    }
  }

  std::string undecodable;  // why the last frame could not be read, for the timeout message
  while (true) {
    Result<std::optional<std::string>> frame = dealer_.Receive(deadline, interrupt_flag_);
    if (!frame) {
      const Status lost = frame.error();
      if (std::optional<Status> final = GiveUp(lost)) return std::unexpected(*final);
      // Lost while waiting: connect again and wait on, as libzmq does. A scheduler that
      // never spoke on the old connection never read the request (its greeting comes
      // first), so the request goes again; otherwise its reply will not come, and this
      // ends at the deadline.
      const bool unread = !dealer_.peer_spoke();
      Status c = EnsureConnected(MonotonicNowMs(), deadline);
      if (!c.ok() && c.message() == kInterruptedMessage) return std::unexpected(c);
      if (c.ok() && unread) c = dealer_.Send(bytes, deadline, interrupt_flag_);
      if (!c.ok() || MonotonicNowMs() >= deadline) {
        return Error(Code::kUnavailable, "no answer from the scheduler at " + endpoint_ +
                                             " within " + Seconds(timeout_ms) + " (" +
                                             lost.message() + ")");
      }
      continue;
    }
    if (!*frame) {
      return Error(Code::kUnavailable, "no answer from the scheduler at " + endpoint_ + " within " +
                                           Seconds(timeout_ms) + undecodable);
    }
    Result<Envelope> envelope = Decode(**frame);
    // An undecodable frame or a reply to an abandoned earlier request: keep waiting.
    if (!envelope) {
      undecodable = " (a reply could not be decoded: " + envelope.error().message() + ")";
      continue;
    }
    if (envelope->req != tag) continue;
    transport_failed_ = false;
    if (const auto* error = std::get_if<ErrorReply>(&envelope->message)) {
      if (error->code == Code::kPermissionDenied && !unsigned_reason.empty()) {
        return Error(error->code, error->message + " (this request carried no MUNGE credential: " +
                                      unsigned_reason + ")");
      }
      return Error(error->code, error->message);
    }
    return std::move(envelope->message);
  }
}

std::vector<Result<Message>> Client::CallMany(const std::vector<Message>& requests, size_t window,
                                              int64_t timeout_ms) {
  std::vector<Result<Message>> results(requests.size(), Error(Code::kUnavailable, "not answered"));
  transport_failed_ = true;
  if (requests.empty()) {
    transport_failed_ = false;
    return results;
  }
  window = std::max<size_t>(window, 1);
  const int64_t start = MonotonicNowMs();
  auto fail_rest = [&](const std::vector<bool>& answered, const Status& why) {
    for (size_t i = 0; i < requests.size(); ++i) {
      if (!answered[i]) results[i] = std::unexpected(why);
    }
    return results;
  };
  std::vector<bool> answered(requests.size(), false);
  if (Status s = EnsureConnected(start, start + std::min(timeout_ms, kConnectTimeoutMs)); !s.ok()) {
    return fail_rest(answered, s);
  }
  // Tags are "<pid>-<n>" with consecutive n from here: a reply's n finds its request.
  const uint64_t first_tag = next_tag_;
  const std::string prefix = std::to_string(getpid()) + "-";
  std::vector<std::string> unsigned_reasons(requests.size());
  size_t sent = 0;
  size_t done = 0;
  int64_t deadline = start + timeout_ms;
  std::string undecodable;
  bool resent = false;
  while (done < requests.size()) {
    if (sent < requests.size() && sent - done < window) {
      while (sent < requests.size() && sent - done < window) {
        std::string tag;
        dealer_.Queue(Frame(requests[sent], tag, unsigned_reasons[sent]));
        ++sent;
      }
      if (Status s = dealer_.Flush(deadline, interrupt_flag_); !s.ok()) {
        return fail_rest(answered, Error(Code::kUnavailable, "cannot send to the scheduler at " +
                                                                 endpoint_ + ": " + s.message()));
      }
    }
    // Every reply already read, then one wait for more.
    do {
      Result<std::optional<std::string>> frame = dealer_.Receive(deadline, interrupt_flag_);
      if (!frame) {
        const Status lost = frame.error();
        if (std::optional<Status> final = GiveUp(lost)) return fail_rest(answered, *final);
        // As in Call: a scheduler that never spoke read none of them; send them all again,
        // once, with the same tags.
        if (!resent && done == 0 && !dealer_.peer_spoke() &&
            EnsureConnected(MonotonicNowMs(), deadline).ok()) {
          resent = true;
          sent = 0;
          next_tag_ = first_tag;
          break;
        }
        return fail_rest(answered, Error(Code::kUnavailable,
                                         "lost the connection to the scheduler at " + endpoint_ +
                                             ": " + lost.message()));
      }
      if (!*frame) {
        return fail_rest(answered, Error(Code::kUnavailable,
                                         "no answer from the scheduler at " + endpoint_ +
                                             " within " + Seconds(timeout_ms) + undecodable));
      }
      Result<Envelope> envelope = Decode(**frame);
      if (!envelope) {
        undecodable = " (a reply could not be decoded: " + envelope.error().message() + ")";
        continue;
      }
      uint64_t n = 0;
      const std::string& req = envelope->req;
      if (!req.starts_with(prefix) ||
          std::from_chars(req.data() + prefix.size(), req.data() + req.size(), n).ec !=
              std::errc() ||
          n < first_tag || n - first_tag >= sent || answered[n - first_tag]) {
        continue;  // a reply to an abandoned earlier request
      }
      const size_t i = n - first_tag;
      answered[i] = true;
      ++done;
      deadline = MonotonicNowMs() + timeout_ms;
      if (const auto* error = std::get_if<ErrorReply>(&envelope->message)) {
        std::string message = error->message;
        if (error->code == Code::kPermissionDenied && !unsigned_reasons[i].empty()) {
          message += " (this request carried no MUNGE credential: " + unsigned_reasons[i] + ")";
        }
        results[i] = std::unexpected(Status(error->code, std::move(message)));
      } else {
        results[i] = std::move(envelope->message);
      }
    } while (done < requests.size() && dealer_.HasBufferedMessage());
  }
  transport_failed_ = false;
  return results;
}

}  // namespace corral
