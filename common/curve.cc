// CURVE key files and the ZAP decision. The key arithmetic is libzmq's (zmq_curve_*,
// zmq_z85_*); this file adds the file format, the permission check and the allow-list.
#include "common/curve.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace corral {
namespace {

std::string Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::string OctalMode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

Result<std::string> ReadWhole(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) {
    return Error(errno == ENOENT ? Code::kNotFound : Code::kInvalidArgument,
                 path + ": cannot read " + what + ": " + std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `text` to a new file with `mode`; fails if it exists (O_EXCL), so a key is
// never overwritten and a secret never exists, even briefly, with a wider mode.
Status WriteNew(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Error(Code::kFailedPrecondition,
                   path + ": exists; not replacing a key (remove it first)");
    }
    return Error(Code::kInternal, path + ": cannot create: " + std::strerror(errno));
  }
  fchmod(fd, mode);  // the umask may have narrowed it; never widened beyond `mode`
  const ssize_t n = write(fd, text.data(), text.size());
  const bool ok = n == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok) return Error(Code::kInternal, path + ": cannot write: " + std::strerror(errno));
  return OkStatus();
}

}  // namespace

bool CurveAvailable() { return zmq_has("curve") != 0; }

Result<CurveKeyPair> GenerateCurveKeyPair() {
  if (!CurveAvailable()) {
    return Error(Code::kUnavailable, "this libzmq was built without CURVE support");
  }
  char pub[41] = {};
  char sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Error(Code::kInternal, std::string("zmq_curve_keypair: ") + zmq_strerror(zmq_errno()));
  }
  return CurveKeyPair{pub, sec};
}

Result<std::string> CurvePublicFromSecret(const std::string& secret_z85) {
  if (!ValidZ85Key(secret_z85)) return Error(Code::kInvalidArgument, "not a Z85 CURVE key");
  char pub[41] = {};
  if (zmq_curve_public(pub, secret_z85.c_str()) != 0) {
    return Error(Code::kUnavailable, std::string("zmq_curve_public: ") + zmq_strerror(zmq_errno()));
  }
  return std::string(pub);
}

bool ValidZ85Key(std::string_view text) {
  if (text.size() != kZ85KeyChars) return false;
  static constexpr std::string_view kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  for (char c : text) {
    if (kAlphabet.find(c) == std::string_view::npos) return false;
  }
  uint8_t raw[32];
  const std::string copy(text);
  return zmq_z85_decode(raw, copy.c_str()) != nullptr;
}

Result<std::string> ParseKeyText(std::string_view text, const std::string& origin) {
  std::string key;
  int key_line = 0;
  int line_no = 0;
  size_t at = 0;
  while (at <= text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string_view::npos) nl = text.size();
    ++line_no;
    const std::string line = Trim(text.substr(at, nl - at));
    at = nl + 1;
    if (line.empty() || line[0] == '#') continue;
    const std::string where = origin + ":" + std::to_string(line_no);
    if (!key.empty()) {
      return Error(Code::kInvalidArgument, where +
                                               ": a key file holds one key (the first is on line " +
                                               std::to_string(key_line) + ")");
    }
    if (!ValidZ85Key(line)) {
      return Error(Code::kInvalidArgument,
                   where + ": not a CURVE key (40 Z85 characters, as `corral keygen` writes)");
    }
    key = line;
    key_line = line_no;
  }
  if (key.empty()) return Error(Code::kInvalidArgument, origin + ": holds no key");
  return key;
}

Status CheckSecretKeyMode(mode_t mode, const std::string& path) {
  if ((mode & 0077) == 0) return OkStatus();
  return Error(Code::kFailedPrecondition, path + ": secret key is accessible to " +
                                              ((mode & 0007) != 0 ? "every user" : "its group") +
                                              " (mode " + OctalMode(mode) +
                                              "); refusing to use it: chmod 600 " + path +
                                              " (and make a new key if others "
                                              "may have read it)");
}

