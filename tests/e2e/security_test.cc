// Who is who (docs/security.md), against real daemons: execds authenticated by CURVE keys
// through the scheduler's ZAP handler (an unknown key never registers; a node cannot speak
// for another), tcp clients identified by MUNGE credentials bound to each request (no
// credential: read-only; a replayed or lifted one: refused), key files and their modes.
// The MUNGE cases start a munged of their own (socket and key in a temp dir, stopped by
// pid) and are skipped, with a message, where it cannot run.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/curve.h"
#include "common/munge_auth.h"
#include "common/protocol.h"
#include "tests/e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

namespace {

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A munged of this test's own. `ok` false (and `why` set) when it cannot run here.
struct Munged {
  Munged() {
    chmod(dir.path.c_str(), 0755);  // other users' clients reach the socket through it
    socket = dir.path + "/munge.sock";
    if (access("/usr/sbin/munged", X_OK) != 0) {
      why = "/usr/sbin/munged is not installed (Debian package munge)";
      return;
    }
    // A fresh key: 1024 random bytes, readable by its owner only (munged checks).
    {
      std::ifstream random("/dev/urandom", std::ios::binary);
      std::string key(1024, '\0');
      random.read(key.data(), static_cast<std::streamsize>(key.size()));
      WriteFile(dir.path + "/munge.key", key, 0600);
    }
    pid = Spawn(
        {"/usr/sbin/munged", "--foreground", "--force", "--socket=" + socket,
         "--key-file=" + dir.path + "/munge.key", "--pid-file=" + dir.path + "/munged.pid",
         "--seed-file=" + dir.path + "/munged.seed", "--log-file=" + dir.path + "/munged.file.log"},
        dir.path + "/munged.log");
    ok = WaitUntil([&] { return std::filesystem::exists(socket) || !Alive(pid); }, 10000) &&
         Alive(pid);
    if (!ok) why = "munged did not start: " + ReadFile(dir.path + "/munged.log");
  }
  ~Munged() { Stop(pid); }

  TempDir dir;
  std::string socket;
  pid_t pid = 0;
  bool ok = false;
  std::string why;
};

std::set<std::string> NodeNames(TestCluster& cluster) {
  Client client = cluster.Connect();
  Result<Message> reply = client.Call(NodesRequest{}, Slack(5000));
  REQUIRE(reply.has_value());
  std::set<std::string> names;
  for (const Node& n : std::get<NodesReply>(*reply).nodes) names.insert(n.name);
  return names;
}

JobSpec Spec(const std::string& name, const std::string& cwd) {
  JobSpec spec;
  spec.name = name;
  spec.script = "#!/bin/sh\ntrue\n";
  spec.cwd = cwd;
  spec.request = {1, 0};
  return spec;
}

}  // namespace

