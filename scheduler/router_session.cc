#include "scheduler/router_session.h"

#include <utility>

#include "common/zmtp_wire.h"

namespace corral {

std::string RouterSession::Hello() {
  return zmtp::Greeting(true) + zmtp::ReadyCommand("ROUTER", /*pipelined=*/true);
}

void RouterSession::Feed(std::string_view bytes) {
  if (phase_ == Phase::kBroken) return;
  if (in_at_ > 0 && in_at_ * 2 >= in_.size()) {
    in_.erase(0, in_at_);
    in_at_ = 0;
  }
  in_.append(bytes);
}

Error RouterSession::Break(std::string why, bool tell_peer) {
  phase_ = Phase::kBroken;
  if (tell_peer) refusal_ = zmtp::ErrorCommand(why);
  broken_ = why;
  in_.clear();
  in_at_ = 0;
  partial_.clear();
  return Error(Code::kInvalidArgument, std::move(why));
}

Result<std::optional<RouterSession::Message>> RouterSession::Next() {
  while (true) {
    if (phase_ == Phase::kBroken) return Error(Code::kInvalidArgument, broken_);
    const std::string_view avail = std::string_view(in_).substr(in_at_);
    if (phase_ == Phase::kGreeting) {
      if (avail.size() < zmtp::kGreetingBytes) return std::nullopt;
      if (Status s = zmtp::CheckGreeting(avail); !s.ok()) {
        return Break("this endpoint speaks ZMTP 3 with the NULL mechanism only (" + s.message() +
                         ")",
                     true);
      }
      in_at_ += zmtp::kGreetingBytes;
      phase_ = Phase::kReady;
      continue;
    }
    Result<std::optional<zmtp::Frame>> frame =
        zmtp::ParseFrame(avail, max_message_ - partial_.size());
    if (!frame) return Break(frame.error().message(), false);
    if (!*frame) return std::nullopt;
    const zmtp::Frame f = **frame;
    if (f.flags & zmtp::kCommand) {
      const std::optional<zmtp::Command> command = zmtp::ParseCommand(f.body);
      if (!command) return Break("a malformed ZMTP command", false);
      if (phase_ == Phase::kReady) {
        if (command->name != "READY") {
          return Break("the handshake needs READY, not " + std::string(command->name), false);
        }
        const std::optional<std::string_view> type = zmtp::Property(command->data, "Socket-Type");
        if (!type || (*type != "DEALER" && *type != "REQ")) {
          return Break("this endpoint is a ROUTER: connect a DEALER (or REQ) socket", true);
        }
        identity_ = std::string(zmtp::Property(command->data, "Identity").value_or(""));
        phase_ = Phase::kOpen;
      }
      in_at_ += f.size;
      continue;
    }
    if (phase_ != Phase::kOpen) return Break("a message before the handshake's READY", false);
    partial_.append(f.body);
    in_at_ += f.size;
    if (f.flags & zmtp::kMore) {
      multipart_ = true;
      continue;
    }
    Message m{std::move(partial_), multipart_};
    partial_.clear();
    multipart_ = false;
    return m;
  }
}

}  // namespace corral