Result<std::string> LoadPublicKeyFile(const std::string& path) {
  Result<std::string> text = ReadWhole(path, "public key file");
  if (!text) return std::unexpected(text.error());
  return ParseKeyText(*text, path);
}

Result<CurveKeyPair> LoadSecretKeyFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return Error(errno == ENOENT ? Code::kNotFound : Code::kInvalidArgument,
                 path + ": cannot read secret key file: " + std::strerror(errno));
  }
  if (Status s = CheckSecretKeyMode(st.st_mode, path); !s.ok()) return std::unexpected(s);
  Result<std::string> text = ReadWhole(path, "secret key file");
  if (!text) return std::unexpected(text.error());
  Result<std::string> secret = ParseKeyText(*text, path);
  if (!secret) return std::unexpected(secret.error());
  Result<std::string> pub = CurvePublicFromSecret(*secret);
  if (!pub) return Error(pub.error().code(), path + ": " + pub.error().message());
  return CurveKeyPair{*pub, *secret};
}

bool ValidKeyName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status WriteKeyPairFiles(const std::string& dir, const std::string& name,
                         const CurveKeyPair& pair) {
  if (!ValidKeyName(name)) {
    return Error(Code::kInvalidArgument,
                 "'" + name + "' is not a usable key name (letters, digits, '.', '_', '-')");
  }
  const std::string pub_path = dir + "/" + name + ".key";
  const std::string sec_path = dir + "/" + name + ".secret";
  struct stat st {};
  for (const std::string& p : {pub_path, sec_path}) {
    if (stat(p.c_str(), &st) == 0) {
      return Error(Code::kFailedPrecondition,
                   p + ": exists; not replacing a key (remove it first)");
    }
  }
  if (Status s = WriteNew(sec_path,
                          "# CURVE secret key of " + name +
                              " (Z85), written by corral keygen. Keep it private (mode 0600).\n" +
                              pair.secret_key + "\n",
                          0600);
      !s.ok()) {
    return s;
  }
  return WriteNew(pub_path,
                  "# CURVE public key of " + name + " (Z85), written by corral keygen.\n" +
                      pair.public_key + "\n",
                  0644);
}

Result<NodeKeys> NodeKeysFromMap(const std::map<std::string, std::string>& by_name) {
  NodeKeys keys;
  for (const auto& [name, key] : by_name) {
    if (!ValidZ85Key(key)) {
      return Error(Code::kInvalidArgument, "node_keys." + name + ": not a CURVE public key");
    }
    auto [it, inserted] = keys.emplace(key, name);
    if (!inserted && it->second != name) {
      return Error(Code::kInvalidArgument, "node_keys." + name +
                                               ": the same key is given to node " + it->second +
                                               "; each node needs its own key");
    }
  }
  return keys;
}

Status LoadNodeKeysDir(const std::string& dir, NodeKeys& into) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return Error(errno == ENOENT ? Code::kNotFound : Code::kInvalidArgument,
                 dir + ": cannot read the node keys directory: " + std::strerror(errno));
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) names.emplace_back(e->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& file : names) {
    if (file.size() <= 4 || !file.ends_with(".key")) continue;
    const std::string node = file.substr(0, file.size() - 4);
    if (!ValidKeyName(node)) continue;
    Result<std::string> key = LoadPublicKeyFile(dir + "/" + file);
    if (!key) return key.error();
    auto [it, inserted] = into.emplace(*key, node);
    if (!inserted && it->second != node) {
      return Error(Code::kInvalidArgument, dir + "/" + file + ": the same key already names node " +
                                               it->second + "; each node needs its own key");
    }
  }
  return OkStatus();
}