TEST_CASE("security_curve_nodes") {
  TestCluster cluster({.nodes = 2, .cores = 1});
  const std::string log = cluster.dir() + "/scheduler.log";
  CHECK(Contains(ReadFile(log), "authenticated as node:node1"));
  CHECK(Contains(ReadFile(log), "authenticated as node:node2"));
  CHECK(Contains(ReadFile(cluster.dir() + "/execd-node1.log"),
                 "CURVE handshake with the scheduler succeeded"));

  // Execds the scheduler must not take: a key it does not list (as a new node, and posing
  // as node1), and one that speaks no CURVE at all.
  const std::string stranger = cluster.dir() + "/stranger";
  std::filesystem::create_directories(stranger);
  for (const char* name : {"node3", "fake1"}) {
    REQUIRE(WriteKeyPairFiles(stranger, name, *GenerateCurveKeyPair()).ok());
  }
  auto execd = [&](const std::string& node, const std::string& key) {
    std::vector<std::string> argv = {Bin("corral-execd"),
                                     "--scheduler",
                                     cluster.node_endpoint(),
                                     "--node",
                                     node,
                                     "--spool",
                                     cluster.dir() + "/spool-x" + key,
                                     "--cores",
                                     "1",
                                     "--memory",
                                     "1G",
                                     "--allow-root-jobs"};
    if (!key.empty()) {
      for (const std::string& a : {std::string("--scheduler-key"), cluster.scheduler_key(),
                                   std::string("--secret-key"), stranger + "/" + key + ".secret"}) {
        argv.push_back(a);
      }
    }
    return Spawn(argv, cluster.dir() + "/intruder-" + node + key + ".log");
  };
  struct Intruders {  // stopped by pid even when a REQUIRE below fails
    std::vector<pid_t> pids;
    ~Intruders() {
      for (pid_t pid : pids) Stop(pid);
    }
  } intruders;
  intruders.pids = {execd("node3", "node3"), execd("node1", "fake1"), execd("node4", "")};
  const auto refused = [&](const std::string& file, const std::string& text) {
    return WaitUntil([&] { return Contains(ReadFile(cluster.dir() + "/" + file), text); }, 15000);
  };
  CHECK_MESSAGE(refused("intruder-node3node3.log", "the scheduler refused this node's CURVE key"),
                cluster.Logs());
  CHECK_MESSAGE(refused("intruder-node1fake1.log", "the scheduler refused this node's CURVE key"),
                cluster.Logs());
  CHECK_MESSAGE(refused("intruder-node4.log", "handshake with the scheduler"), cluster.Logs());
  CHECK(Contains(ReadFile(log), "refused a CURVE connection"));
  CHECK(Contains(ReadFile(log), "unknown key"));
  CHECK_FALSE(Contains(ReadFile(log), "node node3 registered"));
  CHECK_FALSE(Contains(ReadFile(log), "node node4 registered"));
  // The scheduler is still up, knows only its two nodes, and they still run jobs.
  CHECK(Alive(cluster.scheduler_pid()));
  CHECK(NodeNames(cluster) == std::set<std::string>{"node1", "node2"});
  RunResult qhost = Run({"qhost"}, cluster.Env());
  CHECK(qhost.exit_code == 0);
  CHECK_FALSE(Contains(qhost.out, "node3"));
  JobId a = cluster.Submit("#!/bin/sh\nexit 0\n", "a");
  JobId b = cluster.Submit("#!/bin/sh\nexit 0\n", "b");
  for (const Job& job : cluster.WaitJobs({a, b}, 20000)) {
    CHECK(job.state == JobState::kCompleted);
  }

  // Revoking node2's key cuts off the connection it already has: its next heartbeat is
  // refused, naming the key, while node1 goes on.
  std::filesystem::remove(cluster.key_dir() + "/nodes/node2.key");
  CHECK_MESSAGE(refused("execd-node2.log", "is no longer listed for node 'node2' (revoked)"),
                cluster.Logs());
  CHECK(Contains(ReadFile(log), "node keys reloaded"));
  CHECK_FALSE(Contains(ReadFile(cluster.dir() + "/execd-node1.log"), "revoked"));
  CHECK(Alive(cluster.scheduler_pid()));
}

TEST_CASE("security_node_impersonation") {
  TestCluster cluster({.nodes = 2, .cores = 1});
  Result<CurveKeyPair> node1 = LoadSecretKeyFile(cluster.node_secret_key(1));
  REQUIRE(node1.has_value());
  Result<std::string> server = LoadPublicKeyFile(cluster.scheduler_key());
  REQUIRE(server.has_value());
  // node1's key, claiming node2 (its own routing id, so as not to disturb the real node2).
  const std::string frame = Encode(Heartbeat{"node2", {}, 0.0});
  std::string text =
      ErrorText(RawExchange(cluster.node_endpoint(), {frame}, "execd/node2/intruder", &*node1,
                            *server));
  CHECK(Contains(text, "authenticated as node 'node1'"));
  CHECK(Contains(text, "may not speak for node 'node2'"));
  JobExit exit{.node = "node2", .job_id = 1, .attempt = 1, .start_time = 1, .end_time = 2};
  CHECK(Contains(
      ErrorText(RawExchange(cluster.node_endpoint(), {Encode(exit)}, "execd/node2/x", &*node1,
                            *server)),
      "may not speak for node 'node2'"));
  // Its own name over its own key is fine (a heartbeat gets no answer, and no error).
  Result<Envelope> own = RawExchange(cluster.node_endpoint(),
                                     {Encode(Heartbeat{"node1", {}, 0.0})}, "execd/node1/probe",
                                     &*node1, *server);
  CHECK_FALSE((own.has_value() && std::holds_alternative<ErrorReply>(own->message)));
  // Node messages anywhere but the node endpoint are refused, whatever the routing id.
  for (const std::string& endpoint : {cluster.tcp(), cluster.ipc()}) {
    CHECK(
        Contains(ErrorText(RawExchange(endpoint, {Encode(Heartbeat{"node1", {}, 0.0})},
                                       "execd/node1")),
                 "accepted only on the scheduler's node endpoints"));
  }
  // A client on the node endpoint is told to go elsewhere.
  CHECK(Contains(
      ErrorText(RawExchange(cluster.node_endpoint(), {Encode(NodesRequest{})}, "", &*node1,
                            *server)),
      "this endpoint is for execds"));
  // Nothing of this disturbed the real nodes: both still run jobs.
  CHECK(NodeNames(cluster) == std::set<std::string>{"node1", "node2"});
  JobId a = cluster.Submit("#!/bin/sh\nsleep 1\n", "a");
  JobId b = cluster.Submit("#!/bin/sh\nsleep 1\n", "b");
  std::set<std::string> ran_on;
  for (const Job& job : cluster.WaitJobs({a, b}, 20000)) {
    CHECK(job.state == JobState::kCompleted);
    ran_on.insert(job.node);
  }
  CHECK(ran_on == std::set<std::string>{"node1", "node2"});
}

