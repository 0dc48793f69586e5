#include "scheduler/ipc_endpoints.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "common/zmtp_wire.h"

namespace corral {
namespace {

constexpr size_t kReadChunk = 64 << 10;
constexpr size_t kReadPerTurn = 1 << 20;  // per connection and Serve: the others get a turn
constexpr int kAcceptPerTurn = 256;
constexpr int64_t kAcceptPauseMs = 100;  // out of descriptors: let some close first

void Log(const std::string& line) { std::cerr << "corral-scheduler: " << line << std::endl; }

}  // namespace

IpcEndpoints::~IpcEndpoints() {
  for (auto& [id, c] : conns_) close(c.fd);
  for (const Listener& l : listeners_) {
    close(l.fd);
    if (!l.path.empty()) unlink(l.path.c_str());
  }
}

Status IpcEndpoints::Listen(const std::string& endpoint) {
  if (!endpoint.starts_with("ipc://") || endpoint.size() == 6) {
    return Error(Code::kInvalidArgument, "'" + endpoint + "' is not an ipc://PATH endpoint");
  }
  const std::string path = endpoint.substr(6);
  Result<UnixAddress> address = UnixSocketAddress(path);
  if (!address) return address.error();
  const bool abstract = address->abstract;
  // A stale socket of an earlier scheduler is replaced, as libzmq does.
  if (!abstract) unlink(path.c_str());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(Code::kUnavailable, std::string("socket: ") + std::strerror(errno));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address->addr), address->len) != 0 ||
      listen(fd, SOMAXCONN) != 0) {
    const std::string why = std::strerror(errno);
    close(fd);
    return Error(Code::kUnavailable, "cannot listen on " + endpoint + ": " + why);
  }
  if (!abstract) chmod(path.c_str(), 0777);
  listeners_.push_back({fd, abstract ? std::string() : path});
  return OkStatus();
}

void IpcEndpoints::AddPollItems(std::vector<zmq::pollitem_t>& items) {
  const bool resting = accept_paused_until_ != 0;
  for (const Listener& l : listeners_) {
    // While resting after EMFILE the listeners are polled for nothing (the slot keeps
    // Serve's indices simple); the loop's tick brings Serve back to end the rest.
    items.push_back({nullptr, l.fd, static_cast<short>(resting ? 0 : ZMQ_POLLIN), 0});
  }
  polled_.clear();
  for (const auto& [id, c] : conns_) {
    short events = ZMQ_POLLIN;
    if (c.out.size() > c.out_at) events |= ZMQ_POLLOUT;
    items.push_back({nullptr, c.fd, events, 0});
    polled_.push_back(id);
  }
}

void IpcEndpoints::Serve(std::span<const zmq::pollitem_t> polled, size_t budget,
                         std::vector<Incoming>& in, int64_t mono_now) {
  if (accept_paused_until_ != 0 && mono_now >= accept_paused_until_) accept_paused_until_ = 0;
  const size_t n_listeners = std::min(listeners_.size(), polled.size());
  for (size_t i = 0; i < n_listeners; ++i) {
    if (polled[i].revents & ZMQ_POLLIN) Accept(listeners_[i], mono_now);
  }
  for (size_t i = n_listeners; i < polled.size() && i - n_listeners < polled_.size(); ++i) {
    const short revents = polled[i].revents;
    if (revents == 0) continue;
    const uint64_t id = polled_[i - n_listeners];
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    Conn& c = it->second;
    if ((revents & ZMQ_POLLOUT) && !Flush(c)) {
      Close(id);
      continue;
    }
    if (revents & (ZMQ_POLLIN | ZMQ_POLLERR)) Read(id, c);
  }
  // Whole messages, a connection at a time, within the budget; the rest stay for the
  // next turn (backlog()).
  std::vector<uint64_t> ready(backlog_.begin(), backlog_.end());
  std::sort(ready.begin(), ready.end());  // oldest connection first: a stable order
  for (uint64_t id : ready) {
    auto it = conns_.find(id);
    if (it == conns_.end()) {
      backlog_.erase(id);
      continue;
    }
    Conn& c = it->second;
    if (budget == 0) break;
    if (!Parse(id, c, budget, in)) {
      Close(id);
      continue;
    }
    if (budget > 0) {  // it stopped for want of bytes: nothing whole is left
      backlog_.erase(id);
      if (c.eof) Close(id);  // what it sent is handed on; replies have nowhere to go
    }
  }
  if (handshaking_ > 0) {
    std::vector<uint64_t> late;
    for (const auto& [id, c] : conns_) {
      if (!c.session.open() && mono_now - c.opened_ms > limits_.handshake_ms) {
        late.push_back(id);
      }
    }
    for (uint64_t id : late) Close(id);
  }
}

