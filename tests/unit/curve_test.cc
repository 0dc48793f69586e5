// CURVE key files, the allow-list, the ZAP decision, which connection may speak for a
// node, and the security keys of both configs. Files live in a fresh temp dir.
#include "common/curve.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <filesystem>
#include <fstream>

#include "common/config.h"

using namespace corral;

namespace {

struct Dir {
  Dir() {
    char tmpl[] = "/tmp/ccurve-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~Dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  void Write(const std::string& name, const std::string& text, mode_t mode = 0644) const {
    std::ofstream(path + "/" + name) << text;
    chmod((path + "/" + name).c_str(), mode);
  }
  std::string path;
};

// The raw 32 bytes behind a Z85 key, as a ZAP request carries them.
std::string Raw(const std::string& z85);

// Known pair from the ZeroMQ reference manual (zmq_curve): the test vector of Z85 keys.
const std::string kPublic = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
const std::string kSecret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";

}  // namespace

TEST_CASE("curve: Z85 keys are recognized and the public key follows from the secret") {
  REQUIRE(CurveAvailable());
  CHECK(ValidZ85Key(kPublic));
  CHECK(ValidZ85Key(kSecret));
  CHECK_FALSE(ValidZ85Key(kPublic.substr(1)));        // 39 characters
  CHECK_FALSE(ValidZ85Key(kPublic.substr(1) + "~"));  // '~' is not Z85
  CHECK_FALSE(ValidZ85Key(""));
  Result<std::string> pub = CurvePublicFromSecret(kSecret);
  REQUIRE(pub.has_value());
  CHECK(*pub == kPublic);
  Result<CurveKeyPair> fresh = GenerateCurveKeyPair();
  REQUIRE(fresh.has_value());
  CHECK(*CurvePublicFromSecret(fresh->secret_key) == fresh->public_key);
  CHECK(fresh->public_key != kPublic);
}

TEST_CASE("curve: key file text: comments and blank lines around exactly one key") {
  CHECK(*ParseKeyText("# comment\n\n  " + kPublic + "  \n# more\n", "k") == kPublic);
  CHECK(*ParseKeyText(kPublic, "k") == kPublic);  // no newline at the end
  CHECK(ParseKeyText("# only a comment\n", "f.key").error().message() == "f.key: holds no key");
  CHECK(ParseKeyText("# c\nnot-a-key\n", "f.key")
            .error()
            .message()
            .starts_with("f.key:2: not a CURVE key"));
  CHECK(ParseKeyText(kPublic + "\n" + kSecret + "\n", "f.key").error().message() ==
        "f.key:2: a key file holds one key (the first is on line 1)");
}

TEST_CASE("curve: a secret key readable by group or others is refused, with the fix") {
  CHECK(CheckSecretKeyMode(S_IFREG | 0600, "s").ok());
  CHECK(CheckSecretKeyMode(S_IFREG | 0400, "s").ok());
  Status world = CheckSecretKeyMode(S_IFREG | 0644, "/k/n.secret");
  CHECK(world.code() == Code::kFailedPrecondition);
  CHECK(world.message() ==
        "/k/n.secret: secret key is accessible to every user (mode 0644); refusing to use it: "
        "chmod 600 /k/n.secret (and make a new key if others may have read it)");
  CHECK(CheckSecretKeyMode(S_IFREG | 0640, "s").message().find("its group (mode 0640)") !=
        std::string::npos);

  Dir d;
  d.Write("n.secret", "# secret\n" + kSecret + "\n", 0644);
  Result<CurveKeyPair> loaded = LoadSecretKeyFile(d.path + "/n.secret");
  REQUIRE_FALSE(loaded.has_value());
  CHECK(loaded.error().message().find("every user (mode 0644)") != std::string::npos);
  chmod((d.path + "/n.secret").c_str(), 0600);
  loaded = LoadSecretKeyFile(d.path + "/n.secret");
  REQUIRE(loaded.has_value());
  CHECK(loaded->public_key == kPublic);
  CHECK(LoadSecretKeyFile(d.path + "/absent.secret").error().code() == Code::kNotFound);
}