TEST_CASE("security_munge_clients") {
  if (geteuid() != 0) {
    MESSAGE("skipped: needs root (to submit as another user, nobody)");
    return;
  }
  Munged munge;
  if (!munge.ok) {
    MESSAGE("skipped: " << munge.why);
    return;
  }
  TestCluster cluster(
      {.nodes = 1, .cores = 2, .scheduler_yaml = "munge_socket: " + munge.socket + "\n"});
  // The job of another user: its spool must be reachable (as in owner_test.cc), and its
  // working directory writable.
  REQUIRE(chmod(cluster.dir().c_str(), 0711) == 0);
  TempDir shared;
  chmod(shared.path.c_str(), 0755);
  const std::string work = shared.path + "/work";
  std::filesystem::create_directories(work);
  chmod(work.c_str(), 0777);
  const std::string path = std::string(CORRAL_BIN_DIR) + ":/usr/bin:/bin";
  const std::map<std::string, std::string> anonymous = {
      {"CORRAL_SCHEDULER", cluster.tcp()},
      {"CORRAL_MUNGE_SOCKET", shared.path + "/no-munged"},
      {"PATH", path}};
  const std::map<std::string, std::string> munged = {
      {"CORRAL_SCHEDULER", cluster.tcp()}, {"CORRAL_MUNGE_SOCKET", munge.socket}, {"PATH", path}};
  const std::vector<std::string> as_nobody = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                                              "--clear-groups"};
  auto nobody = [&](std::vector<std::string> argv) {
    argv.insert(argv.begin(), as_nobody.begin(), as_nobody.end());
    return argv;
  };

  // With a credential, qsub over tcp submits as the user who ran it (nobody, not root).
  RunResult sub = Run(nobody({Bin("qsub"), "-cwd", "-N", "remote"}), munged, work, "id -u\n");
  REQUIRE_MESSAGE(sub.exit_code == 0, (sub.out + sub.err + cluster.Logs()));
  const JobId id = std::stoll(sub.out.substr(sub.out.find("job ") + 4));
  const std::vector<Job> done = cluster.WaitJobs({id}, 30000);
  REQUIRE(done.size() == 1);
  CHECK(done[0].owner == "nobody");
  CHECK(done[0].uid == 65534);
  CHECK_MESSAGE(done[0].state == JobState::kCompleted, done[0].reason);
  CHECK(ReadFile(work + "/remote.o" + std::to_string(id)) == "65534\n");

  // Without one: looking is fine; submitting and cancelling are refused, saying why.
  RunResult look = Run({"qstat", "-u", "*"}, anonymous);
  CHECK_MESSAGE(look.exit_code == 0, look.err);
  RunResult anon_sub = Run({"qsub", "-cwd", "-b", "y", "true"}, anonymous, work);
  CHECK(anon_sub.exit_code != 0);
  CHECK_MESSAGE(Contains(anon_sub.err, "this request carried no MUNGE credential"), anon_sub.err);
  RunResult sleeper = Run(nobody({Bin("qsub"), "-cwd", "-b", "y", "sleep", "60"}), munged, work);
  REQUIRE_MESSAGE(sleeper.exit_code == 0, sleeper.err);
  const std::string sleeper_id =
      std::to_string(std::stoll(sleeper.out.substr(sleeper.out.find("job ") + 4)));
  RunResult anon_del = Run({"qdel", sleeper_id}, anonymous);
  CHECK(anon_del.exit_code != 0);
  CHECK(Contains(anon_del.out + anon_del.err, "MUNGE credential"));
  // Its owner, with a credential, may.
  RunResult del = Run(nobody({Bin("qdel"), sleeper_id}), munged);
  CHECK_MESSAGE(del.exit_code == 0, (del.out + del.err));

  // A credential is good for the one request it was made for, once.
  const std::string frame = Encode(SubmitRequest{Spec("replayed", work)}, "replay-1");
  Result<std::string> signed_frame = MungeSign(frame, munge.socket);
  REQUIRE(signed_frame.has_value());
  Result<Envelope> parsed = Decode(*signed_frame);
  REQUIRE(parsed.has_value());
  // Lifted onto another request: refused (and spent: munged has now seen it).
  Result<std::string> lifted =
      AttachCredential(Encode(SubmitRequest{Spec("lifted", work)}, "lift-1"), parsed->cred);
  REQUIRE(lifted.has_value());
  CHECK(Contains(ErrorText(RawExchange(cluster.tcp(), {*lifted})), "made for another request"));
  // A fresh one goes through once; the same bytes again are a replay.
  Result<std::string> fresh = MungeSign(frame, munge.socket);
  REQUIRE(fresh.has_value());
  Result<Envelope> first = RawExchange(cluster.tcp(), {*fresh});
  REQUIRE(first.has_value());
  CHECK(std::holds_alternative<SubmitReply>(first->message));
  CHECK(Contains(ErrorText(RawExchange(cluster.tcp(), {*fresh})), "already used"));
  CHECK(Contains(ErrorText(RawExchange(cluster.tcp(), {*signed_frame})), "already used"));
  CHECK(Contains(ReadFile(cluster.dir() + "/scheduler.log"), "tcp request refused"));
  // Garbage in the credential field is refused, not decoded.
  CHECK(Contains(ErrorText(RawExchange(cluster.tcp(), {*AttachCredential(frame, "MUNGE:bogus:")})),
                 "MUNGE credential refused"));
}

