// Process and cluster plumbing for the end-to-end tests. Every child is started in its
// own process group and stopped by its pid; every wait has a deadline.
#include "tests/e2e/harness.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/curve.h"
#include "common/transport.h"
#include "execd/launcher.h"

extern char** environ;

namespace corral::e2e {
namespace {

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (std::string& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::vector<std::string> MergedEnv(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : extra) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

}  // namespace

std::string Bin(const std::string& name) { return std::string(CORRAL_BIN_DIR) + "/" + name; }

TempDir::TempDir() {
  char tmpl[] = "/tmp/ce2e-XXXXXX";
  char* p = mkdtemp(tmpl);
  REQUIRE(p != nullptr);
  path = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log,
            const std::map<std::string, std::string>& env) {
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = MergedEnv(env);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    setpgid(0, 0);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = open("/dev/null", O_RDONLY);
    if (fd < 0 || null < 0) _exit(126);
    dup2(null, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    auto cargs = CStrings(args);
    auto cenv = CStrings(envs);
    execve(cargs[0], cargs.data(), cenv.data());
    _exit(127);
  }
  return pid;
}

int64_t Slack(int64_t ms) {
  static const int64_t scale = [] {
    const char* text = std::getenv("CORRAL_TEST_TIME_SCALE");
    const int64_t value = text ? std::atoll(text) : 1;
    return value >= 1 ? value : 1;
  }();
  return ms * scale;
}

int Stop(pid_t pid, int sig, int64_t timeout_ms) {
  if (pid <= 0) return 0;
  kill(pid, sig);
  int status = 0;
  const TimeMs deadline = MonotonicNowMs() + Slack(timeout_ms);
  while (MonotonicNowMs() < deadline) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return status;
    poll(nullptr, 0, 10);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return status;
}

bool Alive(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == pid) return false;
  if (kill(pid, 0) != 0) return false;
  // A zombie that is not our child (its parent has not reaped it yet) counts as dead.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  size_t close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

RunResult Run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              const std::string& cwd, const std::string& stdin_text, int64_t timeout_ms) {
  int out_pipe[2], err_pipe[2], in_pipe[2];
  REQUIRE(pipe2(out_pipe, O_CLOEXEC) == 0);
  REQUIRE(pipe2(err_pipe, O_CLOEXEC) == 0);
  REQUIRE(pipe2(in_pipe, O_CLOEXEC) == 0);
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = MergedEnv(env);
  // execvpe searches this process's PATH, not the child's: resolve with the child's.
  if (args[0].find('/') == std::string::npos && env.count("PATH")) {
    std::istringstream dirs(env.at("PATH"));
    for (std::string d; std::getline(dirs, d, ':');) {
      if (access((d + "/" + args[0]).c_str(), X_OK) == 0) {
        args[0] = d + "/" + args[0];
        break;
      }
    }
  }
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    setpgid(0, 0);
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    auto cargs = CStrings(args);
    auto cenv = CStrings(envs);
    execvpe(cargs[0], cargs.data(), cenv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(in_pipe[0]);
  if (!stdin_text.empty()) {
    ssize_t n = write(in_pipe[1], stdin_text.data(), stdin_text.size());
    (void)n;
  }
  close(in_pipe[1]);
  RunResult result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  const TimeMs deadline = MonotonicNowMs() + Slack(timeout_ms);
  bool timed_out = false;
  while (open_fds > 0) {
    const TimeMs left = deadline - MonotonicNowMs();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    if (poll(fds, 2, static_cast<int>(left)) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, n);
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (pollfd& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  if (timed_out) {
    kill(-pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return result;
  }
  int status = Stop(pid, 0, std::max<int64_t>(1000, deadline - MonotonicNowMs()));
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

bool WaitUntil(const std::function<bool()>& done, int64_t timeout_ms) {
  const TimeMs deadline = MonotonicNowMs() + Slack(timeout_ms);
  while (true) {
    if (done()) return true;
    if (MonotonicNowMs() >= deadline) return false;
    poll(nullptr, 0, 20);
  }
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text, int mode) {
  {
    std::ofstream out(path, std::ios::trunc);
    out << text;
  }
  chmod(path.c_str(), mode);
}

int FreePort() {
  Result<int> port = PickFreeLoopbackPort();
  REQUIRE(port.has_value());
  return *port;
}

TestCluster::TestCluster(ClusterOptions options) : options_(options) {
  std::filesystem::create_directories(work());
  port_ = FreePort();
  std::string extra;
  std::string security;
  if (options_.curve) {
    // Keys as corral local up makes them: a pair per daemon, the nodes' public keys in
    // the scheduler's allow-list directory.
    do node_port_ = FreePort();
    while (node_port_ == port_);
    std::filesystem::create_directories(key_dir() + "/nodes");
    auto make = [&](const std::string& name) {
      Result<CurveKeyPair> pair = GenerateCurveKeyPair();
      REQUIRE_MESSAGE(pair.has_value(), (pair ? "" : pair.error().message()));
      const Status s = WriteKeyPairFiles(key_dir(), name, *pair);
      REQUIRE_MESSAGE(s.ok(), s.message());
      return *pair;
    };
    make("scheduler");
    for (int k = 1; k <= options_.nodes; ++k) {
      const std::string node = "node" + std::to_string(k);
      const CurveKeyPair pair = make(node);
      WriteFile(key_dir() + "/nodes/" + node + ".key", pair.public_key + "\n");
    }
    std::string node_extra;
    if (!options_.netns.empty()) {
      node_extra = ", \"tcp://" + options_.netns_scheduler_ip + ":" + std::to_string(node_port_) + "\"";
    }
    security = "node_endpoints: [\"" + node_endpoint() + "\"" + node_extra + "]\n" +
               "curve_secret_key: " + key_dir() + "/scheduler.secret\n" +
               "node_keys_dir: " + key_dir() + "/nodes\n";
  } else if (!options_.netns.empty()) {
    extra = "\"tcp://" + options_.netns_scheduler_ip + ":" + std::to_string(port_) + "\", ";
  }
  WriteFile(dir() + "/scheduler.yaml",
            security +
            "endpoints: [\"tcp://127.0.0.1:" + std::to_string(port_) + "\", " + extra + "\"" +
                ipc() + "\"]\n"
                "state_dir: " + dir() + "/state\n"
                "heartbeat_interval: " + std::to_string(options_.heartbeat_ms / 1000.0) + "\n"
                "node_timeout: " + std::to_string(options_.node_timeout_ms / 1000.0) + "\n" +
                options_.scheduler_yaml);
  // A failed REQUIRE throws out of the constructor, and no destructor runs: stop what
  // was started here, or its daemons outlive the test.
  try {
    StartScheduler();
    for (int k = 1; k <= options_.nodes; ++k) StartExecd(k);
    WaitForNodes();
  } catch (...) {
    StopAll();
    throw;
  }
}

TestCluster::~TestCluster() { StopAll(); }

void TestCluster::StopAll() {
  for (auto& [k, pid] : execds_) Stop(pid);
  execds_.clear();
  Stop(scheduler_);
  scheduler_ = 0;
  // Stopped execds leave their jobs running (re-attached at a restart): end them too, so
  // that no test leaves processes behind.
  for (int k = 1; k <= options_.nodes; ++k) {
    KillSpooledJobs(dir() + "/spool-node" + std::to_string(k));
  }
}

void TestCluster::StartScheduler() {
  std::filesystem::remove(dir() + "/state/endpoints");
  scheduler_ = Spawn({Bin("corral-scheduler"), "--config", dir() + "/scheduler.yaml"},
                     dir() + "/scheduler.log");
  const bool up = WaitUntil(
      [&] { return std::filesystem::exists(dir() + "/state/endpoints"); }, 10000);
  REQUIRE_MESSAGE(up, "scheduler did not start\n" << Logs());
}

void TestCluster::StopScheduler(int sig) {
  Stop(scheduler_, sig);
  scheduler_ = 0;
}

void TestCluster::StartExecd(int k) {
  const std::string node = "node" + std::to_string(k);
  const bool in_netns = !options_.netns.empty() && k == options_.netns_node;
  std::vector<std::string> argv;
  if (in_netns) argv = {"/usr/sbin/ip", "netns", "exec", options_.netns};  // execs in place
  const std::string host = in_netns ? options_.netns_scheduler_ip : "127.0.0.1";
  for (const std::string& a :
       {Bin("corral-execd"), std::string("--scheduler"),
        "tcp://" + host + ":" + std::to_string(options_.curve ? node_port_ : port_),
        std::string("--node"), node, std::string("--spool"), dir() + "/spool-" + node,
        std::string("--cores"), std::to_string(options_.cores), std::string("--memory"),
        std::string("4G")}) {
    argv.push_back(a);
  }
  // The tests run as root and submit as root: a root execd refuses such jobs by default.
  argv.push_back("--allow-root-jobs");
  if (options_.curve) {
    for (const std::string& a : {std::string("--scheduler-key"), scheduler_key(),
                                 std::string("--secret-key"), node_secret_key(k)}) {
      argv.push_back(a);
    }
  }
  if (options_.gpus > 0) {
    argv.push_back("--gpus");
    argv.push_back(std::to_string(options_.gpus));
  }
  if (auto extra = options_.execd_args.find(k); extra != options_.execd_args.end()) {
    argv.insert(argv.end(), extra->second.begin(), extra->second.end());
  }
  execds_[k] = Spawn(argv, dir() + "/execd-" + node + ".log");
}

void TestCluster::StopExecd(int k, int sig) {
  Stop(execds_[k], sig);
  execds_.erase(k);
}

void TestCluster::WaitForNodes() {
  Client client = Connect();
  const bool up = WaitUntil(
      [&] {
        Result<Message> reply = client.Call(NodesRequest{}, Slack(2000));
        if (!reply || !std::holds_alternative<NodesReply>(*reply)) return false;
        int n = 0;
        for (const Node& node : std::get<NodesReply>(*reply).nodes) {
          n += node.state == NodeState::kUp;
        }
        return n == options_.nodes;
      },
      15000);
  REQUIRE_MESSAGE(up, "nodes did not register\n" << Logs());
}

Client TestCluster::Connect() {
  Result<Client> client = Client::Connect(ipc());
  REQUIRE(client.has_value());
  return std::move(*client);
}

std::map<std::string, std::string> TestCluster::Env() const {
  return {{"CORRAL_SCHEDULER", ipc()}, {"PATH", std::string(CORRAL_BIN_DIR) + ":/usr/bin:/bin"}};
}

std::vector<Job> TestCluster::WaitJobs(const std::vector<JobId>& ids, int64_t timeout_ms) {
  Client client = Connect();
  const TimeMs deadline = MonotonicNowMs() + Slack(timeout_ms);
  while (MonotonicNowMs() < deadline) {
    Result<Message> reply = client.Call(WaitRequest{ids, 2000}, Slack(5000));
    if (reply && std::holds_alternative<WaitReply>(*reply) && std::get<WaitReply>(*reply).done) {
      return std::get<WaitReply>(*reply).jobs;
    }
  }
  FAIL("jobs did not finish in " << timeout_ms << " ms\n" << Logs());
  return {};
}

JobId TestCluster::Submit(const std::string& script, const std::string& name, int cores) {
  JobSpec spec;
  spec.name = name;
  spec.script = script;
  spec.cwd = work();
  spec.request = {cores, 0};
  Client client = Connect();
  Result<Message> reply = client.Call(SubmitRequest{spec}, Slack(10000));
  REQUIRE_MESSAGE(reply.has_value(), (reply ? "" : reply.error().message()));
  REQUIRE(std::holds_alternative<SubmitReply>(*reply));
  return std::get<SubmitReply>(*reply).id;
}

std::string TestCluster::Logs() const {
  std::string out;
  for (const auto& entry : std::filesystem::directory_iterator(dir())) {
    if (entry.path().extension() != ".log") continue;
    std::string text = ReadFile(entry.path());
    if (text.size() > 3000) text = "..." + text.substr(text.size() - 3000);
    out += "---- " + entry.path().filename().string() + "\n" + text;
  }
  return out;
}

struct RawSocket::Impl {
  zmq::context_t ctx;
  zmq::socket_t s{ctx, zmq::socket_type::dealer};
};

RawSocket::RawSocket(const std::string& endpoint, const std::string& routing_id,
                     const CurveKeyPair* keys, const std::string& server_key)
    : impl_(std::make_unique<Impl>()) {
  zmq::socket_t& s = impl_->s;
  s.set(zmq::sockopt::linger, 0);
  if (!routing_id.empty()) s.set(zmq::sockopt::routing_id, routing_id);
  if (keys != nullptr) {
    s.set(zmq::sockopt::curve_serverkey, server_key);
    s.set(zmq::sockopt::curve_publickey, keys->public_key);
    s.set(zmq::sockopt::curve_secretkey, keys->secret_key);
  }
  s.connect(endpoint);
}

RawSocket::~RawSocket() = default;

Result<Envelope> RawSocket::Call(const std::vector<std::string>& frames, int64_t timeout_ms) {
  zmq::socket_t& s = impl_->s;
  for (size_t i = 0; i < frames.size(); ++i) {
    s.send(zmq::buffer(frames[i]),
           i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, std::chrono::milliseconds(Slack(timeout_ms))) == 0) {
    return Error(Code::kUnavailable, "no reply");
  }
  zmq::message_t reply;
  (void)s.recv(reply);
  return Decode(reply.to_string_view());
}

Result<Envelope> RawExchange(const std::string& endpoint, const std::vector<std::string>& frames,
                             const std::string& routing_id, const CurveKeyPair* keys,
                             const std::string& server_key) {
  return RawSocket(endpoint, routing_id, keys, server_key).Call(frames, 3000);
}

std::string ErrorText(const Result<Envelope>& r) {
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message()));
  REQUIRE_MESSAGE(std::holds_alternative<ErrorReply>(r->message), TypeName(r->message));
  return std::get<ErrorReply>(r->message).message;
}

}  // namespace corral::e2e
