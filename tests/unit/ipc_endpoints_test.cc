// The scheduler's own ipc:// endpoint against real peers on real sockets: a libzmq
// DEALER (what corral-flood and the tests' raw sockets are), the client library's DEALER,
// and raw sockets that break the protocol. No scheduler: the test drives Serve itself,
// with the monotonic time it passes in (no sleeps for the handshake limit).
#include "scheduler/ipc_endpoints.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/protocol.h"
#include "common/zmtp_wire.h"
#include "qtools/client.h"
#include "tests/temp_dir.h"

using namespace corral;
using corral::testing::TempDir;

namespace {

// Polls and serves `ipc` until `done()` or 5 s have passed (a failed check then).
template <typename Done>
void PumpUntil(IpcEndpoints& ipc, std::vector<IpcEndpoints::Incoming>& in, Done done,
               size_t budget = 1000, int64_t mono_offset = 0) {
  const int64_t deadline = MonotonicNowMs() + 5000;
  while (!done()) {
    REQUIRE(MonotonicNowMs() < deadline);
    std::vector<zmq::pollitem_t> items;
    ipc.AddPollItems(items);
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(ipc.backlog() ? 0 : 20));
    ipc.Serve(items, budget, in, MonotonicNowMs() + mono_offset);
    ipc.FlushAll();
  }
}

// A raw stream connection to `path`.
int RawConnect(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

void WriteAll(int fd, const std::string& bytes) {
  REQUIRE(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

// Whether the server ended the connection (EOF) while `ipc` is served meanwhile.
bool ClosedByServer(IpcEndpoints& ipc, int fd) {
  std::vector<IpcEndpoints::Incoming> in;
  bool closed = false;
  PumpUntil(ipc, in, [&] {
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) closed = true;
    return closed;
  });
  return closed;
}

}  // namespace

TEST_CASE("ipc_endpoints: a libzmq DEALER is served as a ROUTER would serve it") {
  TempDir dir;
  const std::string path = dir.path() + "/s.sock";
  IpcEndpoints ipc({});
  REQUIRE(ipc.Listen("ipc://" + path).ok());
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0777);  // any local user may connect; the kernel says who

  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::routing_id, "execd/n1");
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect("ipc://" + path);
  const std::string big(300000, 'b');  // long frames each way
  dealer.send(zmq::buffer(std::string("hello")), zmq::send_flags::none);
  dealer.send(zmq::buffer(big), zmq::send_flags::none);
  dealer.send(zmq::buffer(std::string("a")), zmq::send_flags::sndmore);
  dealer.send(zmq::buffer(std::string("b")), zmq::send_flags::none);

  std::vector<IpcEndpoints::Incoming> in;
  PumpUntil(ipc, in, [&] { return in.size() >= 3; });
  REQUIRE(in.size() == 3);
  CHECK(in[0].payload == "hello");
  CHECK_FALSE(in[0].multipart);
  CHECK(in[0].identity == "execd/n1");
  CHECK(in[0].peer.uid == getuid());
  CHECK(in[0].peer.pid == getpid());
  CHECK(in[1].payload == big);
  CHECK(in[2].payload == "ab");
  CHECK(in[2].multipart);
  CHECK(ipc.connections() == 1);

  REQUIRE(ipc.Send(in[0].conn, "short reply"));
  REQUIRE(ipc.Send(in[0].conn, big));
  ipc.FlushAll();
  zmq::message_t reply;
  zmq::pollitem_t item{static_cast<void*>(dealer), 0, ZMQ_POLLIN, 0};
  for (const std::string& want : {std::string("short reply"), big}) {
    // Not all of the long reply may fit in the socket at once: serve POLLOUT meanwhile.
    PumpUntil(ipc, in, [&] { return zmq::poll(&item, 1, std::chrono::milliseconds(0)) > 0; });
    REQUIRE(dealer.recv(reply, zmq::recv_flags::dontwait));
    CHECK(reply.to_string() == want);
  }

  // A peer that goes away: its connection is closed, and a reply to it is refused.
  const uint64_t conn = in[0].conn;
  dealer.close();
  PumpUntil(ipc, in, [&] { return ipc.connections() == 0; });
  CHECK_FALSE(ipc.Send(conn, "too late"));
}

