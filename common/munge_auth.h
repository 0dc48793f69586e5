// MUNGE credentials on requests that reach the scheduler over tcp. The client signs the
// exact frame it sends: the credential's payload is a SHA-256 of the frame, and the
// credential rides in the same frame as its last member, "cred". The scheduler asks
// munged who encoded it (uid, gid) and checks that the payload matches the rest of the
// frame, so a credential cannot be lifted onto another request; munged refuses a
// credential it has decoded before (replay) or one past its time-to-live.
// The frame surgery and the payload are pure; MungeSign/MungeVerify talk to munged.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace corral {

// The payload a credential carries for `frame` (the request as encoded, without "cred"):
// "corral-request-v1 sha256:<64 hex digits>".
std::string RequestBinding(std::string_view frame);

// `frame` (a JSON object) with `,"cred":"<cred>"` added as its last member.
// InvalidArgument if `frame` does not end in '}' or `cred` has characters a MUNGE
// credential never has (it must not need JSON escaping).
Result<std::string> AttachCredential(std::string_view frame, std::string_view cred);

// Inverse of AttachCredential: the frame as it was signed, given the credential that
// Decode found in its "cred" member. InvalidArgument when "cred" is not the frame's last
// member written exactly as AttachCredential writes it.
Result<std::string> SignedPart(std::string_view frame, std::string_view cred);

struct MungeIdentity {
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// `socket`: munged's socket, "" for libmunge's default (/run/munge/munge.socket.2).

// Encodes a credential for `frame` and returns the frame with it attached. Unavailable
// (with munged's reason) when munged cannot be reached or refuses.
Result<std::string> MungeSign(std::string_view frame, const std::string& socket);

// Who signed `frame` (as received, "cred" included; `cred` is its decoded value).
// PermissionDenied for a credential that is invalid, expired, replayed, or bound to
// other bytes; Unavailable when munged cannot be reached. Messages say which.
Result<MungeIdentity> MungeVerify(std::string_view frame, std::string_view cred,
                                  const std::string& socket);

}  // namespace corral
