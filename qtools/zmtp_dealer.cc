// ZMTP 3.0 (https://rfc.zeromq.org/spec/23/) as a DEALER with the NULL mechanism: the
// 64-byte greeting, one READY command each way, then frames. What libzmq would add
// (reconnecting in the background, queues, I/O threads) a one-shot client does not need.
#include "qtools/zmtp_dealer.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <utility>

#include "common/clock.h"
#include "common/transport.h"
#include "common/zmtp_wire.h"

namespace corral {
namespace {

constexpr int64_t kRetryMs = 100;           // libzmq's default reconnect interval
constexpr int64_t kInterruptCheckMs = 200;  // how often `interrupt` is looked at
constexpr size_t kFlushAt = 64 << 10;       // Queue writes out beyond this much

using zmtp::kCommand;
using zmtp::kMore;

Error Interrupted() { return Error(Code::kUnavailable, std::string(kInterruptedMessage)); }

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// A non-blocking socket connected (or connecting) to `ep`; -1 with errno on failure.
int OpenSocket(const ZmtpEndpoint& ep, const addrinfo* tcp) {
  if (ep.kind == ZmtpEndpoint::Kind::kIpc) {
    Result<UnixAddress> address = UnixSocketAddress(ep.path);
    if (!address) {  // ParseZmtpEndpoint already checked the path
      errno = ENAMETOOLONG;
      return -1;
    }
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&address->addr), address->len) != 0 &&
        errno != EINPROGRESS) {
      const int saved = errno;
      close(fd);
      errno = saved;
      return -1;
    }
    return fd;
  }
  const int fd =
      socket(tcp->ai_family, tcp->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, tcp->ai_protocol);
  if (fd < 0) return -1;
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, tcp->ai_addr, tcp->ai_addrlen) != 0 && errno != EINPROGRESS) {
    const int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

// Waits on `fd` alone (or on nothing, fd -1: a pause) up to the deadline.
Result<bool> PollUntil(int fd, short events, int64_t deadline, Interrupt interrupt) {
  while (true) {
    if (interrupt != nullptr && *interrupt != 0) return Interrupted();
    const int64_t left = deadline - MonotonicNowMs();
    if (left <= 0) return false;
    const int64_t slice = interrupt != nullptr ? std::min(left, kInterruptCheckMs) : left;
    pollfd p{fd, events, 0};
    const int n = poll(&p, fd >= 0 ? 1 : 0, static_cast<int>(slice));
    if (n > 0) return true;
    if (n < 0) {
      if (errno == EINTR) return Interrupted();
      return Error(Code::kUnavailable, Errno("poll"));
    }
  }
}

}  // namespace

Result<ZmtpEndpoint> ParseZmtpEndpoint(std::string_view endpoint) {
  ZmtpEndpoint ep;
  if (endpoint.starts_with("ipc://")) {
    ep.kind = ZmtpEndpoint::Kind::kIpc;
    ep.path = std::string(endpoint.substr(6));
    if (Result<UnixAddress> address = UnixSocketAddress(ep.path); !address) {
      return std::unexpected(address.error());
    }
    return ep;
  }
  if (endpoint.starts_with("tcp://")) {
    ep.kind = ZmtpEndpoint::Kind::kTcp;
    const std::string_view rest = endpoint.substr(6);
    const size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) {
      return Error(Code::kInvalidArgument, "a tcp:// endpoint needs HOST:PORT");
    }
    std::string_view host = rest.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    ep.host = std::string(host);
    ep.port = std::string(rest.substr(colon + 1));
    if (ep.host == "*" || ep.port.find_first_not_of("0123456789") != std::string::npos) {
      return Error(Code::kInvalidArgument, "a tcp:// endpoint needs HOST:PORT with a numeric port");
    }
    return ep;
  }
  return Error(Code::kInvalidArgument, "unsupported endpoint (use ipc://PATH or tcp://HOST:PORT)");
}

ZmtpDealer::ZmtpDealer(ZmtpDealer&& other) noexcept { *this = std::move(other); }

ZmtpDealer& ZmtpDealer::operator=(ZmtpDealer&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    pipelined_ = std::exchange(other.pipelined_, false);
    peer_greeted_ = std::exchange(other.peer_greeted_, false);
    peer_pipelines_ = std::exchange(other.peer_pipelines_, false);
    peer_spoke_ = std::exchange(other.peer_spoke_, false);
    out_ = std::move(other.out_);
    in_ = std::move(other.in_);
    in_at_ = std::exchange(other.in_at_, 0);
    partial_ = std::move(other.partial_);
  }
  return *this;
}

ZmtpDealer::~ZmtpDealer() { Close(); }

void ZmtpDealer::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  // pipelined_, peer_greeted_, peer_pipelines_ and peer_spoke_ stay: they describe the
  // connection just closed (peer_spoke(), refused_pipelining()).
  out_.clear();
  in_.clear();
  in_at_ = 0;
  partial_.clear();
}