TEST_CASE("ipc_endpoints: the client library's Call gets its reply") {
  TempDir dir;
  const std::string endpoint = "ipc://" + dir.path() + "/s.sock";
  IpcEndpoints ipc({});
  REQUIRE(ipc.Listen(endpoint).ok());
  Result<Client> client = Client::Connect(endpoint);
  REQUIRE(client);
  Result<Message> reply = Error(Code::kInternal, "not called");
  std::thread caller([&] {
    CancelRequest c;
    c.ids = {7};
    reply = client->Call(c, 5000);
  });
  std::vector<IpcEndpoints::Incoming> in;
  PumpUntil(ipc, in, [&] { return !in.empty(); });
  Result<Envelope> request = Decode(in[0].payload);
  REQUIRE(request);
  CHECK(std::get<CancelRequest>(request->message).ids == std::vector<JobId>{7});
  SubmitReply answer;
  answer.id = 7;
  REQUIRE(ipc.Send(in[0].conn, Encode(answer, request->req)));
  ipc.FlushAll();
  caller.join();
  REQUIRE(reply);
  CHECK(std::get<SubmitReply>(*reply).id == 7);
}

TEST_CASE("ipc_endpoints: messages beyond the budget wait, in order, and are not lost") {
  TempDir dir;
  const std::string path = dir.path() + "/s.sock";
  IpcEndpoints ipc({});
  REQUIRE(ipc.Listen("ipc://" + path).ok());
  // Ten messages in one write: the first read takes them all.
  std::string bytes = zmtp::Greeting(false) + zmtp::ReadyCommand("DEALER");
  for (int i = 0; i < 10; ++i) zmtp::PutFrame(bytes, 0, std::to_string(i));
  const int fd = RawConnect(path);
  WriteAll(fd, bytes);
  std::vector<IpcEndpoints::Incoming> in;
  PumpUntil(ipc, in, [&] { return !in.empty(); }, 3);
  CHECK(in.size() == 3);
  CHECK(ipc.backlog());  // the loop must not wait: more are whole
  // Without any new poll event, each Serve hands out the next three.
  ipc.Serve({}, 3, in, MonotonicNowMs());
  CHECK(in.size() == 6);
  ipc.Serve({}, 3, in, MonotonicNowMs());
  ipc.Serve({}, 3, in, MonotonicNowMs());
  REQUIRE(in.size() == 10);
  for (int i = 0; i < 10; ++i) CHECK(in[i].payload == std::to_string(i));
  ipc.Serve({}, 3, in, MonotonicNowMs());
  CHECK_FALSE(ipc.backlog());
  CHECK(in.size() == 10);
  close(fd);
}