TEST_CASE("security_munge_required") {
  TestCluster cluster({.nodes = 1, .cores = 1, .scheduler_yaml = "tcp_client_auth: [munge]\n"});
  const std::map<std::string, std::string> anonymous = {
      {"CORRAL_SCHEDULER", cluster.tcp()},
      {"CORRAL_MUNGE_SOCKET", cluster.dir() + "/no-munged"},
      {"PATH", std::string(CORRAL_BIN_DIR) + ":/usr/bin:/bin"}};
  RunResult look = Run({"qstat"}, anonymous);
  CHECK(look.exit_code != 0);
  CHECK_MESSAGE(Contains(look.err, "only with a MUNGE credential"), look.err);
  CHECK(Contains(ReadFile(cluster.dir() + "/scheduler.log"), "MUNGE credentials"));
  // Local clients are unaffected.
  CHECK(Run({"qstat"}, cluster.Env()).exit_code == 0);
}

TEST_CASE("security_insecure_mode_warns") {
  TestCluster cluster({.nodes = 1, .cores = 1, .curve = false});
  CHECK(
      Contains(ReadFile(cluster.dir() + "/scheduler.log"), "WARNING: nodes are NOT authenticated"));
  CHECK(Contains(ReadFile(cluster.dir() + "/execd-node1.log"), "WARNING: no CURVE keys"));
  JobId id = cluster.Submit("#!/bin/sh\nexit 0\n", "clear");
  CHECK(cluster.WaitJobs({id}, 20000).at(0).state == JobState::kCompleted);
}

