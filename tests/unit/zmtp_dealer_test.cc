// The client library's own ZMTP DEALER against a real libzmq ROUTER (as the scheduler
// binds it for tcp:// clients; its ipc:// endpoint is tests/unit/ipc_endpoints_test.cc):
// handshake, short and long frames both ways, pipelined requests, deadlines and
// interruption; and corral submit-many's line-to-spec rule.
#include "qtools/zmtp_dealer.h"

#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/protocol.h"
#include "common/transport.h"
#include "common/zmtp_wire.h"
#include "qtools/client.h"
#include "qtools/submit_many.h"

using namespace corral;

namespace {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/corral-zmtp-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

// A libzmq ROUTER as the scheduler sets up its tcp:// client endpoint, on a free port of
// 127.0.0.1 (the scheduler's ipc:// endpoint is its own, not libzmq's).
struct Router {
  Router() : socket(context, zmq::socket_type::router) {
    socket.set(zmq::sockopt::router_mandatory, 1);
    socket.set(zmq::sockopt::linger, 0);
    socket.bind("tcp://127.0.0.1:*");
    endpoint = socket.get(zmq::sockopt::last_endpoint);
  }
  // The next message: routing id and body; fails the test after 5 s.
  std::pair<std::string, std::string> Receive() {
    zmq::pollitem_t item{static_cast<void*>(socket), 0, ZMQ_POLLIN, 0};
    REQUIRE(zmq::poll(&item, 1, std::chrono::milliseconds(5000)) == 1);
    zmq::message_t id, body;
    REQUIRE(socket.recv(id, zmq::recv_flags::none));
    REQUIRE(socket.recv(body, zmq::recv_flags::none));
    return {id.to_string(), body.to_string()};
  }
  void Send(const std::string& id, const std::string& body) {
    socket.send(zmq::buffer(id), zmq::send_flags::sndmore);
    socket.send(zmq::buffer(body), zmq::send_flags::none);
  }
  zmq::context_t context;
  zmq::socket_t socket;
  std::string endpoint;
};

// A bare AF_UNIX listener at `path`: a scheduler's ipc endpoint played by hand.
struct RawListener {
  explicit RawListener(const std::string& path) : path(path) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd, 4) == 0);
  }
  ~RawListener() {
    close(fd);
    unlink(path.c_str());
  }
  // The next connection; fails the test after 5 s.
  int Accept() const {
    pollfd p{fd, POLLIN, 0};
    REQUIRE(poll(&p, 1, 5000) == 1);
    const int conn = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(conn >= 0);
    timeval tv{5, 0};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return conn;
  }
  int fd = -1;
  std::string path;
};