TEST_CASE("ipc_endpoints: protocol breakers lose their connection, the rest are served") {
  TempDir dir;
  const std::string path = dir.path() + "/s.sock";
  IpcEndpoints::Limits limits;
  limits.max_message = 1000;
  limits.max_output = 4096;
  IpcEndpoints ipc(limits);
  REQUIRE(ipc.Listen("ipc://" + path).ok());
  const std::string hello = zmtp::Greeting(false) + zmtp::ReadyCommand("DEALER");

  SUBCASE("not ZMTP at all") {
    const int fd = RawConnect(path);
    WriteAll(fd, std::string(64, 'G'));
    CHECK(ClosedByServer(ipc, fd));
    close(fd);
  }
  SUBCASE("a CURVE greeting is told why") {
    const int fd = RawConnect(path);
    std::string curve = zmtp::Greeting(false);
    curve.replace(12, 5, "CURVE");
    WriteAll(fd, curve);
    std::string got;
    std::vector<IpcEndpoints::Incoming> in;
    PumpUntil(ipc, in, [&] {
      char buf[4096];
      const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) got.append(buf, static_cast<size_t>(n));
      return n == 0;
    });
    CHECK(got.find("ERROR") != std::string::npos);
    CHECK(got.find("NULL") != std::string::npos);
    close(fd);
  }
  SUBCASE("a message before READY") {
    const int fd = RawConnect(path);
    std::string bytes = zmtp::Greeting(false);
    zmtp::PutFrame(bytes, 0, "early");
    WriteAll(fd, bytes);
    CHECK(ClosedByServer(ipc, fd));
    close(fd);
  }
  SUBCASE("a frame larger than the message limit") {
    const int fd = RawConnect(path);
    std::string bytes = hello;
    zmtp::PutFrame(bytes, 0, std::string(1001, 'x'));
    WriteAll(fd, bytes);
    CHECK(ClosedByServer(ipc, fd));
    close(fd);
  }
  SUBCASE("frames that add up to more than the limit") {
    const int fd = RawConnect(path);
    std::string bytes = hello;
    zmtp::PutFrame(bytes, zmtp::kMore, std::string(600, 'x'));
    zmtp::PutFrame(bytes, 0, std::string(600, 'x'));
    WriteAll(fd, bytes);
    CHECK(ClosedByServer(ipc, fd));
    close(fd);
  }
  SUBCASE("a PUB socket's READY is refused") {
    const int fd = RawConnect(path);
    WriteAll(fd, zmtp::Greeting(false) + zmtp::ReadyCommand("PUB"));
    CHECK(ClosedByServer(ipc, fd));
    close(fd);
  }
  SUBCASE("a handshake that never finishes ends at the limit") {
    const int fd = RawConnect(path);
    WriteAll(fd, zmtp::Greeting(false));  // and no READY
    std::vector<IpcEndpoints::Incoming> in;
    PumpUntil(ipc, in, [&] { return ipc.connections() == 1; });
    ipc.Serve({}, 10, in, MonotonicNowMs() + limits.handshake_ms - 1000);
    CHECK(ipc.connections() == 1);
    ipc.Serve({}, 10, in, MonotonicNowMs() + limits.handshake_ms + 1000);
    CHECK(ipc.connections() == 0);
    close(fd);
  }
  SUBCASE("a peer that reads none of its replies") {
    const int fd = RawConnect(path);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    std::string bytes = hello;
    zmtp::PutFrame(bytes, 0, "ask");
    WriteAll(fd, bytes);
    std::vector<IpcEndpoints::Incoming> in;
    PumpUntil(ipc, in, [&] { return !in.empty(); });
    bool refused = false;
    for (int i = 0; i < 10000 && !refused; ++i) {
      refused = !ipc.Send(in[0].conn, std::string(1000, 'r'));
      ipc.FlushAll();
    }
    CHECK(refused);
    CHECK(ipc.connections() == 0);
    close(fd);
  }

  // Whatever the breaker did, a well-behaved peer is still served.
  const int good = RawConnect(path);
  std::string bytes = hello;
  zmtp::PutFrame(bytes, 0, "fine");
  WriteAll(good, bytes);
  std::vector<IpcEndpoints::Incoming> in;
  PumpUntil(ipc, in, [&] { return !in.empty(); });
  CHECK(in[0].payload == "fine");
  close(good);
}

TEST_CASE("ipc_endpoints: a stale socket file is replaced and the file goes with the endpoint") {
  TempDir dir;
  const std::string path = dir.path() + "/s.sock";
  {
    IpcEndpoints first({});
    REQUIRE(first.Listen("ipc://" + path).ok());
    // A crashed scheduler leaves its file behind: the next one takes the path over.
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    IpcEndpoints second({});
    CHECK(second.Listen("ipc://" + path).ok());
    close(fd);
  }
  struct stat st {};
  CHECK(stat(path.c_str(), &st) != 0);  // removed with the endpoint
  IpcEndpoints bad({});
  const Status s = bad.Listen("ipc://" + dir.path() + "/" + std::string(200, 'x'));
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("too long") != std::string::npos);
  CHECK_FALSE(bad.Listen("tcp://127.0.0.1:1").ok());
}
