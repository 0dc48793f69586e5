// The pure half of MUNGE request signing: the payload that binds a credential to one
// frame, and attaching/detaching the "cred" member. (Talking to munged: e2e security_test.)
#include "common/munge_auth.h"

#include <doctest/doctest.h>

#include "common/protocol.h"

using namespace corral;

TEST_CASE("munge: the binding is a SHA-256 of the exact bytes") {
  // SHA-256("abc"), FIPS 180-2 appendix B.1.
  CHECK(
      RequestBinding("abc") ==
      "corral-request-v1 sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(RequestBinding("{\"a\":1}") != RequestBinding("{\"a\":2}"));
}

TEST_CASE("munge: a credential rides as the frame's last member and comes off exactly") {
  const std::string cred = "MUNGE:AwQFAAB+abc/def=:";
  const std::string frame = Encode(QueryRequest{{7}, "", false}, "42-1");
  Result<std::string> sent = AttachCredential(frame, cred);
  REQUIRE(sent.has_value());
  CHECK(sent->ends_with(",\"cred\":\"" + cred + "\"}"));
  // It is still one protocol message, with the credential in its envelope.
  Result<Envelope> env = Decode(*sent);
  REQUIRE(env.has_value());
  CHECK(env->cred == cred);
  CHECK(env->req == "42-1");
  CHECK(std::holds_alternative<QueryRequest>(env->message));
  // The scheduler recovers the signed bytes exactly.
  Result<std::string> signed_part = SignedPart(*sent, env->cred);
  REQUIRE(signed_part.has_value());
  CHECK(*signed_part == frame);
  CHECK(RequestBinding(*signed_part) == RequestBinding(frame));

  CHECK(*AttachCredential("{}", cred) == "{\"cred\":\"" + cred + "\"}");
  CHECK(*SignedPart("{\"cred\":\"" + cred + "\"}", cred) == "{}");
}

TEST_CASE("munge: malformed or misplaced credentials are refused") {
  const std::string cred = "MUNGE:abc:";
  CHECK(AttachCredential("[1]", cred).error().code() == Code::kInvalidArgument);
  CHECK(AttachCredential("{\"a\":1}", "has\"quote").error().code() == Code::kInvalidArgument);
  CHECK(AttachCredential("{\"a\":1}", "").error().code() == Code::kInvalidArgument);
  // "cred" first instead of last: not how the client writes it, so not accepted.
  const std::string first = "{\"cred\":\"" + cred + "\",\"v\":1,\"type\":\"nodes\"}";
  Result<std::string> part = SignedPart(first, cred);
  REQUIRE_FALSE(part.has_value());
  CHECK(part.error().message().find("must be the last member") != std::string::npos);
  // A different credential than the one in the frame.
  const std::string frame = *AttachCredential("{\"v\":1}", cred);
  CHECK_FALSE(SignedPart(frame, "MUNGE:other:").has_value());
}
