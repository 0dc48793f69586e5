// MUNGE signing and verification over libmunge; SHA-256 from libsodium (which libzmq
// already depends on). libmunge hands back malloc'd memory: freed here, never leaked out.
#include "common/munge_auth.h"

#include <munge.h>
#include <sodium.h>

#include <cstdlib>
#include <memory>

namespace corral {
namespace {

constexpr std::string_view kCredKey = ",\"cred\":\"";
constexpr std::string_view kBindingPrefix = "corral-request-v1 sha256:";

bool CredentialChars(std::string_view cred) {
  if (cred.empty()) return false;
  for (char c : cred) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/' || c == '=' || c == ':' || c == '-' || c == '_' ||
                    c == '.';
    if (!ok) return false;
  }
  return true;
}

struct CtxDeleter {
  void operator()(munge_ctx_t ctx) const { munge_ctx_destroy(ctx); }
};
using Ctx = std::unique_ptr<std::remove_pointer_t<munge_ctx_t>, CtxDeleter>;

Result<Ctx> MakeContext(const std::string& socket) {
  Ctx ctx(munge_ctx_create());
  if (!ctx) return Error(Code::kInternal, "cannot create a MUNGE context (out of memory)");
  if (!socket.empty() &&
      munge_ctx_set(ctx.get(), MUNGE_OPT_SOCKET, socket.c_str()) != EMUNGE_SUCCESS) {
    return Error(Code::kInternal, "cannot set the MUNGE socket to " + socket);
  }
  return ctx;
}

std::string SocketName(const std::string& socket) {
  return socket.empty() ? "munged's default socket" : "munged at " + socket;
}

std::string Reason(munge_ctx_t ctx, munge_err_t e) {
  const char* text = munge_ctx_strerror(ctx);
  return text != nullptr ? text : munge_strerror(e);
}

}  // namespace

std::string RequestBinding(std::string_view frame) {
  // Thread-safe and idempotent; hashing needs no more than this.
  [[maybe_unused]] static const int sodium = sodium_init();
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(frame.data()), frame.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kBindingPrefix);
  for (unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

Result<std::string> AttachCredential(std::string_view frame, std::string_view cred) {
  if (frame.empty() || frame.back() != '}' || frame.front() != '{') {
    return Error(Code::kInvalidArgument, "the request is not a JSON object");
  }
  if (!CredentialChars(cred)) {
    return Error(Code::kInvalidArgument, "not a MUNGE credential (unexpected characters)");
  }
  std::string out(frame.substr(0, frame.size() - 1));
  // "{}" has no member to follow: no comma then.
  out += out.size() == 1 ? kCredKey.substr(1) : kCredKey;
  out += cred;
  out += "\"}";
  return out;
}

Result<std::string> SignedPart(std::string_view frame, std::string_view cred) {
  if (!CredentialChars(cred)) {
    return Error(Code::kInvalidArgument, "field 'cred' is not a MUNGE credential");
  }
  const std::string tail = std::string(kCredKey) + std::string(cred) + "\"}";
  if (frame.size() > tail.size() && frame.ends_with(tail)) {
    return std::string(frame.substr(0, frame.size() - tail.size())) + "}";
  }
  const std::string only = "{" + tail.substr(1);
  if (frame == only) return std::string("{}");
  return Error(
      Code::kInvalidArgument,
      "field 'cred' must be the last member of the message, as the client library writes it");
}

Result<std::string> MungeSign(std::string_view frame, const std::string& socket) {
  Result<Ctx> ctx = MakeContext(socket);
  if (!ctx) return std::unexpected(ctx.error());
  const std::string payload = RequestBinding(frame);
  char* cred = nullptr;
  const munge_err_t e =
      munge_encode(&cred, ctx->get(), payload.data(), static_cast<int>(payload.size()));
  if (e != EMUNGE_SUCCESS) {
    std::free(cred);
    return Error(Code::kUnavailable, "cannot get a MUNGE credential from " + SocketName(socket) +
                                         ": " + Reason(ctx->get(), e));
  }
  Result<std::string> out = AttachCredential(frame, cred);
  std::free(cred);
  return out;
}

Result<MungeIdentity> MungeVerify(std::string_view frame, std::string_view cred,
                                  const std::string& socket) {
  Result<std::string> signed_part = SignedPart(frame, cred);
  if (!signed_part)
    return Error(Code::kPermissionDenied,
                 "MUNGE credential refused: " + signed_part.error().message());
  Result<Ctx> ctx = MakeContext(socket);
  if (!ctx) return std::unexpected(ctx.error());
  const std::string cred_text(cred);
  void* payload = nullptr;
  int length = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  const munge_err_t e = munge_decode(cred_text.c_str(), ctx->get(), &payload, &length, &uid, &gid);
  const std::string got =
      payload != nullptr ? std::string(static_cast<char*>(payload), length) : "";
  std::free(payload);
  switch (e) {
    case EMUNGE_SUCCESS:
      break;
    case EMUNGE_SOCKET:
    case EMUNGE_SNAFU:
    case EMUNGE_NO_MEMORY:
    case EMUNGE_OVERFLOW:
      return Error(Code::kUnavailable, "the scheduler cannot verify MUNGE credentials: " +
                                           SocketName(socket) + ": " + Reason(ctx->get(), e));
    case EMUNGE_CRED_REPLAYED:
      return Error(Code::kPermissionDenied,
                   "MUNGE credential refused: it was already used (a replayed request)");
    case EMUNGE_CRED_EXPIRED:
      return Error(Code::kPermissionDenied,
                   "MUNGE credential refused: expired (are the clocks of this host and the "
                   "scheduler's in step?)");
    default:
      return Error(Code::kPermissionDenied,
                   "MUNGE credential refused: " + Reason(ctx->get(), e) +
                       " (do this host and the scheduler's share the same munge key?)");
  }
  if (got != RequestBinding(*signed_part)) {
    return Error(Code::kPermissionDenied,
                 "MUNGE credential refused: it was made for another request");
  }
  return MungeIdentity{static_cast<uint32_t>(uid), static_cast<uint32_t>(gid)};
}

}  // namespace corral
