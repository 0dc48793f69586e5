// CURVE keys and the ZAP decision that tells the scheduler which node a connection is.
// Keys are Z85 text (40 characters for 32 bytes) in files; a secret key file must be
// readable by its owner only. The ZAP part is pure: frames in, decision out; the server
// owns the REP socket. What is not here: sockets (scheduler/server.cc, execd/main.cc).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace corral {

inline constexpr size_t kZ85KeyChars = 40;

// True when libzmq was built with CURVE (zmq_has("curve")).
bool CurveAvailable();

struct CurveKeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85
};

// A fresh keypair (zmq_curve_keypair). Unavailable when libzmq lacks CURVE.
Result<CurveKeyPair> GenerateCurveKeyPair();
// The public key that belongs to `secret_z85` (zmq_curve_public).
Result<std::string> CurvePublicFromSecret(const std::string& secret_z85);

// True for 40 characters of the Z85 alphabet that decode to 32 bytes.
bool ValidZ85Key(std::string_view text);

// The key in a key file's text: blank lines and lines starting with '#' are skipped,
// exactly one other line must hold the Z85 key (surrounding spaces ignored).
// InvalidArgument naming `origin` and the line otherwise.
Result<std::string> ParseKeyText(std::string_view text, const std::string& origin);

// A secret key file's permission bits must give nothing to group or others (0600,
// 0400). FailedPrecondition naming the file, its mode and the chmod that fixes it.
Status CheckSecretKeyMode(mode_t mode, const std::string& path);

// Reads a public key file (NotFound if missing).
Result<std::string> LoadPublicKeyFile(const std::string& path);
// Reads a secret key file after checking its mode (CheckSecretKeyMode) and returns the
// keypair (public derived from the secret).
Result<CurveKeyPair> LoadSecretKeyFile(const std::string& path);

// Writes DIR/NAME.key (public, 0644) and DIR/NAME.secret (secret, 0600, created with
// that mode so it is never readable by others). Refuses (FailedPrecondition) to replace
// either file. `name` must be a valid node name (ValidKeyName).
Status WriteKeyPairFiles(const std::string& dir, const std::string& name, const CurveKeyPair& pair);

// Node names usable as key file names: letters, digits, '.', '_', '-', not starting
// with '.', at most 64 characters.
bool ValidKeyName(std::string_view name);

// The allow-list: public key (Z85) -> node name. A key names one node; a node may have
// several keys (rotation).
using NodeKeys = std::map<std::string, std::string>;

// From the config's map name -> key. InvalidArgument for a bad key or a key given to
// two nodes.
Result<NodeKeys> NodeKeysFromMap(const std::map<std::string, std::string>& by_name);
// Every NAME.key file in `dir` (other files are ignored), merged into `into`.
// InvalidArgument naming the file for a bad key or a key that already names another node.
Status LoadNodeKeysDir(const std::string& dir, NodeKeys& into);

// ---- ZAP (ZeroMQ RFC 27) ------------------------------------------------------------

struct ZapRequest {
  std::string version;  // "1.0"
  std::string request_id;
  std::string domain;
  std::string address;                   // the peer's IP address
  std::string routing_id;                // the peer's ZMQ_ROUTING_ID
  std::string mechanism;                 // "NULL", "PLAIN", "CURVE"
  std::vector<std::string> credentials;  // CURVE: one frame, the 32-byte public key
};

struct ZapReply {
  std::string request_id;
  std::string status_code;  // "200" accepted, "400" refused, "500" internal error
  std::string status_text;
  std::string user_id;     // becomes the connection's "User-Id" message property
  std::string client_key;  // for logs: the peer's key in Z85 (CURVE), else empty
};

// The frames of a ZAP request as the REP socket delivers them. InvalidArgument when
// there are fewer than 6 frames.
Result<ZapRequest> ParseZapRequest(const std::vector<std::string>& frames);

// The decision for one handshake. CURVE with a key in `keys`: 200 and User-Id
// NodeUserId(NAME, key). CURVE with any other key: 400 "unknown key". NULL (an unauthenticated
// socket of the same process): 200 with no User-Id. Anything else (wrong version,
// PLAIN, GSSAPI, bad credentials): 400, or 500 for a version we do not speak.
ZapReply DecideZap(const ZapRequest& request, const NodeKeys& keys);

// The frames that answer `reply` (version, request id, status, text, user id, metadata).
std::vector<std::string> ZapReplyFrames(const ZapReply& reply);

// The User-Id the ZAP handler gives a connection: "node:NAME key:KEY" (the node and the
// Z85 public key it authenticated with), and back (nullopt for a User-Id that names no
// node). The key is kept so that each message can be checked against the allow-list as
// it is then: removing a key cuts off connections already made with it.
struct NodeIdentity {
  std::string node;
  std::string key;
  bool operator==(const NodeIdentity&) const = default;
};
std::string NodeUserId(const std::string& node, const std::string& key);
std::optional<NodeIdentity> NodeFromUserId(std::string_view user_id);

// Whether the scheduler may take a node message naming `node` from a connection.
// With CURVE on (`curve`), it must arrive on a node endpoint (`on_node_endpoint`), from a
// connection whose ZAP User-Id names `node` and a key that `keys` (the allow-list now)
// still gives to `node`. Always, its routing id must be
// "execd/<node>" or "execd/<node>/<anything>"; without CURVE that alone decides (and
// anyone can choose it: the insecure mode). With CURVE an execd adds a random suffix,
// so that no other connection can take over its routing id (ROUTER handover) and with
// it the orders meant for it: the suffix travels only inside its encrypted handshake.
// PermissionDenied saying which condition failed.
Status CheckNodeSender(const std::string& node, bool curve, bool on_node_endpoint,
                       std::string_view routing_id, std::string_view user_id,
                       const NodeKeys& keys);

}  // namespace corral