// Reads from `fd` until `bytes` have come (5 s at most).
std::string ReadAtLeast(int fd, size_t bytes) {
  std::string got;
  char buf[4096];
  while (got.size() < bytes) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    REQUIRE(n > 0);
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// The first `n` requests on a raw connection, after checking that the client's greeting
// and READY came first.
std::vector<Envelope> ReadRequests(int conn, size_t n) {
  const std::string hello = zmtp::Greeting(false) + zmtp::ReadyCommand("DEALER");
  std::string got = ReadAtLeast(conn, hello.size() + 2);
  CHECK(got.substr(0, hello.size()) == hello);
  got.erase(0, hello.size());
  std::vector<Envelope> requests;
  while (requests.size() < n) {
    Result<std::optional<zmtp::Frame>> frame = zmtp::ParseFrame(got, 1 << 20);
    REQUIRE(frame);
    if (!*frame) {
      got += ReadAtLeast(conn, 1);
      continue;
    }
    Result<Envelope> request = Decode((*frame)->body);
    REQUIRE(request);
    requests.push_back(*request);
    got.erase(0, (*frame)->size);
  }
  return requests;
}
Envelope ReadRequest(int conn) { return ReadRequests(conn, 1)[0]; }

// A SubmitReply to `request` naming job `id`; with `hello`, after the scheduler's
// handshake (READY with the pipelining property), all in one write.
void Answer(int conn, const Envelope& request, JobId id, bool hello = true) {
  SubmitReply answer;
  answer.id = id;
  std::string out = hello ? zmtp::Greeting(true) + zmtp::ReadyCommand("ROUTER", true) : "";
  zmtp::PutFrame(out, 0, Encode(answer, request.req));
  REQUIRE(send(conn, out.data(), out.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(out.size()));
}

CancelRequest CancelOf(JobId id) {
  CancelRequest c;
  c.ids = {id};
  return c;
}

// A client's Call (of job `id`, on its own thread) to a "scheduler" played by hand on a
// raw ipc listener.
struct HandPlayed {
  explicit HandPlayed(JobId id, int64_t timeout_ms = 5000) : listener(dir.path + "/s.sock") {
    Result<Client> c = Client::Connect("ipc://" + listener.path);
    REQUIRE(c);
    client.emplace(std::move(*c));
    caller = std::thread(
        [this, id, timeout_ms] { reply = client->Call(CancelOf(id), timeout_ms); });
  }
  ~HandPlayed() {
    if (caller.joinable()) caller.join();
  }
  Result<Message> Finish() {
    caller.join();
    return reply;
  }
  TempDir dir;
  RawListener listener;
  std::optional<Client> client;
  Result<Message> reply = Error(Code::kInternal, "not called");
  std::thread caller;
};

}  // namespace

TEST_CASE("zmtp_dealer: endpoints are parsed or refused with a reason") {
  Result<ZmtpEndpoint> ipc = ParseZmtpEndpoint("ipc:///tmp/x.sock");
  REQUIRE(ipc);
  CHECK(ipc->kind == ZmtpEndpoint::Kind::kIpc);
  CHECK(ipc->path == "/tmp/x.sock");
  Result<ZmtpEndpoint> tcp = ParseZmtpEndpoint("tcp://127.0.0.1:6444");
  REQUIRE(tcp);
  CHECK(tcp->host == "127.0.0.1");
  CHECK(tcp->port == "6444");
  Result<ZmtpEndpoint> v6 = ParseZmtpEndpoint("tcp://[::1]:6444");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK_FALSE(ParseZmtpEndpoint("inproc://x"));
  CHECK_FALSE(ParseZmtpEndpoint("tcp://host"));
  CHECK_FALSE(ParseZmtpEndpoint("tcp://host:port"));
  CHECK_FALSE(ParseZmtpEndpoint("ipc://"));
  CHECK(ParseZmtpEndpoint("udp://x:1").error().message().find("ipc://") != std::string::npos);
}

TEST_CASE("zmtp_dealer: talks to a libzmq ROUTER over tcp, short and long frames") {
  Router router;
  const std::string endpoint = router.endpoint;
  Result<ZmtpEndpoint> ep = ParseZmtpEndpoint(endpoint);
  REQUIRE(ep);
  Result<ZmtpDealer> dealer = ZmtpDealer::Connect(*ep, MonotonicNowMs() + 5000, nullptr);
  REQUIRE(dealer);

  REQUIRE(dealer->Send("hello", MonotonicNowMs() + 5000, nullptr).ok());
  auto [id, body] = router.Receive();
  CHECK(body == "hello");

  const std::string big(300000, 'x');  // a long frame (8-byte size) each way
  REQUIRE(dealer->Send(big, MonotonicNowMs() + 5000, nullptr).ok());
  CHECK(router.Receive().second == big);
  router.Send(id, "short reply");
  router.Send(id, big);
  Result<std::optional<std::string>> r1 = dealer->Receive(MonotonicNowMs() + 5000, nullptr);
  REQUIRE(r1);
  REQUIRE(*r1);
  CHECK(**r1 == "short reply");
  Result<std::optional<std::string>> r2 = dealer->Receive(MonotonicNowMs() + 5000, nullptr);
  REQUIRE(r2);
  REQUIRE(*r2);
  CHECK(**r2 == big);

  // Nothing more: the deadline ends the wait with no message and no error.
  Result<std::optional<std::string>> none = dealer->Receive(MonotonicNowMs() + 50, nullptr);
  REQUIRE(none);
  CHECK_FALSE(*none);

  // A multi-frame message arrives joined.
  router.socket.send(zmq::buffer(id), zmq::send_flags::sndmore);
  router.socket.send(zmq::buffer(std::string("ab")), zmq::send_flags::sndmore);
  router.socket.send(zmq::buffer(std::string("cd")), zmq::send_flags::none);
  Result<std::optional<std::string>> joined = dealer->Receive(MonotonicNowMs() + 5000, nullptr);
  REQUIRE(joined);
  REQUIRE(*joined);
  CHECK(**joined == "abcd");
}

TEST_CASE("zmtp_dealer: queued messages go out together, in order") {
  Router router;
  const std::string endpoint = router.endpoint;
  Result<ZmtpDealer> dealer =
      ZmtpDealer::Connect(*ParseZmtpEndpoint(endpoint), MonotonicNowMs() + 5000, nullptr);
  REQUIRE(dealer);
  for (int i = 0; i < 500; ++i) dealer->Queue("m" + std::to_string(i));
  REQUIRE(dealer->Flush(MonotonicNowMs() + 5000, nullptr).ok());
  std::string id;
  for (int i = 0; i < 500; ++i) {
    auto [from, body] = router.Receive();
    CHECK(body == "m" + std::to_string(i));
    id = from;
  }
  for (int i = 0; i < 500; ++i) router.Send(id, "r" + std::to_string(i));
  for (int i = 0; i < 500; ++i) {
    Result<std::optional<std::string>> r = dealer->Receive(MonotonicNowMs() + 5000, nullptr);
    REQUIRE(r);
    REQUIRE(*r);
    CHECK(**r == "r" + std::to_string(i));
  }
}

TEST_CASE("zmtp_dealer: no listener is Unavailable at the deadline; a set flag interrupts") {
  TempDir dir;
  const ZmtpEndpoint ep = *ParseZmtpEndpoint("ipc://" + dir.path + "/nobody.sock");
  const int64_t start = MonotonicNowMs();
  Result<ZmtpDealer> absent = ZmtpDealer::Connect(ep, start + 300, nullptr);
  REQUIRE_FALSE(absent);
  CHECK(absent.error().code() == Code::kUnavailable);
  CHECK(MonotonicNowMs() - start >= 300);

  volatile std::sig_atomic_t flag = 1;
  Result<ZmtpDealer> interrupted = ZmtpDealer::Connect(ep, MonotonicNowMs() + 5000, &flag);
  REQUIRE_FALSE(interrupted);
  CHECK(interrupted.error().message() == kInterruptedMessage);
}

TEST_CASE("zmtp_dealer: Client::CallMany answers each request in order, errors included") {
  Router router;
  const std::string endpoint = router.endpoint;
  Result<Client> client = Client::Connect(endpoint);
  REQUIRE(client);
  std::vector<Message> requests;
  for (int i = 0; i < 50; ++i) {
    CancelRequest c;
    c.ids = {i + 1};
    requests.push_back(c);
  }
  // The "scheduler": answers in reverse order of arrival within each window, the 8th
  // request (index 7) with an error.
  std::thread server([&] {
    int answered = 0;
    while (answered < 50) {
      std::vector<std::pair<std::string, Envelope>> got;
      do {
        auto received = router.Receive();  // not a structured binding: INFO captures it
        const std::string& id = received.first;
        const std::string& body = received.second;
        Result<Envelope> env = Decode(body);
        INFO(body, " ", env ? std::string() : env.error().message());
        REQUIRE(env);
        got.emplace_back(id, std::move(*env));
      } while (got.size() < 10);
      for (auto it = got.rbegin(); it != got.rend(); ++it) {
        const JobId asked = std::get<CancelRequest>(it->second.message).ids[0];
        SubmitReply answer;
        answer.id = asked;
        Message reply = asked == 8 ? Message(ErrorReply{Code::kNotFound, "no 8"}) : Message(answer);
        router.Send(it->first, Encode(reply, it->second.req));
        ++answered;
      }
    }
  });
  std::vector<Result<Message>> replies = client->CallMany(requests, 10, 5000);
  server.join();
  REQUIRE(replies.size() == 50);
  CHECK_FALSE(client->transport_failed());
  for (int i = 0; i < 50; ++i) {
    if (i == 7) {
      REQUIRE_FALSE(replies[i]);
      CHECK(replies[i].error().code() == Code::kNotFound);
      continue;
    }
    REQUIRE(replies[i]);
    CHECK(std::get<SubmitReply>(*replies[i]).id == i + 1);
  }
}

TEST_CASE("submit_many: one -b y job per command line, named after its line") {
  JobSpec base;
  base.cwd = "/work";
  base.hold = true;
  base.script = "ignored";
  std::vector<int> lines;
  Result<std::vector<JobSpec>> specs = SpecsFromLines(
      base, "echo a\n\n  # comment\nsleep 1 && echo 'b c'\r\n   \nlast", false, lines);
  REQUIRE(specs);
  REQUIRE(specs->size() == 3);
  CHECK(lines == std::vector<int>{1, 4, 6});
  CHECK((*specs)[0].args == std::vector<std::string>{"/bin/sh", "-c", "echo a"});
  CHECK((*specs)[1].args == std::vector<std::string>{"/bin/sh", "-c", "sleep 1 && echo 'b c'"});
  CHECK((*specs)[1].name == "line4");
  CHECK((*specs)[2].name == "line6");
  for (const JobSpec& s : *specs) {
    CHECK(s.binary);
    CHECK(s.script.empty());
    CHECK(s.hold);
    CHECK(s.cwd == "/work");
  }
  base.name = "sweep";
  Result<std::vector<JobSpec>> named = SpecsFromLines(base, "a\nb\n", true, lines);
  REQUIRE(named);
  CHECK((*named)[1].name == "sweep");
  CHECK_FALSE(SpecsFromLines(base, "\n# only comments\n", false, lines));
  CHECK_FALSE(SpecsFromLines(base, std::string("a\0b", 3), false, lines));
}

TEST_CASE("zmtp_dealer: over ipc the request follows the handshake at once, in one write") {
  HandPlayed play(3, 5000);
  const RawListener& listener = play.listener;
  const int conn = listener.Accept();
  // Greeting, READY and the request, all before we have said a word.
  Answer(conn, ReadRequest(conn), 3);
  const Result<Message> reply = play.Finish();
  close(conn);
  REQUIRE(reply);
  CHECK(std::get<SubmitReply>(*reply).id == 3);
}

TEST_CASE("zmtp_dealer: a scheduler that closes before it speaks gets the request again") {
  HandPlayed play(4, 5000);
  const RawListener& listener = play.listener;
  const int first = listener.Accept();
  ReadAtLeast(first, 1);  // the request came ...
  close(first);           // ... and the "scheduler" died without a word
  const int second = listener.Accept();
  Answer(second, ReadRequest(second), 4);
  const Result<Message> reply = play.Finish();
  close(second);
  REQUIRE(reply);
  CHECK(std::get<SubmitReply>(*reply).id == 4);
}

TEST_CASE("zmtp_dealer: an older scheduler that drops the pipelined request is named, not retried") {
  HandPlayed play(5, 20000);
  const RawListener& listener = play.listener;
  const int conn = listener.Accept();
  // What libzmq does: its greeting and READY (no X-Corral-Pipelined), then it drops the
  // connection over the message that came before its READY.
  const std::string libzmq = zmtp::Greeting(true) + zmtp::ReadyCommand("ROUTER");
  REQUIRE(send(conn, libzmq.data(), libzmq.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(libzmq.size()));
  ReadAtLeast(conn, 1);
  close(conn);
  const Result<Message> reply = play.Finish();
  REQUIRE_FALSE(reply);
  CHECK(reply.error().code() == Code::kUnavailable);
  CHECK(reply.error().message().find("older than this client") != std::string::npos);
  pollfd p{listener.fd, POLLIN, 0};
  CHECK(poll(&p, 1, 0) == 0);  // no second connection: the request was not sent again
}

TEST_CASE("zmtp_dealer: an ERROR in the handshake is PermissionDenied with its reason") {
  HandPlayed play(6, 20000);
  const RawListener& listener = play.listener;
  const int conn = listener.Accept();
  const std::string refusal = zmtp::Greeting(true) + zmtp::ErrorCommand("Unknown user");
  REQUIRE(send(conn, refusal.data(), refusal.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(refusal.size()));
  const Result<Message> reply = play.Finish();
  close(conn);
  REQUIRE_FALSE(reply);
  CHECK(reply.error().code() == Code::kPermissionDenied);
  CHECK(reply.error().message().find("Unknown user") != std::string::npos);
  pollfd p{listener.fd, POLLIN, 0};
  CHECK(poll(&p, 1, 0) == 0);  // said once, not tried again
}

TEST_CASE("zmtp_dealer: CallMany sends everything again when the scheduler closed unheard") {
  TempDir dir;
  RawListener listener(dir.path + "/s.sock");
  Result<Client> client = Client::Connect("ipc://" + listener.path);
  REQUIRE(client);
  std::vector<Result<Message>> replies;
  std::thread caller([&] {
    replies = client->CallMany({CancelOf(1), CancelOf(2), CancelOf(3)}, 10, 5000);
  });
  const int first = listener.Accept();
  ReadAtLeast(first, 1);  // the requests came ...
  close(first);           // ... and the "scheduler" died without a word
  const int second = listener.Accept();
  const std::vector<Envelope> requests = ReadRequests(second, 3);
  for (size_t i = 0; i < requests.size(); ++i) {
    Answer(second, requests[i], std::get<CancelRequest>(requests[i].message).ids[0] * 10, i == 0);
  }
  caller.join();
  close(second);
  REQUIRE(replies.size() == 3);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(replies[i]);
    CHECK(std::get<SubmitReply>(*replies[i]).id == (i + 1) * 10);
  }
  CHECK_FALSE(client->transport_failed());
}