void IpcEndpoints::Accept(const Listener& listener, int64_t mono_now) {
  for (int i = 0; i < kAcceptPerTurn; ++i) {
    const int fd = accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        Log(std::string("cannot accept a local connection (") + std::strerror(errno) +
            "); not accepting for " + std::to_string(kAcceptPauseMs) + " ms");
        accept_paused_until_ = mono_now + kAcceptPauseMs;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        Log(std::string("accept on a local endpoint failed: ") + std::strerror(errno));
      }
      return;
    }
    Conn c(limits_.max_message);
    c.fd = fd;
    c.opened_ms = mono_now;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      c.peer = PeerCredentials{cred.uid, cred.gid, cred.pid};
    } else {
      close(fd);  // a caller we cannot name: refused, as a libzmq ipc socket would have
      continue;
    }
    c.out = RouterSession::Hello();
    const uint64_t id = next_id_++;
    auto it = conns_.emplace(id, std::move(c)).first;
    ++handshaking_;
    if (!Flush(it->second)) Close(id);
  }
}

void IpcEndpoints::Read(uint64_t id, Conn& c) {
  // Read into one buffer for all connections, then keep what came: a 64 KiB buffer per
  // connection cost two brk calls (0.2 ms) per qsub, glibc trimming the heap after each.
  if (scratch_.size() < kReadChunk) scratch_.resize(kReadChunk);
  size_t got = 0;
  while (got < kReadPerTurn) {
    const ssize_t n = recv(c.fd, scratch_.data(), scratch_.size(), 0);
    if (n > 0) {
      c.session.Feed(std::string_view(scratch_.data(), static_cast<size_t>(n)));
      got += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      c.eof = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    c.eof = true;  // ECONNRESET and the like: what was read is still handed on
    break;
  }
  if (c.session.unparsed() > 0 || c.eof) backlog_.insert(id);
}

bool IpcEndpoints::Flush(Conn& c) {
  while (c.out_at < c.out.size()) {
    const ssize_t n = send(c.fd, c.out.data() + c.out_at, c.out.size() - c.out_at, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_at += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  c.out.clear();
  c.out_at = 0;
  return true;
}

bool IpcEndpoints::Parse(uint64_t id, Conn& c, size_t& budget, std::vector<Incoming>& in) {
  const bool was_open = c.session.open();
  while (budget > 0) {
    Result<std::optional<RouterSession::Message>> m = c.session.Next();
    if (!m) {
      Log("closed a local connection (pid " + std::to_string(c.peer.pid) + "): " +
          m.error().message());
      // Said once, best effort, before the connection is closed.
      const std::string& refusal = c.session.refusal();
      if (!refusal.empty()) (void)!send(c.fd, refusal.data(), refusal.size(), MSG_NOSIGNAL);
      return false;
    }
    if (!*m) break;
    Incoming msg;
    msg.conn = id;
    msg.payload = std::move((*m)->payload);
    msg.multipart = (*m)->multipart;
    msg.peer = c.peer;
    msg.identity = c.session.identity();
    in.push_back(std::move(msg));
    --budget;
  }
  if (!was_open && c.session.open()) --handshaking_;
  return true;
}

bool IpcEndpoints::Send(uint64_t conn, std::string_view payload) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return false;
  Conn& c = it->second;
  if (c.out_at > 0 && c.out_at * 2 >= c.out.size()) {
    c.out.erase(0, c.out_at);
    c.out_at = 0;
  }
  if (c.out.size() == c.out_at) unflushed_.push_back(conn);
  zmtp::PutFrame(c.out, 0, payload);
  if (c.out.size() - c.out_at > limits_.max_output) {
    Log("closed a local connection (pid " + std::to_string(c.peer.pid) + "): more than " +
        std::to_string(limits_.max_output) + " bytes of replies unread");
    Close(conn);
    return false;
  }
  return true;
}

void IpcEndpoints::FlushAll() {
  for (uint64_t id : unflushed_) {
    auto it = conns_.find(id);
    if (it != conns_.end() && !Flush(it->second)) Close(id);
  }
  unflushed_.clear();
}

void IpcEndpoints::Close(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  if (!it->second.session.open()) --handshaking_;
  close(it->second.fd);
  conns_.erase(it);
  backlog_.erase(id);
}

}  // namespace corral
