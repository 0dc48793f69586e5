// Fuzzes RouterSession (scheduler/router_session.h): what any local user can write to the
// scheduler's ipc:// socket. The first byte picks the piece size the rest is fed in (the
// kernel splits a stream anywhere). The session must never yield a message over its
// limit, must not hold more than one message's worth of a partial message, and once it
// fails it must keep failing with the same reason; the same bytes fed whole must give the
// same messages and the same end.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/router_session.h"

namespace {

using namespace corral;

constexpr size_t kLimit = 4096;

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "zmtp_router_fuzzer: %s\n", what);
  std::abort();
}

struct Run {
  std::vector<RouterSession::Message> messages;
  std::string error;  // empty: no violation
};

Run Feed(std::string_view bytes, size_t piece) {
  RouterSession s(kLimit);
  Run run;
  for (size_t at = 0; at < bytes.size() && run.error.empty(); at += piece) {
    s.Feed(bytes.substr(at, piece));
    while (true) {
      Result<std::optional<RouterSession::Message>> m = s.Next();
      if (!m) {
        run.error = m.error().message();
        Check(!run.error.empty(), "a violation without a reason");
        Result<std::optional<RouterSession::Message>> again = s.Next();
        Check(!again && again.error().message() == run.error, "a failed session recovered");
        break;
      }
      if (!*m) break;
      Check((*m)->payload.size() <= kLimit, "a message over the limit");
      run.messages.push_back(std::move(**m));
    }
    Check(!run.error.empty() || s.unparsed() <= bytes.size(), "more unparsed than fed");
  }
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = 1 + data[0] % 97;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Run pieces = Feed(bytes, piece);
  const Run whole = Feed(bytes, bytes.size() + 1);
  Check(pieces.error == whole.error, "the end depends on how the bytes were split");
  Check(pieces.messages.size() == whole.messages.size(),
        "the messages depend on how the bytes were split");
  for (size_t i = 0; i < pieces.messages.size(); ++i) {
    Check(pieces.messages[i].payload == whole.messages[i].payload &&
              pieces.messages[i].multipart == whole.messages[i].multipart,
          "a message differs with how the bytes were split");
  }
  return 0;
}