Result<ZmtpDealer> ZmtpDealer::Connect(const ZmtpEndpoint& endpoint, int64_t deadline,
                                       Interrupt interrupt) {
  addrinfo* resolved = nullptr;
  struct Free {
    addrinfo*& p;
    ~Free() {
      if (p != nullptr) freeaddrinfo(p);
    }
  } free_resolved{resolved};
  std::string last_error = "the deadline passed";
  while (true) {
    const addrinfo* tcp = nullptr;
    if (endpoint.kind == ZmtpEndpoint::Kind::kTcp) {
      if (resolved == nullptr) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        const int rc = getaddrinfo(endpoint.host.c_str(), endpoint.port.c_str(), &hints, &resolved);
        if (rc != 0) {
          resolved = nullptr;
          last_error = endpoint.host + ": " + gai_strerror(rc);
        }
      }
      tcp = resolved;
    }
    if (endpoint.kind == ZmtpEndpoint::Kind::kIpc || tcp != nullptr) {
      const int fd = OpenSocket(endpoint, tcp);
      if (fd >= 0) {
        ZmtpDealer dealer(fd);
        Status s = dealer.Greet(endpoint.kind == ZmtpEndpoint::Kind::kTcp, deadline, interrupt);
        if (s.ok()) return dealer;
        if (s.message() == kInterruptedMessage || s.code() == Code::kInvalidArgument ||
            s.code() == Code::kPermissionDenied) {
          return std::unexpected(s);
        }
        last_error = s.message();
      } else {
        last_error = Errno("connect");
      }
    }
    // Not there yet (refused, no socket file, handshake cut short): try again shortly.
    const int64_t pause = std::min(deadline, MonotonicNowMs() + kRetryMs);
    Result<bool> waited = PollUntil(-1, 0, pause, interrupt);
    if (!waited) return std::unexpected(waited.error());
    if (MonotonicNowMs() >= deadline) return Error(Code::kUnavailable, last_error);
  }
}

Status ZmtpDealer::Greet(bool eager, int64_t deadline, Interrupt interrupt) {
  // A non-blocking tcp connect completes when the socket becomes writable.
  Result<bool> writable = Wait(POLLOUT, deadline, interrupt);
  if (!writable) return writable.error();
  if (!*writable) return Error(Code::kUnavailable, "connect: timed out");
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
    errno = err;
    return Error(Code::kUnavailable, Errno("connect"));
  }
  // Our greeting and READY go together: a NULL-mechanism peer needs nothing from us first.
  out_ = zmtp::Greeting(false) + zmtp::ReadyCommand("DEALER");
  if (!eager) {
    pipelined_ = true;
    return OkStatus();
  }
  if (Status s = Flush(deadline, interrupt); !s.ok()) return s;
  Result<bool> greeted = ReadPeerHandshake(deadline, interrupt);
  if (!greeted) return greeted.error();
  if (!*greeted) return Error(Code::kUnavailable, "no ZMTP handshake from the peer in time");
  return OkStatus();
}

Result<bool> ZmtpDealer::ReadPeerHandshake(int64_t deadline, Interrupt interrupt) {
  auto refuse = [this](Code code, std::string why) -> Result<bool> {
    Close();
    return Error(code, std::move(why));
  };
  while (in_.size() - in_at_ < zmtp::kGreetingBytes) {
    Result<bool> got = Fill(deadline, interrupt);
    if (!got || !*got) return got;
  }
  if (Status s = zmtp::CheckGreeting(std::string_view(in_).substr(in_at_)); !s.ok()) {
    return refuse(s.code(), s.message());
  }
  in_at_ += zmtp::kGreetingBytes;
  while (true) {
    Result<std::optional<Frame>> frame = NextFrame(1 << 16);
    if (!frame) return std::unexpected(frame.error());
    if (!*frame) {
      Result<bool> got = Fill(deadline, interrupt);
      if (!got || !*got) return got;
      continue;
    }
    const std::optional<zmtp::Command> command =
        ((*frame)->flags & kCommand) ? zmtp::ParseCommand((*frame)->body) : std::nullopt;
    if (!command) return refuse(Code::kInvalidArgument, "the peer broke the ZMTP handshake");
    if (command->name == "ERROR") {
      const std::string_view reason = command->data.empty() ? "" : command->data.substr(1);
      return refuse(Code::kPermissionDenied,
                    "the scheduler refused the connection: " + std::string(reason));
    }
    if (command->name != "READY") continue;
    const std::optional<std::string_view> type = zmtp::Property(command->data, "Socket-Type");
    if (!type || (*type != "ROUTER" && *type != "REP")) {
      return refuse(Code::kInvalidArgument, "the peer is not a ZeroMQ ROUTER socket");
    }
    peer_greeted_ = true;
    peer_pipelines_ = zmtp::Property(command->data, zmtp::kPipelinedProperty).has_value();
    return true;
  }
}