TEST_CASE("curve: keygen files: modes, round trip, never overwritten") {
  Dir d;
  Result<CurveKeyPair> pair = GenerateCurveKeyPair();
  REQUIRE(pair.has_value());
  REQUIRE(WriteKeyPairFiles(d.path, "node7", *pair).ok());
  struct stat st {};
  REQUIRE(stat((d.path + "/node7.secret").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(stat((d.path + "/node7.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
  CHECK(*LoadPublicKeyFile(d.path + "/node7.key") == pair->public_key);
  CHECK(LoadSecretKeyFile(d.path + "/node7.secret")->secret_key == pair->secret_key);
  Status again = WriteKeyPairFiles(d.path, "node7", *GenerateCurveKeyPair());
  CHECK(again.code() == Code::kFailedPrecondition);
  CHECK(*LoadPublicKeyFile(d.path + "/node7.key") == pair->public_key);  // untouched
  CHECK(WriteKeyPairFiles(d.path, "../up", *pair).code() == Code::kInvalidArgument);
  CHECK_FALSE(ValidKeyName(".hidden"));
  CHECK(ValidKeyName("node-1.example_a"));
}

TEST_CASE("curve: the allow-list from a directory and from the config map") {
  Dir d;
  const std::string a = GenerateCurveKeyPair()->public_key;
  const std::string b = GenerateCurveKeyPair()->public_key;
  d.Write("node1.key", a + "\n");
  d.Write("node2.key", "# node2\n" + b + "\n");
  d.Write("README", "not a key\n");            // ignored: not NAME.key
  d.Write("node3.secret", "ignored\n", 0600);  // ignored: not NAME.key
  NodeKeys keys;
  REQUIRE(LoadNodeKeysDir(d.path, keys).ok());
  CHECK(keys == NodeKeys{{a, "node1"}, {b, "node2"}});

  d.Write("node9.key", a + "\n");  // node1's key again
  NodeKeys dup;
  Status s = LoadNodeKeysDir(d.path, dup);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message().find("node9.key: the same key already names node node1") != std::string::npos);
  CHECK(LoadNodeKeysDir(d.path + "/absent", dup).code() == Code::kNotFound);

  Result<NodeKeys> from_map = NodeKeysFromMap({{"n1", a}, {"n2", b}});
  REQUIRE(from_map.has_value());
  CHECK(from_map->at(b) == "n2");
  CHECK(NodeKeysFromMap({{"n1", a}, {"n2", a}}).error().message().find("same key") !=
        std::string::npos);
  CHECK(NodeKeysFromMap({{"n1", "short"}}).error().message() ==
        "node_keys.n1: not a CURVE public key");
}

TEST_CASE("curve: ZAP decisions") {
  const NodeKeys keys = {{kPublic, "node1"}};
  auto request = [](const std::string& mechanism, std::vector<std::string> credentials) {
    std::vector<std::string> frames = {"1.0",      "id-7",        "corral-nodes",
                                       "10.0.0.5", "execd/node1", mechanism};
    frames.insert(frames.end(), credentials.begin(), credentials.end());
    Result<ZapRequest> r = ParseZapRequest(frames);
    REQUIRE(r.has_value());
    return *r;
  };
  ZapReply ok = DecideZap(request("CURVE", {Raw(kPublic)}), keys);
  CHECK(ok.status_code == "200");
  CHECK(ok.user_id == "node:node1 key:" + std::string(kPublic));
  CHECK(ok.request_id == "id-7");
  CHECK(ok.client_key == kPublic);
  CHECK(ZapReplyFrames(ok) == std::vector<std::string>{"1.0", "id-7", "200", "OK",
                                                       "node:node1 key:" + std::string(kPublic),
                                                       ""});

  const std::string stranger = GenerateCurveKeyPair()->public_key;
  ZapReply unknown = DecideZap(request("CURVE", {Raw(stranger)}), keys);
  CHECK(unknown.status_code == "400");
  CHECK(unknown.status_text == "unknown key");
  CHECK(unknown.user_id.empty());
  CHECK(unknown.client_key == stranger);

  CHECK(DecideZap(request("CURVE", {"short"}), keys).status_code == "400");
  CHECK(DecideZap(request("CURVE", {}), keys).status_code == "400");
  CHECK(DecideZap(request("PLAIN", {"user", "password"}), keys).status_code == "400");
  ZapReply null = DecideZap(request("NULL", {}), keys);
  CHECK(null.status_code == "200");
  CHECK(null.user_id.empty());  // NULL connections never speak for a node
  ZapRequest old = request("CURVE", {Raw(kPublic)});
  old.version = "0.9";
  CHECK(DecideZap(old, keys).status_code == "500");
  CHECK_FALSE(ParseZapRequest({"1.0", "id"}).has_value());
}

TEST_CASE("curve: which connection may speak for a node") {
  const std::string k1 = GenerateCurveKeyPair()->public_key;
  const std::string k2 = GenerateCurveKeyPair()->public_key;
  const NodeKeys keys = {{k1, "node1"}, {k2, "node2"}};
  const std::string as1 = NodeUserId("node1", k1);
  // CURVE on: node endpoint + User-Id naming the node and a key still listed for it +
  // routing id.
  CHECK(CheckNodeSender("node1", true, true, "execd/node1", as1, keys).ok());
  Status other = CheckNodeSender("node2", true, true, "execd/node2", as1, keys);
  CHECK(other.code() == Code::kPermissionDenied);
  CHECK(other.message() ==
        "this connection is authenticated as node 'node1' (its CURVE key); it may not speak for "
        "node 'node2'");
  CHECK(CheckNodeSender("node1", true, false, "execd/node1", "", keys)
            .message()
            .find("accepted only on the scheduler's node endpoints") != std::string::npos);
  CHECK(CheckNodeSender("node1", true, true, "execd/node1", "", keys).message() ==
        "this connection is not authenticated as a node");
  CHECK(CheckNodeSender("node1", true, true, "execd/node1/5f3a", as1, keys).ok());
  CHECK(CheckNodeSender("node1", true, true, "execd/x", as1, keys).message() ==
        "node messages must come from routing id 'execd/node1' (or 'execd/node1/...')");
  CHECK_FALSE(CheckNodeSender("node1", true, true, "execd/node12", as1, keys).ok());
  // A key removed from the allow-list (or given to another node since) no longer speaks
  // for the node, on a connection made while it was listed.
  Status revoked = CheckNodeSender("node1", true, true, "execd/node1", as1, {{k2, "node2"}});
  CHECK(revoked.code() == Code::kPermissionDenied);
  CHECK(revoked.message() == "the CURVE key this connection was made with (" + k1 +
                                 ") is no longer listed for node 'node1' (revoked); the execd "
                                 "must connect again with a listed key");
  CHECK_FALSE(CheckNodeSender("node1", true, true, "execd/node1", as1, {{k1, "node2"}}).ok());
  // CURVE off: the routing id alone.
  CHECK(CheckNodeSender("node1", false, false, "execd/node1", "", {}).ok());
  CHECK_FALSE(CheckNodeSender("node1", false, true, "execd/node2", "", {}).ok());
  CHECK(NodeFromUserId(as1) == NodeIdentity{"node1", k1});
  CHECK_FALSE(NodeFromUserId("node:a").has_value());  // the form before keys were kept
  CHECK_FALSE(NodeFromUserId("node: key:" + k1).has_value());
  CHECK_FALSE(NodeFromUserId("node:a key:short").has_value());
  CHECK_FALSE(NodeFromUserId("alice").has_value());
}

TEST_CASE("curve: security keys in the configs") {
  const std::string base = "endpoints: [\"ipc:///x\"]\nstate_dir: /x\n";
  auto c = ParseSchedulerConfig(base +
                                    "node_endpoints: [\"tcp://0.0.0.0:6445\"]\n"
                                    "curve_secret_key: /etc/corral/scheduler.secret\n"
                                    "node_keys_dir: /etc/corral/nodes\n"
                                    "node_keys: {node1: \"" +
                                    kPublic +
                                    "\"}\n"
                                    "tcp_client_auth: [munge]\nmunge_socket: /run/m.sock\n",
                                "s.yaml");
  REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message()));
  CHECK(c->node_endpoints == std::vector<std::string>{"tcp://0.0.0.0:6445"});
  CHECK(c->node_keys.at("node1") == kPublic);
  CHECK(c->tcp_client_auth == std::vector<std::string>{"munge"});
  CHECK(c->munge_socket == "/run/m.sock");
  auto defaults = ParseSchedulerConfig(base, "s.yaml");
  REQUIRE(defaults.has_value());
  CHECK(defaults->tcp_client_auth == std::vector<std::string>{"munge", "anonymous"});
  CHECK(defaults->curve_secret_key.empty());

  auto error = [&](const std::string& extra) {
    auto bad = ParseSchedulerConfig(base + extra, "s.yaml");
    REQUIRE_FALSE(bad.has_value());
    return bad.error().message();
  };
  CHECK(error("curve_secret_key: /k\n") ==
        "s.yaml: curve_secret_key needs node_endpoints (where execds connect)");
  CHECK(error("node_keys_dir: /k\n") ==
        "s.yaml: node_keys and node_keys_dir need curve_secret_key");
  CHECK(error("node_endpoints: [\"ipc:///n\"]\n").find("must start with tcp://") !=
        std::string::npos);
  CHECK(error("tcp_client_auth: [kerberos]\n") ==
        "s.yaml:3: tcp_client_auth: 'kerberos' is not a method (munge, anonymous)");
  CHECK(error("node_keys: {node1: abc}\n").find("node_keys.node1: not a CURVE public key") !=
        std::string::npos);

  auto e = ParseExecdConfig(
      "scheduler: tcp://h:1\nscheduler_key: /k/s.key\nsecret_key: /k/n.secret\n", "e.yaml");
  REQUIRE(e.has_value());
  CHECK(e->scheduler_key == "/k/s.key");
  CHECK(e->secret_key == "/k/n.secret");
}

namespace {
std::string Raw(const std::string& z85) {
  std::string raw(32, '\0');
  REQUIRE(zmq_z85_decode(reinterpret_cast<uint8_t*>(raw.data()), z85.c_str()) != nullptr);
  return raw;
}
}  // namespace
