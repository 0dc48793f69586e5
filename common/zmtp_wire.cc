#include "common/zmtp_wire.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace corral::zmtp {
namespace {

void PutBigEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetBigEndian(std::string_view in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

std::string CommandFrame(std::string_view name, std::string_view data) {
  std::string body(1, static_cast<char>(name.size()));
  body.append(name);
  body.append(data);
  std::string frame;
  PutFrame(frame, kCommand, body);
  return frame;
}

}  // namespace

// signature (0xFF, 8 bytes of padding, 0x7F), version 3.0, mechanism "NULL" padded to 20
// bytes, as-server, 31 bytes of filler.
std::string Greeting(bool as_server) {
  std::string g(kGreetingBytes, '\0');
  g[0] = '\xff';
  g[9] = '\x7f';
  g[10] = 3;
  g[11] = 0;
  std::memcpy(&g[12], "NULL", 4);
  g[32] = as_server ? 1 : 0;
  return g;
}

Status CheckGreeting(std::string_view greeting) {
  if (greeting.size() < kGreetingBytes || static_cast<uint8_t>(greeting[0]) != 0xff ||
      (greeting[9] & 0x01) == 0) {
    return Error(Code::kInvalidArgument, "the peer does not speak ZMTP 3 (not a ZeroMQ socket?)");
  }
  if (greeting[10] < 3) {
    return Error(Code::kInvalidArgument,
                 "the peer speaks ZMTP " + std::to_string(static_cast<int>(greeting[10])) +
                     ".x; ZMTP 3 is needed");
  }
  if (greeting.substr(12, 20) != std::string_view("NULL\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20)) {
    return Error(Code::kInvalidArgument,
                 "the peer asks for a security mechanism other than NULL (CURVE: that endpoint "
                 "is for execds)");
  }
  return OkStatus();
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

std::string ReadyCommand(std::string_view socket_type, bool pipelined) {
  std::string props;
  auto property = [&](std::string_view name, std::string_view value) {
    props.push_back(static_cast<char>(name.size()));
    props.append(name);
    PutBigEndian(props, value.size(), 4);
    props.append(value);
  };
  property("Socket-Type", socket_type);
  property("Identity", "");
  if (pipelined) property(kPipelinedProperty, "1");
  return CommandFrame("READY", props);
}

std::string ErrorCommand(std::string_view reason) {
  reason = reason.substr(0, 255);
  std::string data(1, static_cast<char>(reason.size()));
  data.append(reason);
  return CommandFrame("ERROR", data);
}

Result<std::optional<Frame>> ParseFrame(std::string_view bytes, size_t max_body) {
  if (bytes.size() < 2) return std::nullopt;
  const uint8_t flags = static_cast<uint8_t>(bytes[0]);
  size_t header = 2;
  uint64_t size = static_cast<uint8_t>(bytes[1]);
  if (flags & kLong) {
    header = 9;
    if (bytes.size() < header) return std::nullopt;
    size = GetBigEndian(bytes.substr(1), 8);
  }
  if (size > max_body) {
    return Error(Code::kInvalidArgument,
                 "a frame of " + std::to_string(size) + " bytes is more than the limit of " +
                     std::to_string(max_body));
  }
  if (bytes.size() - header < size) return std::nullopt;
  return Frame{flags, bytes.substr(header, size), header + size};
}

std::optional<Command> ParseCommand(std::string_view body) {
  if (body.empty()) return std::nullopt;
  const size_t name_len = static_cast<uint8_t>(body[0]);
  if (body.size() < 1 + name_len) return std::nullopt;
  return Command{body.substr(1, name_len), body.substr(1 + name_len)};
}

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

}  // namespace corral::zmtp