TEST_CASE("security_keys_and_keygen") {
  TempDir dir;
  const std::map<std::string, std::string> env = {{"PATH", "/usr/bin:/bin"}};
  RunResult gen = Run({Bin("corral"), "keygen", "--out", dir.path, "--name", "n1"}, env);
  REQUIRE_MESSAGE(gen.exit_code == 0, gen.err);
  struct stat st {};
  REQUIRE(stat((dir.path + "/n1.secret").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  Result<std::string> pub = LoadPublicKeyFile(dir.path + "/n1.key");
  REQUIRE(pub.has_value());
  CHECK(Contains(gen.out, "public key: " + *pub));
  RunResult again = Run({Bin("corral"), "keygen", "--out", dir.path, "--name", "n1"}, env);
  CHECK(again.exit_code == 1);
  CHECK(Contains(again.err, "exists; not replacing a key"));
  CHECK(Run({Bin("corral"), "keygen", "--name", "../x"}, env).exit_code == 2);

  // A secret key others can read stops both daemons before they start.
  REQUIRE(WriteKeyPairFiles(dir.path, "scheduler", *GenerateCurveKeyPair()).ok());
  chmod((dir.path + "/n1.secret").c_str(), 0644);
  RunResult execd =
      Run({Bin("corral-execd"), "--scheduler", "tcp://127.0.0.1:1", "--spool", dir.path + "/spool",
           "--scheduler-key", dir.path + "/scheduler.key", "--secret-key", dir.path + "/n1.secret"},
          env, "", "", 10000);
  CHECK(execd.exit_code == 2);
  CHECK_MESSAGE(
      Contains(execd.err, "n1.secret: secret key is accessible to every user (mode 0644)"),
      execd.err);
  RunResult half = Run({Bin("corral-execd"), "--scheduler", "tcp://127.0.0.1:1", "--spool",
                        dir.path + "/spool", "--secret-key", dir.path + "/n1.secret"},
                       env, "", "", 10000);
  CHECK(half.exit_code == 2);
  CHECK(Contains(half.err, "needs both"));
  chmod((dir.path + "/scheduler.secret").c_str(), 0640);
  WriteFile(dir.path + "/s.yaml", "endpoints: [\"ipc://" + dir.path +
                                      "/s.sock\"]\nstate_dir: " + dir.path +
                                      "/state\nnode_endpoints: [\"tcp://127.0.0.1:*\"]\n"
                                      "curve_secret_key: " +
                                      dir.path + "/scheduler.secret\n");
  RunResult sched =
      Run({Bin("corral-scheduler"), "--config", dir.path + "/s.yaml"}, env, "", "", 10000);
  CHECK(sched.exit_code == 1);
  CHECK_MESSAGE(Contains(sched.err, "accessible to its group (mode 0640)"), sched.err);
}

TEST_CASE("security_local_up_keys") {
  TempDir dir;
  const std::string cluster = dir.path + "/c";
  const std::map<std::string, std::string> env = {{"PATH", "/usr/bin:/bin"}};
  RunResult up = Run({Bin("corral"), "local", "up", "--dir", cluster, "--nodes", "1", "--cpus", "1",
                      "--memory", "1G"},
                     env, "", "", 60000);
  struct Down {  // stops the cluster whatever happens below
    std::string dir;
    ~Down() { Run({Bin("corral"), "local", "down", "--dir", dir}, {{"PATH", "/usr/bin:/bin"}}); }
  } down{cluster};
  REQUIRE_MESSAGE(up.exit_code == 0, (up.out + up.err));
  struct stat st {};
  REQUIRE(stat((cluster + "/keys/node1.secret").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(stat((cluster + "/keys/scheduler.secret").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(std::filesystem::exists(cluster + "/keys/nodes/node1.key"));
  const std::string yaml = ReadFile(cluster + "/scheduler.yaml");
  CHECK(Contains(yaml, "curve_secret_key:"));
  CHECK(Contains(yaml, "node_keys_dir:"));
  CHECK(Contains(yaml, "node_endpoints:"));
  CHECK(Contains(ReadFile(cluster + "/execd-node1.yaml"), "secret_key:"));
  CHECK(Contains(ReadFile(cluster + "/log/scheduler.log"), "authenticated as node:node1"));
  CHECK_FALSE(Contains(ReadFile(cluster + "/log/scheduler.log"), "WARNING"));
}
