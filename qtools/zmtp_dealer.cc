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

namespace corral {
namespace {

constexpr int64_t kRetryMs = 100;           // libzmq's default reconnect interval
constexpr int64_t kInterruptCheckMs = 200;  // how often `interrupt` is looked at
constexpr size_t kFlushAt = 64 << 10;       // Queue writes out beyond this much

// Frame flags (RFC 23 §2.3).
constexpr uint8_t kMore = 0x01;
constexpr uint8_t kLong = 0x02;
constexpr uint8_t kCommand = 0x04;

Error Interrupted() { return Error(Code::kUnavailable, std::string(kInterruptedMessage)); }

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// signature (0xFF, 8 bytes of padding, 0x7F), version 3.0, mechanism "NULL" padded to 20
// bytes, as-server 0, 31 bytes of filler.
std::string Greeting() {
  std::string g(64, '\0');
  g[0] = '\xff';
  g[9] = '\x7f';
  g[10] = 3;
  g[11] = 0;
  std::memcpy(&g[12], "NULL", 4);
  return g;
}

void PutBigEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetBigEndian(std::string_view in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

void PutFrame(std::string& out, uint8_t flags, std::string_view body) {
  if (body.size() > 255) {
    out.push_back(static_cast<char>(flags | kLong));
    PutBigEndian(out, body.size(), 8);
  } else {
    out.push_back(static_cast<char>(flags));
    out.push_back(static_cast<char>(body.size()));
  }
  out.append(body);
}

// READY with the properties a libzmq DEALER sends.
std::string ReadyCommand() {
  std::string body = "\x05READY";
  auto property = [&](std::string_view name, std::string_view value) {
    body.push_back(static_cast<char>(name.size()));
    body.append(name);
    PutBigEndian(body, value.size(), 4);
    body.append(value);
  };
  property("Socket-Type", "DEALER");
  property("Identity", "");
  std::string frame;
  PutFrame(frame, kCommand, body);
  return frame;
}

// The value of property `name` in a READY body after its name, or nullopt.
std::optional<std::string_view> Property(std::string_view props, std::string_view name) {
  while (!props.empty()) {
    const size_t name_len = static_cast<uint8_t>(props[0]);
    if (props.size() < 1 + name_len + 4) return std::nullopt;
    const std::string_view key = props.substr(1, name_len);
    const uint64_t value_len = GetBigEndian(props.substr(1 + name_len), 4);
    props.remove_prefix(1 + name_len + 4);
    if (value_len > props.size()) return std::nullopt;
    if (key.size() == name.size() &&
        std::equal(key.begin(), key.end(), name.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      return props.substr(0, value_len);
    }
    props.remove_prefix(value_len);
  }
  return std::nullopt;
}

// A non-blocking socket connected (or connecting) to `ep`; -1 with errno on failure.
int OpenSocket(const ZmtpEndpoint& ep, const addrinfo* tcp) {
  if (ep.kind == ZmtpEndpoint::Kind::kIpc) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (ep.path.size() >= sizeof addr.sun_path) {
      errno = ENAMETOOLONG;
      return -1;
    }
    std::memcpy(addr.sun_path, ep.path.data(), ep.path.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + ep.path.size() + 1);
    if (ep.path[0] == '@') {  // the abstract namespace: a leading NUL, no terminator
      addr.sun_path[0] = '\0';
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + ep.path.size());
    }
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 && errno != EINPROGRESS) {
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
    if (ep.path.empty() || ep.path == "@") {
      return Error(Code::kInvalidArgument, "an ipc:// endpoint needs a path");
    }
    if (ep.path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return Error(Code::kInvalidArgument, "the ipc:// path is longer than a socket path may be");
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
        Status s = dealer.Handshake(deadline, interrupt);
        if (s.ok()) return dealer;
        if (s.message() == kInterruptedMessage || s.code() == Code::kInvalidArgument) {
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

Status ZmtpDealer::Handshake(int64_t deadline, Interrupt interrupt) {
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
  if (Status s = WriteAll(Greeting() + ReadyCommand(), deadline, interrupt); !s.ok()) return s;
  while (in_.size() - in_at_ < 64) {
    Result<bool> got = Fill(deadline, interrupt);
    if (!got) return got.error();
    if (!*got) return Error(Code::kUnavailable, "no ZMTP greeting from the peer in time");
  }
  const std::string_view greeting(in_.data() + in_at_, 64);
  if (static_cast<uint8_t>(greeting[0]) != 0xff || greeting[9] != 0x7f || greeting[10] < 3) {
    return Error(Code::kInvalidArgument, "the peer does not speak ZMTP 3 (not a ZeroMQ socket?)");
  }
  if (greeting.substr(12, 5) != std::string_view("NULL\0", 5)) {
    return Error(Code::kInvalidArgument,
                 "the peer asks for a security mechanism other than NULL (CURVE: that endpoint "
                 "is for execds)");
  }
  in_at_ += 64;
  while (true) {
    Result<std::optional<Frame>> frame = NextFrame(1 << 16);
    if (!frame) return frame.error();
    if (!*frame) {
      Result<bool> got = Fill(deadline, interrupt);
      if (!got) return got.error();
      if (!*got) return Error(Code::kUnavailable, "no ZMTP handshake from the peer in time");
      continue;
    }
    const std::string_view body = (*frame)->body;
    if (((*frame)->flags & kCommand) == 0 || body.empty() ||
        body.size() < 1 + static_cast<size_t>(static_cast<uint8_t>(body[0]))) {
      return Error(Code::kInvalidArgument, "the peer broke the ZMTP handshake");
    }
    const std::string_view name = body.substr(1, static_cast<uint8_t>(body[0]));
    const std::string_view rest = body.substr(1 + name.size());
    if (name == "ERROR") {
      const std::string_view reason = rest.empty() ? rest : rest.substr(1);
      return Error(Code::kPermissionDenied,
                   "the scheduler refused the connection: " + std::string(reason));
    }
    if (name != "READY") continue;
    const std::optional<std::string_view> type = Property(rest, "Socket-Type");
    if (!type || (*type != "ROUTER" && *type != "REP")) {
      return Error(Code::kInvalidArgument, "the peer is not a ZeroMQ ROUTER socket");
    }
    return OkStatus();
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

void ZmtpDealer::Queue(std::string_view payload) { PutFrame(out_, 0, payload); }

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
    if (n > 0) return true;
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
  const std::string_view avail(in_.data() + in_at_, in_.size() - in_at_);
  if (avail.size() < 2) return std::nullopt;
  const uint8_t flags = static_cast<uint8_t>(avail[0]);
  size_t header = 2;
  uint64_t size = static_cast<uint8_t>(avail[1]);
  if (flags & kLong) {
    header = 9;
    if (avail.size() < header) return std::nullopt;
    size = GetBigEndian(avail.substr(1), 8);
  }
  if (size > max_bytes) {
    Close();
    return Error(Code::kUnavailable,
                 "a message of " + std::to_string(size) + " bytes is more than the limit");
  }
  if (avail.size() - header < size) return std::nullopt;
  in_at_ += header + size;
  return Frame{flags, avail.substr(header, size)};
}

bool ZmtpDealer::HasBufferedMessage() const {
  std::string_view avail(in_.data() + in_at_, in_.size() - in_at_);
  while (avail.size() >= 2) {
    const uint8_t flags = static_cast<uint8_t>(avail[0]);
    const size_t header = (flags & kLong) ? 9 : 2;
    if (avail.size() < header) return false;
    const uint64_t size =
        (flags & kLong) ? GetBigEndian(avail.substr(1), 8) : static_cast<uint8_t>(avail[1]);
    if (avail.size() - header < size) return false;
    if ((flags & (kMore | kCommand)) == 0) return true;
    avail.remove_prefix(header + size);
  }
  return false;
}

Result<std::optional<std::string>> ZmtpDealer::Receive(int64_t deadline, Interrupt interrupt,
                                                       size_t max_bytes) {
  if (fd_ < 0) return Error(Code::kUnavailable, "not connected");
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