Result<bool> ZmtpDealer::Wait(short events, int64_t deadline, Interrupt interrupt) {
  return PollUntil(fd_, events, deadline, interrupt);
}

Status ZmtpDealer::WriteAll(std::string_view bytes, int64_t deadline, Interrupt interrupt) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) {
      if (interrupt != nullptr && *interrupt != 0) return Interrupted();
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      Result<bool> ready = Wait(POLLOUT, deadline, interrupt);
      if (!ready) return ready.error();
      if (!*ready) return Error(Code::kUnavailable, "the peer takes no more data (timed out)");
      continue;
    }
    const std::string why = Errno("send");
    Close();
    return Error(Code::kUnavailable, why);
  }
  return OkStatus();
}

void ZmtpDealer::Queue(std::string_view payload) { zmtp::PutFrame(out_, 0, payload); }

Status ZmtpDealer::Flush(int64_t deadline, Interrupt interrupt) {
  if (fd_ < 0) return Error(Code::kUnavailable, "not connected");
  std::string bytes = std::move(out_);
  out_.clear();
  return WriteAll(bytes, deadline, interrupt);
}

Result<bool> ZmtpDealer::Fill(int64_t deadline, Interrupt interrupt) {
  if (in_at_ > 0 && in_at_ * 2 >= in_.size()) {
    in_.erase(0, in_at_);
    in_at_ = 0;
  }
  while (true) {
    const size_t old = in_.size();
    const size_t want = std::max<size_t>(65536, in_.capacity() - old);
    // Not resize(): zeroing 64 KiB per read was 7% of a qsub's own CPU time (perf).
    ssize_t n = 0;
    in_.resize_and_overwrite(old + want, [&](char* data, size_t) {
      n = recv(fd_, data + old, want, 0);
      return old + (n > 0 ? static_cast<size_t>(n) : 0);
    });
    if (n > 0) {
      peer_spoke_ = true;
      return true;
    }
    if (n == 0) {
      Close();
      return Error(Code::kUnavailable, "the peer closed the connection");
    }
    if (errno == EINTR) {
      if (interrupt != nullptr && *interrupt != 0) return Interrupted();
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      const std::string why = Errno("recv");
      Close();
      return Error(Code::kUnavailable, why);
    }
    Result<bool> ready = Wait(POLLIN, deadline, interrupt);
    if (!ready || !*ready) return ready;
  }
}

Result<std::optional<ZmtpDealer::Frame>> ZmtpDealer::NextFrame(size_t max_bytes) {
  Result<std::optional<zmtp::Frame>> frame =
      zmtp::ParseFrame(std::string_view(in_).substr(in_at_), max_bytes);
  if (!frame) {
    Close();
    return Error(Code::kUnavailable, frame.error().message());
  }
  if (!*frame) return std::nullopt;
  in_at_ += (*frame)->size;
  return Frame{(*frame)->flags, (*frame)->body};
}

bool ZmtpDealer::HasBufferedMessage() const {
  if (!peer_greeted_) return false;
  std::string_view avail = std::string_view(in_).substr(in_at_);
  while (true) {
    Result<std::optional<zmtp::Frame>> frame = zmtp::ParseFrame(avail, SIZE_MAX);
    if (!frame || !*frame) return false;
    if (((*frame)->flags & (kMore | kCommand)) == 0) return true;
    avail.remove_prefix((*frame)->size);
  }
}

Result<std::optional<std::string>> ZmtpDealer::Receive(int64_t deadline, Interrupt interrupt,
                                                       size_t max_bytes) {
  if (fd_ < 0) return Error(Code::kUnavailable, "not connected");
  if (!peer_greeted_) {
    Result<bool> greeted = ReadPeerHandshake(deadline, interrupt);
    if (!greeted) return std::unexpected(greeted.error());
    if (!*greeted) return std::nullopt;
  }
  while (true) {
    Result<std::optional<Frame>> frame = NextFrame(max_bytes);
    if (!frame) return std::unexpected(frame.error());
    if (!*frame) {
      Result<bool> got = Fill(deadline, interrupt);
      if (!got) return std::unexpected(got.error());
      if (!*got) return std::nullopt;
      continue;
    }
    const Frame f = **frame;
    if (f.flags & kCommand) continue;  // PING and the like: ZMTP 3.0 peers send none we need
    if (partial_.size() + f.body.size() > max_bytes) {
      Close();
      return Error(Code::kUnavailable, "a message larger than the limit");
    }
    if (f.flags & kMore) {
      partial_.append(f.body);
      continue;
    }
    if (partial_.empty()) return std::string(f.body);
    std::string whole = std::move(partial_);
    partial_.clear();
    whole.append(f.body);
    return whole;
  }
}

}  // namespace corral