Result<ZapRequest> ParseZapRequest(const std::vector<std::string>& frames) {
  if (frames.size() < 6) {
    return Error(Code::kInvalidArgument,
                 "ZAP request has " + std::to_string(frames.size()) + " frames, needs at least 6");
  }
  ZapRequest r;
  r.version = frames[0];
  r.request_id = frames[1];
  r.domain = frames[2];
  r.address = frames[3];
  r.routing_id = frames[4];
  r.mechanism = frames[5];
  r.credentials.assign(frames.begin() + 6, frames.end());
  return r;
}

ZapReply DecideZap(const ZapRequest& request, const NodeKeys& keys) {
  ZapReply reply{.request_id = request.request_id};
  auto refuse = [&](std::string code, std::string text) {
    reply.status_code = std::move(code);
    reply.status_text = std::move(text);
    return reply;
  };
  if (request.version != "1.0") return refuse("500", "ZAP version not supported");
  if (request.mechanism == "NULL") {
    // The scheduler's own unauthenticated sockets (ipc, client tcp): nothing to decide
    // here; who a client is comes from peer credentials or MUNGE, per message.
    reply.status_code = "200";
    reply.status_text = "OK";
    return reply;
  }
  if (request.mechanism != "CURVE") return refuse("400", "mechanism not accepted");
  if (request.credentials.size() != 1 || request.credentials[0].size() != 32) {
    return refuse("400", "malformed CURVE credentials");
  }
  char z85[41] = {};
  zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(request.credentials[0].data()), 32);
  reply.client_key = z85;
  auto it = keys.find(reply.client_key);
  if (it == keys.end()) return refuse("400", "unknown key");
  reply.status_code = "200";
  reply.status_text = "OK";
  reply.user_id = NodeUserId(it->second, reply.client_key);
  return reply;
}

std::vector<std::string> ZapReplyFrames(const ZapReply& reply) {
  return {"1.0", reply.request_id, reply.status_code, reply.status_text, reply.user_id, ""};
}

std::string NodeUserId(const std::string& node, const std::string& key) {
  return "node:" + node + " key:" + key;
}

std::optional<NodeIdentity> NodeFromUserId(std::string_view user_id) {
  if (!user_id.starts_with("node:")) return std::nullopt;
  const size_t space = user_id.find(" key:");
  if (space == std::string_view::npos || space == 5) return std::nullopt;
  NodeIdentity id{std::string(user_id.substr(5, space - 5)), std::string(user_id.substr(space + 5))};
  if (!ValidZ85Key(id.key)) return std::nullopt;
  return id;
}

Status CheckNodeSender(const std::string& node, bool curve, bool on_node_endpoint,
                       std::string_view routing_id, std::string_view user_id,
                       const NodeKeys& keys) {
  const std::string expected_id = "execd/" + node;
  if (curve) {
    if (!on_node_endpoint) {
      return Error(Code::kPermissionDenied, "node messages for '" + node +
                                                "' are accepted only on the scheduler's node "
                                                "endpoints, over CURVE from an execd holding " +
                                                node + "'s key (routing id '" + expected_id + "')");
    }
    const std::optional<NodeIdentity> authenticated = NodeFromUserId(user_id);
    if (!authenticated) {
      return Error(Code::kPermissionDenied, "this connection is not authenticated as a node");
    }
    if (authenticated->node != node) {
      return Error(Code::kPermissionDenied,
                   "this connection is authenticated as node '" + authenticated->node +
                       "' (its CURVE key); it may not speak for node '" + node + "'");
    }
    auto listed = keys.find(authenticated->key);
    if (listed == keys.end() || listed->second != node) {
      return Error(Code::kPermissionDenied,
                   "the CURVE key this connection was made with (" + authenticated->key +
                       ") is no longer listed for node '" + node +
                       "' (revoked); the execd must connect again with a listed key");
    }
  }
  if (routing_id != expected_id && !routing_id.starts_with(expected_id + "/")) {
    return Error(Code::kPermissionDenied, "node messages must come from routing id '" +
                                              expected_id + "' (or '" + expected_id + "/...')");
  }
  return OkStatus();
}

}  // namespace corral
