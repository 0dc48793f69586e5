// The client library's own ZMTP DEALER against a real libzmq ROUTER (as the scheduler
// binds it for tcp:// clients; its ipc:// endpoint is tests/unit/ipc_endpoints_test.cc):
// handshake, short and long frames both ways, pipelined requests, deadlines and
// interruption; and corral submit-many's line-to-spec rule.
#include "qtools/zmtp_dealer.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/transport.h"
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

// A ROUTER as the scheduler sets it up, bound to ipc in a temporary directory.
struct Router {
  explicit Router(const std::string& endpoint) : socket(context, zmq::socket_type::router) {
    socket.set(zmq::sockopt::router_mandatory, 1);
    socket.set(zmq::sockopt::linger, 0);
    socket.bind(endpoint);
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

TEST_CASE("zmtp_dealer: talks to a libzmq ROUTER over ipc, short and long frames") {
  TempDir dir;
  const std::string endpoint = "ipc://" + dir.path + "/router.sock";
  Router router(endpoint);
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
  TempDir dir;
  const std::string endpoint = "ipc://" + dir.path + "/router.sock";
  Router router(endpoint);
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
  TempDir dir;
  const std::string endpoint = "ipc://" + dir.path + "/router.sock";
  Router router(endpoint);
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
