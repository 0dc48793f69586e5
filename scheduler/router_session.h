// One connection of a ZMTP 3.0 ROUTER with the NULL mechanism, over bytes alone: what the
// peer sent goes in (Feed), whole messages come out (Next). No I/O, no clock: IpcEndpoints
// moves the bytes and keeps the time; fuzz/zmtp_router_fuzzer.cc feeds it anything.
//
// The peer must send a ZMTP 3 greeting with the NULL mechanism, then READY from a DEALER
// or REQ socket, then messages. Commands after READY (ZMTP 3.1's PING: not sent to a 3.0
// peer such as us) are skipped. Anything else ends the session with an error saying what
// was wrong; refusal() then holds an ERROR command for the peer where one helps it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace corral {

class RouterSession {
 public:
  // Messages (all their frames) larger than `max_message` bytes are a violation.
  explicit RouterSession(size_t max_message) : max_message_(max_message) {}

  // Our greeting and READY: written to the peer first, before it says anything (a libzmq
  // peer sends the rest of its greeting only once it has seen our signature).
  static std::string Hello();

  void Feed(std::string_view bytes);

  struct Message {
    std::string payload;  // the frames joined
    bool multipart = false;
  };
  // The next whole message; nullopt when more bytes are needed; InvalidArgument on a
  // protocol violation (the session is then finished and every later call fails).
  Result<std::optional<Message>> Next();

  bool open() const { return phase_ == Phase::kOpen; }      // the handshake is done
  const std::string& identity() const { return identity_; }  // READY's Identity
  // An ERROR command to send before closing, after Next failed; empty if none is due.
  const std::string& refusal() const { return refusal_; }
  // Bytes fed and not yet taken by Next (a partial frame, or whole ones beyond a budget).
  size_t unparsed() const { return in_.size() - in_at_; }

 private:
  enum class Phase { kGreeting, kReady, kOpen, kBroken };
  Error Break(std::string why, bool tell_peer);

  size_t max_message_;
  Phase phase_ = Phase::kGreeting;
  std::string in_;
  size_t in_at_ = 0;
  std::string partial_;  // frames of a message not yet complete
  bool multipart_ = false;
  std::string identity_;
  std::string refusal_;
  std::string broken_;  // why, once kBroken
};

}  // namespace corral
