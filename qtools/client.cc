// Client: request/reply over a ZeroMQ DEALER socket. cppzmq throws zmq::error_t; every
// throw is caught here and turned into a Status, so nothing escapes to the tools.
#include "qtools/client.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/munge_auth.h"

namespace corral {
namespace {

// One context per process, deliberately never destroyed: zmq_ctx_term blocks until every
// socket is closed, and a tool that calls exit() with a Client still alive must not hang.
zmq::context_t& Context() {
  static zmq::context_t* context = new zmq::context_t(1);
  return *context;
}

constexpr int64_t kInterruptCheckMs = 200;
constexpr int64_t kConnectTimeoutMs = 5000;

}  // namespace

Client::Client(std::string endpoint, std::unique_ptr<zmq::socket_t> socket)
    : endpoint_(std::move(endpoint)), socket_(std::move(socket)) {
  if (const char* munge = std::getenv("CORRAL_MUNGE_SOCKET"); munge != nullptr) munge_socket_ = munge;
}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Result<Client> Client::Connect(const std::string& endpoint) {
  // A missing ipc socket file means no scheduler: say so now rather than after a timeout.
  if (endpoint.starts_with("ipc://") && endpoint.size() > 6 && endpoint[6] != '@') {
    const std::string path = endpoint.substr(6);
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
      return Error(Code::kUnavailable, "no scheduler is listening at " + endpoint + " (" + path +
                                           ": " + std::strerror(errno) + ")");
    }
  }
  try {
    auto socket = std::make_unique<zmq::socket_t>(Context(), zmq::socket_type::dealer);
    socket->set(zmq::sockopt::linger, 0);
    socket->set(zmq::sockopt::immediate, 1);
    socket->connect(endpoint);
    return Client(endpoint, std::move(socket));
  } catch (const zmq::error_t& e) {
    return Error(Code::kInvalidArgument,
                 "cannot connect to the scheduler at '" + endpoint + "': " + e.what());
  } catch (const std::exception& e) {
    return Error(Code::kInternal, std::string("cannot create a ZeroMQ socket: ") + e.what());
  }
}

Result<Client> Client::ConnectFromEnv() {
  const char* endpoint = std::getenv("CORRAL_SCHEDULER");
  if (endpoint == nullptr || *endpoint == '\0') {
    return Error(Code::kInvalidArgument,
                 "CORRAL_SCHEDULER is not set; run: eval \"$(corral local env --dir DIR)\"");
  }
  return Connect(endpoint);
}

Result<bool> Client::Poll(short events, int64_t deadline) {
  while (true) {
    if (interrupt_flag_ != nullptr && *interrupt_flag_ != 0) {
      return Error(Code::kUnavailable, std::string(kInterruptedMessage));
    }
    const int64_t left = deadline - MonotonicNowMs();
    if (left <= 0) return false;
    const int64_t slice = interrupt_flag_ != nullptr ? std::min(left, kInterruptCheckMs) : left;
    zmq_pollitem_t item{static_cast<void*>(*socket_), 0, events, 0};
    // The C API, not zmq::poll: it reports EINTR as a return value instead of throwing.
    const int n = zmq_poll(&item, 1, static_cast<long>(slice));
    if (n > 0) return true;
    if (n < 0) {
      if (zmq_errno() == EINTR) return Error(Code::kUnavailable, std::string(kInterruptedMessage));
      return Error(Code::kUnavailable,
                   std::string("waiting for the scheduler failed: ") + zmq_strerror(zmq_errno()));
    }
  }
}

Result<Message> Client::Call(const Message& request, int64_t timeout_ms) {
  transport_failed_ = true;
  const int64_t start = MonotonicNowMs();
  const int64_t deadline = start + timeout_ms;
  const std::string seconds = std::to_string((timeout_ms + 999) / 1000) + " s";

  // With ZMQ_IMMEDIATE the socket is writable only once a connection is up, so a dead
  // scheduler is reported after kConnectTimeoutMs instead of after the whole timeout.
  const int64_t connect_deadline = std::min(deadline, start + kConnectTimeoutMs);
  Result<bool> writable = Poll(ZMQ_POLLOUT, connect_deadline);
  if (!writable) return std::unexpected(writable.error());
  if (!*writable) {
    return Error(Code::kUnavailable, "cannot reach the scheduler at " + endpoint_ + " within " +
                                         std::to_string((connect_deadline - start + 999) / 1000) +
                                         " s (is it running?)");
  }
  // The pid keeps tags unique across processes sharing a scheduler log; the counter
  // across the calls of this process.
  const std::string tag = std::to_string(getpid()) + "-" + std::to_string(next_tag_++);
  std::string bytes = Encode(request, tag);
  // Over tcp the scheduler cannot see who we are: a MUNGE credential bound to these
  // bytes says it. Without munged the request goes anyway, as an anonymous one.
  std::string unsigned_reason;
  if (endpoint_.starts_with("tcp://")) {
    if (Result<std::string> signed_bytes = MungeSign(bytes, munge_socket_)) {
      bytes = std::move(*signed_bytes);
    } else {
      unsigned_reason = signed_bytes.error().message();
    }
  }
  try {
    if (!socket_->send(zmq::buffer(bytes), zmq::send_flags::dontwait)) {
      return Error(Code::kUnavailable, "cannot send to the scheduler at " + endpoint_ +
                                           " (the connection is not ready)");
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return Error(Code::kUnavailable, std::string(kInterruptedMessage));
    return Error(Code::kUnavailable,
                 "cannot send to the scheduler at " + endpoint_ + ": " + e.what());
  }

  std::string undecodable;  // why the last frame could not be read, for the timeout message
  while (true) {
    Result<bool> readable = Poll(ZMQ_POLLIN, deadline);
    if (!readable) return std::unexpected(readable.error());
    if (!*readable) {
      return Error(Code::kUnavailable, "no answer from the scheduler at " + endpoint_ + " within " +
                                           seconds + undecodable);
    }
    zmq::message_t reply;
    try {
      if (!socket_->recv(reply, zmq::recv_flags::dontwait)) continue;
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) return Error(Code::kUnavailable, std::string(kInterruptedMessage));
      return Error(Code::kUnavailable,
                   std::string("receiving from the scheduler failed: ") + e.what());
    }
    Result<Envelope> envelope = Decode(reply.to_string_view());
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

}  // namespace corral
