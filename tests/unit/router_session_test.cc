// RouterSession over bytes alone: the handshake and messages arrive in pieces of any size,
// and each way of breaking the protocol ends the session with a reason.
#include "scheduler/router_session.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/zmtp_wire.h"

using namespace corral;

namespace {

std::string DealerHello(std::string_view type = "DEALER") {
  return zmtp::Greeting(false) + zmtp::ReadyCommand(type);
}

// Every message `s` yields from `bytes` fed `piece` bytes at a time.
std::vector<RouterSession::Message> FeedInPieces(RouterSession& s, const std::string& bytes,
                                                 size_t piece) {
  std::vector<RouterSession::Message> got;
  for (size_t at = 0; at < bytes.size(); at += piece) {
    s.Feed(std::string_view(bytes).substr(at, piece));
    while (true) {
      Result<std::optional<RouterSession::Message>> m = s.Next();
      REQUIRE(m);
      if (!*m) break;
      got.push_back(std::move(**m));
    }
  }
  return got;
}

}  // namespace

TEST_CASE("router_session: a DEALER's handshake and messages, in pieces of any size") {
  std::string bytes = DealerHello();
  zmtp::PutFrame(bytes, 0, "one");
  zmtp::PutFrame(bytes, zmtp::kMore, "two-");
  zmtp::PutFrame(bytes, 0, "parts");
  const std::string long_body(70000, 'L');
  zmtp::PutFrame(bytes, 0, long_body);
  for (size_t piece : {size_t{1}, size_t{7}, size_t{64}, size_t{100000}}) {
    CAPTURE(piece);
    RouterSession s(1 << 20);
    std::vector<RouterSession::Message> got = FeedInPieces(s, bytes, piece);
    CHECK(s.open());
    CHECK(s.unparsed() == 0);
    REQUIRE(got.size() == 3);
    CHECK(got[0].payload == "one");
    CHECK_FALSE(got[0].multipart);
    CHECK(got[1].payload == "two-parts");
    CHECK(got[1].multipart);
    CHECK(got[2].payload == long_body);
  }
}

TEST_CASE("router_session: Hello is a server's NULL greeting and a ROUTER's READY") {
  const std::string hello = RouterSession::Hello();
  CHECK(zmtp::CheckGreeting(hello).ok());
  CHECK(hello[32] == 1);  // as-server
  Result<std::optional<zmtp::Frame>> ready =
      zmtp::ParseFrame(std::string_view(hello).substr(zmtp::kGreetingBytes), 1000);
  REQUIRE(ready);
  REQUIRE(*ready);
  const std::optional<zmtp::Command> command = zmtp::ParseCommand((*ready)->body);
  REQUIRE(command);
  CHECK(command->name == "READY");
  CHECK(zmtp::Property(command->data, "socket-type") == "ROUTER");
}

TEST_CASE("router_session: the READY Identity is kept (an execd's routing id)") {
  std::string bytes = zmtp::Greeting(false);
  std::string props;
  props += static_cast<char>(11);
  props += "Socket-Type";
  props += std::string("\0\0\0\6", 4) + "DEALER";
  props += static_cast<char>(8);
  props += "Identity";
  props += std::string("\0\0\0\10", 4) + "execd/n1";
  std::string body = std::string(1, 5) + "READY" + props;
  zmtp::PutFrame(bytes, zmtp::kCommand, body);
  RouterSession s(1000);
  FeedInPieces(s, bytes, 1000);
  CHECK(s.open());
  CHECK(s.identity() == "execd/n1");
}

TEST_CASE("router_session: violations end the session with a reason") {
  struct Case {
    const char* what;
    std::string bytes;
    bool tells_peer;
  };
  std::string curve = zmtp::Greeting(false);
  curve.replace(12, 5, "CURVE");
  std::string v2 = zmtp::Greeting(false);
  v2[10] = 2;
  std::string early = zmtp::Greeting(false);
  zmtp::PutFrame(early, 0, "too soon");
  std::string big = DealerHello();
  zmtp::PutFrame(big, 0, std::string(101, 'x'));
  std::string big_parts = DealerHello();
  zmtp::PutFrame(big_parts, zmtp::kMore, std::string(60, 'x'));
  zmtp::PutFrame(big_parts, 0, std::string(60, 'x'));
  std::string not_ready = zmtp::Greeting(false);
  zmtp::PutFrame(not_ready, zmtp::kCommand, std::string(1, 4) + "PING");
  std::string bad_command = zmtp::Greeting(false);
  zmtp::PutFrame(bad_command, zmtp::kCommand, std::string(1, 50) + "X");
  const std::vector<Case> cases = {
      {"not ZMTP", std::string(64, 'G'), true},
      {"CURVE", curve, true},
      {"ZMTP 2", v2, true},
      {"a message before READY", early, false},
      {"a frame over the limit", big, false},
      {"frames over the limit together", big_parts, false},
      {"PING instead of READY", not_ready, false},
      {"a malformed command", bad_command, false},
      {"a PUB socket", DealerHello("PUB"), true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    RouterSession s(100);
    s.Feed(c.bytes);
    Result<std::optional<RouterSession::Message>> m = s.Next();
    while (m && *m) m = s.Next();
    REQUIRE_FALSE(m);
    CHECK(m.error().code() == Code::kInvalidArgument);
    CHECK_FALSE(m.error().message().empty());
    CHECK(s.refusal().empty() != c.tells_peer);
    // Finished: later bytes change nothing, and every later call fails the same way.
    s.Feed(DealerHello());
    Result<std::optional<RouterSession::Message>> again = s.Next();
    REQUIRE_FALSE(again);
    CHECK(again.error().message() == m.error().message());
  }
}
