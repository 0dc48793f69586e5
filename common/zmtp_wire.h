// ZMTP 3.0 (https://rfc.zeromq.org/spec/23/) on the wire, as far as Corral speaks it
// without libzmq: the 64-byte greeting with the NULL mechanism, frames, and the
// READY/ERROR/PING commands. Used by the client library's DEALER (qtools/zmtp_dealer.cc)
// and by the scheduler's own ipc:// endpoint (scheduler/local_endpoint.cc); libzmq peers
// cannot tell either from a libzmq socket. Pure functions over bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace corral::zmtp {

inline constexpr size_t kGreetingBytes = 64;

// Frame flags (RFC 23 §2.3).
inline constexpr uint8_t kMore = 0x01;
inline constexpr uint8_t kLong = 0x02;
inline constexpr uint8_t kCommand = 0x04;

// Our greeting: signature, version 3.0, mechanism NULL, `as_server`.
std::string Greeting(bool as_server);

// OkStatus for a ZMTP 3 greeting with the NULL mechanism (the first kGreetingBytes of
// `greeting`); InvalidArgument saying what else it is.
Status CheckGreeting(std::string_view greeting);

// Appends one frame (short or long form by its size).
void PutFrame(std::string& out, uint8_t flags, std::string_view body);

// A READY property of the scheduler's own ipc endpoint: a request may follow the peer's
// READY at once, without waiting for ours (qtools/zmtp_dealer.h). libzmq takes no
// message before it has sent its READY, and drops a connection that sends one.
inline constexpr std::string_view kPipelinedProperty = "X-Corral-Pipelined";

// A whole READY command frame with the Socket-Type property (and an empty Identity, as
// libzmq's DEALER sends), and kPipelinedProperty with `pipelined`.
std::string ReadyCommand(std::string_view socket_type, bool pipelined = false);

// A whole ERROR command frame; `reason` is cut to 255 bytes.
std::string ErrorCommand(std::string_view reason);

struct Frame {
  uint8_t flags = 0;
  std::string_view body;  // points into the parsed bytes
  size_t size = 0;        // header and body: the bytes this frame took
};
// The frame at the start of `bytes`; nullopt when more bytes are needed; InvalidArgument
// when its body is larger than `max_body`.
Result<std::optional<Frame>> ParseFrame(std::string_view bytes, size_t max_body);

// A command frame's body: its name and the data after the name.
struct Command {
  std::string_view name;
  std::string_view data;
};
std::optional<Command> ParseCommand(std::string_view body);

// The value of property `name` (case-insensitive) in a READY command's data, or nullopt.
std::optional<std::string_view> Property(std::string_view props, std::string_view name);

}  // namespace corral::zmtp
