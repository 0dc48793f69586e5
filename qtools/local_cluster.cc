// `corral local up/down/status/env`: writes the configs of a one-machine cluster, starts
// its daemons detached (fork, setsid, exec; logs appended to DIR/log), finds them again
// through pid files checked against /proc, and waits on the scheduler via the client.
#include "qtools/local_cluster.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/clock.h"
#include "common/config.h"
#include "common/curve.h"
#include "common/protocol.h"
#include "common/transport.h"
#include "common/units.h"
#include "execd/launcher.h"
#include "qtools/client.h"

namespace corral {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kStopGraceMs = 10000;  // SIGTERM -> SIGKILL
constexpr int kPollStepMs = 100;

// The only way this file waits: a poll() timeout on no descriptors.
void WaitMs(int64_t ms) {
  if (ms > 0) poll(nullptr, 0, static_cast<int>(ms));
}

std::string ErrnoText(int err) { return std::strerror(err); }

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Written to PATH.tmp and renamed, so a reader never sees half a file.
Status WriteFileAtomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.flush()) return Error(Code::kInternal, tmp + ": cannot write: " + ErrnoText(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Error(Code::kInternal, path + ": cannot rename into place: " + ErrnoText(errno));
  }
  return OkStatus();
}

Status MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Error(Code::kInternal, path + ": cannot create directory: " + ec.message());
  return OkStatus();
}

std::string YamlQuote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Seconds for a YAML duration key: "1", "0.5".
std::string SecondsText(int64_t ms) {
  if (ms % 1000 == 0) return std::to_string(ms / 1000);
  std::string text = std::to_string(ms / 1000) + "." + std::to_string(1000 + ms % 1000).substr(1);
  while (text.back() == '0') text.pop_back();
  return text;
}

std::string MemoryText(int64_t mb) {
  char buf[32];
  if (mb >= 1024 && mb % 1024 == 0) {
    std::snprintf(buf, sizeof buf, "%lldG", static_cast<long long>(mb / 1024));
  } else if (mb >= 1024) {
    std::snprintf(buf, sizeof buf, "%.1fG", static_cast<double>(mb) / 1024);
  } else {
    std::snprintf(buf, sizeof buf, "%lldM", static_cast<long long>(mb));
  }
  return buf;
}

std::string ShellQuote(const std::string& s) {
  const bool plain = !s.empty() && s.find_first_not_of(
                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                       "0123456789/._:-+=,@%") == std::string::npos;
  if (plain) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// ---- daemons and their pid files ---------------------------------------------------------

struct Daemon {
  std::string label;   // "scheduler", "execd node1"
  std::string binary;  // file name in the bin dir
  std::string config;
  std::string pid_file;
  std::string log;
};

Daemon SchedulerDaemon(const LocalLayout& l) {
  return {"scheduler", "corral-scheduler", l.SchedulerConfig(), l.SchedulerPidFile(),
          l.SchedulerLog()};
}

Daemon ExecdDaemon(const LocalLayout& l, int k) {
  return {"execd " + LocalLayout::NodeName(k), "corral-execd", l.ExecdConfig(k), l.ExecdPidFile(k),
          l.ExecdLog(k)};
}

std::optional<pid_t> ReadPidFile(const std::string& path) {
  std::ifstream in(path);
  long long pid = 0;
  if (!(in >> pid) || pid <= 1) return std::nullopt;
  return static_cast<pid_t>(pid);
}

// False for a process that is gone or a zombie (its parent may never reap it).
bool Alive(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  const std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  if (stat.empty() || paren == std::string::npos || paren + 2 >= stat.size()) return false;
  return stat[paren + 2] != 'Z' && stat[paren + 2] != 'X';
}

// Whether `pid` runs `d.binary` with this cluster's config file: a pid file can outlive
// its daemon and the pid be reused. The command line (not /proc/PID/exe) is checked so
// that a daemon whose binary was rebuilt since it started is still recognized.
bool IsOurDaemon(pid_t pid, const Daemon& d) {
  const std::string cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> argv;
  for (size_t start = 0; start < cmdline.size();) {
    size_t end = cmdline.find('\0', start);
    if (end == std::string::npos) end = cmdline.size();
    argv.push_back(cmdline.substr(start, end - start));
    start = end + 1;
  }
  if (argv.empty() || fs::path(argv[0]).filename() != d.binary) return false;
  for (size_t i = 1; i < argv.size(); ++i) {
    if (argv[i] == "--config=" + d.config) return true;
    if (argv[i] == "--config" && i + 1 < argv.size() && argv[i + 1] == d.config) return true;
  }
  return false;
}

std::optional<pid_t> RunningPid(const Daemon& d) {
  std::optional<pid_t> pid = ReadPidFile(d.pid_file);
  if (pid && Alive(*pid) && IsOurDaemon(*pid, d)) return pid;
  return std::nullopt;
}

std::string ExitText(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

// The last `n` lines of a log, indented, for error messages.
std::string LogTail(const std::string& path, size_t n) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (lines.size() > n) lines.erase(lines.begin());
  }
  std::string out;
  for (const std::string& l : lines) out += "\n    " + l;
  return out;
}

std::string NowText() {
  const time_t secs = static_cast<time_t>(SystemClock().Now() / 1000);
  tm local{};
  localtime_r(&secs, &local);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local);
  return buf;
}

// Starts `d` detached: its own session, stdin from /dev/null, stdout and stderr appended
// to its log, cwd `cwd`. Returns once exec has succeeded (a close-on-exec pipe carries
// exec's errno back otherwise). The child stays ours until this process exits, so
// ChildExited() can tell a daemon that dies during start-up.
Result<pid_t> Spawn(const Daemon& d, const std::string& bin_dir, const std::string& cwd) {
  const std::string binary = bin_dir + "/" + d.binary;
  std::vector<std::string> args = {binary, "--config", d.config};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const int log = open(d.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return Error(Code::kInternal, d.log + ": cannot open log: " + ErrnoText(errno));
  const std::string header =
      "==== " + NowText() + " corral local up: " + binary + " --config " + d.config + "\n";
  (void)!write(log, header.data(), header.size());
  const int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int report[2];
  if (null < 0 || pipe2(report, O_CLOEXEC) != 0) {
    const int err = errno;
    close(log);
    if (null >= 0) close(null);
    return Error(Code::kInternal, "cannot start " + d.label + ": " + ErrnoText(err));
  }
  const pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    setsid();
    dup2(null, STDIN_FILENO);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
    if (chdir(cwd.c_str()) != 0) {
      // Not fatal: every path the daemons use is absolute.
    }
    execv(argv[0], argv.data());
    const int err = errno;
    (void)!write(report[1], &err, sizeof err);
    _exit(127);
  }
  const int fork_errno = errno;
  close(log);
  close(null);
  close(report[1]);
  if (pid < 0) {
    close(report[0]);
    return Error(Code::kInternal, "cannot fork for " + d.label + ": " + ErrnoText(fork_errno));
  }
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(report[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    waitpid(pid, nullptr, 0);
    return Error(Code::kInternal, "cannot run " + binary + ": " + ErrnoText(exec_errno));
  }
  if (Status s = WriteFileAtomic(d.pid_file, std::to_string(pid) + "\n"); !s.ok()) {
    return std::unexpected(s);
  }
  return pid;
}

// True (and `how` set) once a child started by Spawn has ended; reaps it.
bool ChildExited(pid_t pid, std::string& how) {
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) != pid) return false;
  how = ExitText(status);
  return true;
}

Status DaemonDied(const Daemon& d, pid_t pid, const std::string& how, const std::string& dir) {
  return Error(Code::kUnavailable,
               d.label + " (pid " + std::to_string(pid) + ") " + how + "; last lines of " + d.log +
                   ":" + LogTail(d.log, 8) +
                   "\n(daemons that did start are left running: corral local down --dir " + dir +
                   " stops them)");
}

// Node numbers K of the files `prefix`K`suffix` in `dir_path` (execd-node3.yaml -> 3).
std::set<int> NumberedFiles(const std::string& dir_path, const std::string& prefix,
                            const std::string& suffix) {
  std::set<int> out;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir_path, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
        !name.ends_with(suffix)) {
      continue;
    }
    const std::string digits =
        name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 6) continue;
    const int k = std::stoi(digits);
    if (k > 0) out.insert(k);
  }
  return out;
}

std::set<int> ConfiguredNodes(const LocalLayout& l) {
  return NumberedFiles(l.dir, "execd-node", ".yaml");
}

Status NoCluster(const LocalLayout& l) {
  return Error(Code::kNotFound, "no local cluster in " + l.dir + " (no " + l.SchedulerConfig() +
                                    "); start one with: corral local up --dir " + l.dir);
}

// ---- configuration files -----------------------------------------------------------------

std::string SchedulerYaml(const LocalLayout& l, int port, int node_port, int64_t heartbeat_ms,
                          int64_t node_timeout_ms) {
  std::string y;
  y += "# Written by `corral local up --dir " + l.dir + "`; read by\n";
  y += "# corral-scheduler --config " + l.SchedulerConfig() + " (docs/configuration.md).\n";
  // A fixed port, chosen once: a restarted scheduler must listen where the running
  // execds reconnect, so that restarting it never means restarting them (and their jobs).
  y += "endpoints: [\"tcp://127.0.0.1:" + std::to_string(port) + "\", " +
       YamlQuote(l.ClientEndpoint()) + "]\n";
  y += "state_dir: " + YamlQuote(l.StateDir()) + "\n";
  // Execds connect here, each with its own CURVE key (docs/security.md); tcp clients
  // use the port above, with a MUNGE credential or read-only.
  y += "node_endpoints: [\"tcp://127.0.0.1:" + std::to_string(node_port) + "\"]\n";
  y += "curve_secret_key: " + YamlQuote(l.SchedulerSecretKey()) + "\n";
  y += "node_keys_dir: " + YamlQuote(l.NodeKeysDir()) + "\n";
  y += "heartbeat_interval: " + SecondsText(heartbeat_ms) + "      # seconds\n";
  y += "node_timeout: " + SecondsText(node_timeout_ms) + "      # seconds\n";
  return y;
}

std::string ExecdYaml(const LocalLayout& l, int k, const ExecdConfig& c) {
  std::string y;
  y += "# Written by `corral local up --dir " + l.dir + "`; read by\n";
  y += "# corral-execd --config " + l.ExecdConfig(k) + " (docs/configuration.md).\n";
  y += "scheduler: " + YamlQuote(c.scheduler) + "\n";
  y += "node: " + YamlQuote(c.node) + "\n";
  y += "spool_dir: " + YamlQuote(c.spool_dir) + "\n";
  if (c.cores) y += "cores: " + std::to_string(*c.cores) + "\n";
  if (c.mem_mb) y += "memory: " + std::to_string(*c.mem_mb) + "M\n";
  if (c.gpus) {
    y += "gpus: [";
    for (size_t i = 0; i < c.gpus->size(); ++i) y += (i ? ", " : "") + std::to_string((*c.gpus)[i]);
    y += "]\n";
  }
  // The one user who runs a local cluster runs its jobs, root included.
  if (c.allow_root_jobs) y += "allow_root_jobs: true\n";
  if (!c.secret_key.empty()) {
    y += "scheduler_key: " + YamlQuote(c.scheduler_key) + "\n";
    y += "secret_key: " + YamlQuote(c.secret_key) + "\n";
  }
  return y;
}

// The scheduler's keypair in keys/, made once.
Status EnsureSchedulerKeys(const LocalLayout& l) {
  if (Exists(l.SchedulerSecretKey())) return OkStatus();
  Result<CurveKeyPair> pair = GenerateCurveKeyPair();
  if (!pair) return pair.error();
  return WriteKeyPairFiles(l.KeyDir(), "scheduler", *pair);
}

// Node k's keypair in keys/ (made once) and its public key in keys/nodes/, where the
// scheduler looks (it notices a new file there without a restart).
Status EnsureNodeKeys(const LocalLayout& l, int k) {
  const std::string name = LocalLayout::NodeName(k);
  if (!Exists(l.NodeSecretKey(k))) {
    Result<CurveKeyPair> pair = GenerateCurveKeyPair();
    if (!pair) return pair.error();
    if (Status s = WriteKeyPairFiles(l.KeyDir(), name, *pair); !s.ok()) return s;
  }
  Result<CurveKeyPair> pair = LoadSecretKeyFile(l.NodeSecretKey(k));
  if (!pair) return pair.error();
  const std::string allowed = l.NodeKeysDir() + "/" + name + ".key";
  if (Result<std::string> listed = LoadPublicKeyFile(allowed); listed && *listed == pair->public_key) {
    return OkStatus();
  }
  return WriteFileAtomic(allowed, "# CURVE public key of " + name +
                                      " (Z85): the scheduler accepts this node with it.\n" +
                                      pair->public_key + "\n");
}

// The scheduler's tcp client endpoint, once it has written its endpoints.
std::optional<std::string> TcpEndpoint(const LocalLayout& l) {
  Result<std::vector<std::string>> endpoints = ReadEndpointsFile(l.EndpointsFile());
  if (!endpoints) return std::nullopt;
  for (const std::string& e : *endpoints) {
    if (e.rfind("tcp://", 0) == 0) return e;
  }
  return std::nullopt;
}

// Where execds connect: the node endpoint, or (a cluster made by an older corral, without
// node endpoints) the tcp client endpoint.
std::optional<std::string> ExecdEndpoint(const LocalLayout& l) {
  if (Result<std::vector<std::string>> nodes = ReadEndpointsFile(l.NodeEndpointsFile())) {
    for (const std::string& e : *nodes) {
      if (e.rfind("tcp://", 0) == 0) return e;
    }
  }
  return TcpEndpoint(l);
}

Result<NodesReply> QueryNodes(const LocalLayout& l, int64_t timeout_ms) {
  Result<Client> client = Client::Connect(l.ClientEndpoint());
  if (!client) return std::unexpected(client.error());
  Result<Message> reply = client->Call(NodesRequest{}, timeout_ms);
  if (!reply) return std::unexpected(reply.error());
  if (const auto* nodes = std::get_if<NodesReply>(&*reply)) return *nodes;
  if (const auto* err = std::get_if<ErrorReply>(&*reply)) return Error(err->code, err->message);
  return Error(Code::kInternal,
               "unexpected '" + std::string(TypeName(*reply)) + "' reply to a nodes request");
}

// ---- `down` ------------------------------------------------------------------------------

// SIGTERM to every running daemon of `group`, SIGKILL after the grace period; removes
// their pid files. Returns how many were stopped.
int StopGroup(const std::vector<Daemon>& group, std::ostream& out) {
  std::vector<std::pair<Daemon, pid_t>> signalled;
  for (const Daemon& d : group) {
    std::optional<pid_t> pid = RunningPid(d);
    if (!pid) {
      if (Exists(d.pid_file)) out << "corral: " << d.label << " was not running\n";
      std::remove(d.pid_file.c_str());
      continue;
    }
    if (kill(*pid, SIGTERM) != 0) {
      out << "corral: cannot signal " << d.label << " (pid " << *pid << "): " << ErrnoText(errno)
          << "\n";
      continue;
    }
    signalled.emplace_back(d, *pid);
  }
  auto all_gone = [&] {
    for (const auto& [d, pid] : signalled) {
      if (Alive(pid)) return false;
    }
    return true;
  };
  const TimeMs deadline = MonotonicNowMs() + kStopGraceMs;
  while (!all_gone() && MonotonicNowMs() < deadline) WaitMs(kPollStepMs / 2);
  for (const auto& [d, pid] : signalled) {
    if (Alive(pid)) {
      kill(pid, SIGKILL);
      const TimeMs kill_deadline = MonotonicNowMs() + 2000;
      while (Alive(pid) && MonotonicNowMs() < kill_deadline) WaitMs(20);
      out << "corral: killed " << d.label << " (pid " << pid << "): still running "
          << kStopGraceMs / 1000 << " s after SIGTERM\n";
    } else {
      out << "corral: stopped " << d.label << " (pid " << pid << ")\n";
    }
    std::remove(d.pid_file.c_str());
  }
  return static_cast<int>(signalled.size());
}

// ---- the steps of `up` -------------------------------------------------------------------

// Starts the scheduler unless it runs, then waits for its endpoints file.
Result<std::string> StartScheduler(const LocalUpOptions& o, const LocalLayout& l, TimeMs deadline,
                                   std::ostream& out) {
  const Daemon d = SchedulerDaemon(l);
  if (std::optional<pid_t> pid = RunningPid(d)) {
    out << "corral: scheduler already running (pid " << *pid << ")\n";
    if (std::optional<std::string> tcp = ExecdEndpoint(l)) return *tcp;
    return Error(Code::kFailedPrecondition,
                 "the scheduler (pid " + std::to_string(*pid) + ") runs but " + l.EndpointsFile() +
                     " has no tcp endpoint; stop it with corral local down --dir " + l.dir);
  }
  // A stale endpoints file would name the previous run's port.
  std::remove(l.EndpointsFile().c_str());
  std::remove(l.NodeEndpointsFile().c_str());
  Result<pid_t> pid = Spawn(d, o.bin_dir, l.dir);
  if (!pid) return std::unexpected(pid.error());
  out << "corral: started scheduler (pid " << *pid << "), log " << d.log << "\n" << std::flush;
  while (true) {
    if (std::optional<std::string> tcp = ExecdEndpoint(l)) return *tcp;
    std::string how;
    if (ChildExited(*pid, how)) return std::unexpected(DaemonDied(d, *pid, how, l.dir));
    if (MonotonicNowMs() >= deadline) {
      return Error(Code::kUnavailable, "the scheduler (pid " + std::to_string(*pid) +
                                           ") did not write " + l.EndpointsFile() +
                                           " in time; see " + d.log);
    }
    WaitMs(50);
  }
}

// Writes execd-nodeK.yaml if missing, or points it at `tcp` when the scheduler moved (its
// config was edited to another port). Sets `moved` in that case.
Status PrepareExecdConfig(const LocalUpOptions& o, const LocalLayout& l, int k,
                          const std::string& tcp, bool secure, bool& moved) {
  moved = false;
  ExecdConfig c;
  if (Exists(l.ExecdConfig(k))) {
    Result<ExecdConfig> loaded = LoadExecdConfig(l.ExecdConfig(k));
    if (!loaded) return loaded.error();
    if (loaded->scheduler == tcp) return OkStatus();
    moved = true;
    c = *loaded;
  } else {
    c.node = LocalLayout::NodeName(k);
    c.spool_dir = l.SpoolDir(k);
    if (secure) {
      if (Status s = EnsureNodeKeys(l, k); !s.ok()) return s;
      c.scheduler_key = l.SchedulerPublicKey();
      c.secret_key = l.NodeSecretKey(k);
    }
    // A one-machine cluster is one user's: when that is root, its jobs are root's (the execd
    // would otherwise refuse them). Without root the execd runs its own user's jobs only.
    c.allow_root_jobs = true;
    c.cores = o.cpus;
    if (o.gpus) {
      c.gpus.emplace();
      for (int g = 0; g < *o.gpus; ++g) c.gpus->push_back(g);
    }
    if (o.memory) {
      Result<int64_t> mb = ParseSizeMb(*o.memory);
      if (!mb) return Error(Code::kInvalidArgument, "--memory: " + mb.error().message());
      c.mem_mb = *mb;
    }
  }
  c.scheduler = tcp;
  return WriteFileAtomic(l.ExecdConfig(k), ExecdYaml(l, k, c));
}

// An execd started by this run, and the wall time before it started: its node counts
// as registered only once the scheduler has heard from it since then (a restarted
// scheduler reloads its nodes from the store and shows them up for a while).
struct Started {
  Daemon daemon;
  int k = 0;
  TimeMs since = 0;
};

// Waits until every node of `nodes` is up; fails early if a daemon of `started` exits.
Status WaitForNodes(const LocalLayout& l, const std::set<int>& nodes,
                    std::map<pid_t, Started>& started, TimeMs deadline, std::ostream& out) {
  std::map<std::string, TimeMs> since;
  for (const auto& [pid, s] : started) since[LocalLayout::NodeName(s.k)] = s.since;
  const size_t want = nodes.size();
  size_t shown = want + 1;  // nothing shown yet
  std::string last_error;
  std::set<std::string> up;
  while (true) {
    for (auto it = started.begin(); it != started.end(); ++it) {
      std::string how;
      if (ChildExited(it->first, how)) {
        return DaemonDied(it->second.daemon, it->first, how, l.dir);
      }
    }
    const TimeMs now = MonotonicNowMs();
    Result<NodesReply> reply = QueryNodes(l, std::clamp<int64_t>(deadline - now, 100, 1000));
    if (reply) {
      up.clear();
      for (const Node& n : reply->nodes) {
        if (n.state != NodeState::kUp || n.last_seen < since[n.name]) continue;
        for (int k : nodes) {
          if (n.name == LocalLayout::NodeName(k)) up.insert(n.name);
        }
      }
      last_error.clear();
    } else {
      last_error = reply.error().message();
    }
    if (up.size() != shown) {
      shown = up.size();
      out << "corral: waiting for " << want << " node" << (want == 1 ? "" : "s")
          << " to register... " << shown << "/" << want << "\n"
          << std::flush;
    }
    if (up.size() == want) return OkStatus();
    if (MonotonicNowMs() >= deadline) {
      std::string missing;
      for (int k : nodes) {
        if (!up.contains(LocalLayout::NodeName(k))) missing += " " + LocalLayout::NodeName(k);
      }
      return Error(Code::kUnavailable,
                   "nodes not registered in time:" + missing + " (see the logs in " + l.LogDir() +
                       (last_error.empty() ? ")" : "; last scheduler error: " + last_error + ")"));
    }
    WaitMs(std::min<int64_t>(kPollStepMs, deadline - MonotonicNowMs()));
  }
}

}  // namespace

Result<std::string> AbsoluteDir(const std::string& dir) {
  if (dir.empty()) return Error(Code::kInvalidArgument, "the directory must not be empty");
  std::error_code ec;
  fs::path p = fs::absolute(dir, ec);
  if (ec) return Error(Code::kInvalidArgument, dir + ": " + ec.message());
  std::string out = p.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

Result<std::string> SelfBinDir() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return Error(Code::kInternal, "cannot read /proc/self/exe: " + ec.message());
  return self.parent_path().string();
}

Status LocalUp(const LocalUpOptions& o, std::ostream& out) {
  const TimeMs deadline = MonotonicNowMs() + o.deadline_ms;
  const LocalLayout l(o.dir);
  if (l.Socket().size() > kMaxSocketPathBytes) {
    return Error(Code::kInvalidArgument,
                 "the client socket " + l.Socket() + " would be " +
                     std::to_string(l.Socket().size()) + " bytes long; Unix sockets allow " +
                     std::to_string(kMaxSocketPathBytes) + ": choose a shorter --dir");
  }
  for (const char* binary : {"corral-scheduler", "corral-execd"}) {
    const std::string path = o.bin_dir + "/" + binary;
    if (access(path.c_str(), X_OK) != 0) {
      return Error(Code::kNotFound, path + ": not found or not executable (" + std::string(binary) +
                                        " must sit next to corral)");
    }
  }
  if (o.nodes && *o.nodes < 1) return Error(Code::kInvalidArgument, "--nodes must be at least 1");
  if (o.memory) {
    if (Result<int64_t> mb = ParseSizeMb(*o.memory); !mb || *mb <= 0) {
      return Error(Code::kInvalidArgument,
                   "--memory: " + (mb ? "'" + *o.memory + "' is zero" : mb.error().message()));
    }
  }
  const int64_t heartbeat = o.heartbeat_ms.value_or(1000);
  const int64_t timeout = o.node_timeout_ms.value_or(30000);
  if (timeout <= heartbeat) {
    return Error(Code::kInvalidArgument, "--node-timeout (" + SecondsText(timeout) +
                                             " s) must be longer than --heartbeat (" +
                                             SecondsText(heartbeat) + " s)");
  }
  for (const std::string& d : {l.dir, l.StateDir(), l.LogDir(), l.RunDir()}) {
    if (Status s = MakeDirs(d); !s.ok()) return s;
  }

  // Nodes: those already configured here, plus 1..N.
  const std::set<int> configured = ConfiguredNodes(l);
  std::set<int> nodes = configured;
  for (int k = 1; k <= o.nodes.value_or(configured.empty() ? 2 : 0); ++k) nodes.insert(k);
  if (o.nodes && static_cast<size_t>(*o.nodes) < configured.size()) {
    out << "corral: note: " << l.dir << " already has " << configured.size()
        << " nodes; --nodes does not remove any\n";
  }

  if (!Exists(l.SchedulerConfig())) {
    Result<int> port = PickFreeLoopbackPort();
    if (!port) return port.error();
    Result<int> node_port = PickFreeLoopbackPort();
    if (!node_port) return node_port.error();
    if (*node_port == *port) return Error(Code::kUnavailable, "could not pick two free ports; retry");
    // Secure from the start: the scheduler's keys and an (empty) allow-list, which each
    // node's public key joins as its config is written.
    for (const std::string& d : {l.KeyDir(), l.NodeKeysDir()}) {
      if (Status s = MakeDirs(d); !s.ok()) return s;
    }
    chmod(l.KeyDir().c_str(), 0700);
    if (Status s = EnsureSchedulerKeys(l); !s.ok()) return s;
    if (Status s = WriteFileAtomic(l.SchedulerConfig(),
                                   SchedulerYaml(l, *port, *node_port, heartbeat, timeout));
        !s.ok()) {
      return s;
    }
  } else if (o.heartbeat_ms || o.node_timeout_ms) {
    out << "corral: note: " << l.SchedulerConfig()
        << " exists and is kept; --heartbeat/--node-timeout not applied\n";
  }
  if ((o.cpus || o.memory || o.gpus) && !configured.empty()) {
    out << "corral: note: existing execd configs are kept; --cpus/--memory/--gpus apply to new nodes "
           "only\n";
  }

  Result<SchedulerConfig> scheduler_config = LoadSchedulerConfig(l.SchedulerConfig());
  if (!scheduler_config) return scheduler_config.error();
  const bool secure = !scheduler_config->curve_secret_key.empty();
  if (!secure) {
    out << "corral: note: " << l.SchedulerConfig()
        << " names no CURVE key (an older corral wrote it): nodes are not authenticated. "
           "To upgrade: corral local down, remove the *.yaml files of " << l.dir
        << " and run up again (jobs and state are kept)\n";
  }
  Result<std::string> tcp = StartScheduler(o, l, deadline, out);
  if (!tcp) return tcp.error();

  std::map<pid_t, Started> started;
  for (int k : nodes) {
    const Daemon d = ExecdDaemon(l, k);
    std::optional<pid_t> running = RunningPid(d);
    bool moved = false;
    if (Status s = MakeDirs(l.SpoolDir(k)); !s.ok()) return s;
    if (Status s = PrepareExecdConfig(o, l, k, *tcp, secure, moved); !s.ok()) return s;
    if (running && moved) {
      // It talks to the old port and can never reach the new scheduler.
      out << "corral: " << d.label << " (pid " << *running
          << ") was started for the previous scheduler; restarting it\n";
      StopGroup({d}, out);
      running.reset();
    }
    if (running) {
      out << "corral: " << d.label << " already running (pid " << *running << ")\n";
      continue;
    }
    const TimeMs since = SystemClock().Now();
    Result<pid_t> pid = Spawn(d, o.bin_dir, l.dir);
    if (!pid) return pid.error();
    out << "corral: started " << d.label << " (pid " << *pid << "), log " << d.log << "\n";
    started.emplace(*pid, Started{d, k, since});
  }
  if (Status s = WaitForNodes(l, nodes, started, deadline, out); !s.ok()) return s;
  out << "corral: local cluster up in " << l.dir << " (" << nodes.size() << " node"
      << (nodes.size() == 1 ? "" : "s") << ", scheduler " << *tcp << ")\n"
      << "corral: use it with: eval \"$(corral local env --dir " << ShellQuote(l.dir) << ")\"\n";
  return OkStatus();
}

Status LocalDown(const std::string& dir, std::ostream& out) {
  const LocalLayout l(dir);
  if (!Exists(l.SchedulerConfig()) && !Exists(l.RunDir())) return NoCluster(l);
  std::vector<Daemon> execds;
  for (int k : NumberedFiles(l.RunDir(), "execd-node", ".pid")) {
    execds.push_back(ExecdDaemon(l, k));
  }
  int stopped = StopGroup(execds, out);
  stopped += StopGroup({SchedulerDaemon(l)}, out);
  // A stopped execd leaves its jobs running (so that a restart re-attaches them); taking
  // the whole local cluster down ends them too. Their ends are reported at the next `up`.
  int jobs = 0;
  for (int k : ConfiguredNodes(l)) jobs += KillSpooledJobs(l.SpoolDir(k));
  if (jobs > 0) out << "corral: killed " << jobs << " job(s) still running\n";
  if (stopped == 0 && jobs == 0) out << "corral: nothing was running in " << l.dir << "\n";
  return OkStatus();
}

Status LocalStatus(const std::string& dir, std::ostream& out) {
  const LocalLayout l(dir);
  if (!Exists(l.SchedulerConfig())) return NoCluster(l);
  std::set<int> nodes = ConfiguredNodes(l);
  for (int k : NumberedFiles(l.RunDir(), "execd-node", ".pid")) nodes.insert(k);

  bool all_running = true;
  char line[256];
  out << "local cluster " << l.dir << "\n";
  auto show = [&](const Daemon& d) {
    const std::optional<pid_t> pid = RunningPid(d);
    all_running = all_running && pid.has_value();
    std::snprintf(line, sizeof line, "  %-16s %s", d.label.c_str(),
                  pid ? ("running, pid " + std::to_string(*pid)).c_str() : "not running");
    out << line << "\n";
    return pid.has_value();
  };
  const bool scheduler_up = show(SchedulerDaemon(l));
  for (int k : nodes) show(ExecdDaemon(l, k));
  if (!scheduler_up) {
    return Error(Code::kFailedPrecondition, "the scheduler is not running");
  }
  out << "  client endpoint  " << l.ClientEndpoint() << "\n";
  if (std::optional<std::string> tcp = ExecdEndpoint(l)) out << "  execd endpoint   " << *tcp << "\n";

  Result<NodesReply> reply = QueryNodes(l, 3000);
  if (!reply) {
    return Error(Code::kFailedPrecondition,
                 "the scheduler does not answer: " + reply.error().message());
  }
  out << "nodes, as the scheduler sees them:\n";
  std::snprintf(line, sizeof line, "  %-12s %-12s %-12s %-14s %s\n", "NAME", "STATE", "CORES(USED)",
                "MEMORY(USED)", "LAST SEEN");
  out << line;
  const TimeMs now = SystemClock().Now();
  for (size_t i = 0; i < reply->nodes.size(); ++i) {
    const Node& n = reply->nodes[i];
    const Resources used = i < reply->used.size() ? reply->used[i] : Resources{};
    const std::string cores =
        std::to_string(n.total.cores) + "(" + std::to_string(used.cores) + ")";
    const std::string mem = MemoryText(n.total.mem_mb) + "(" + MemoryText(used.mem_mb) + ")";
    const std::string seen =
        n.last_seen > 0 ? std::to_string(std::max<TimeMs>(0, now - n.last_seen) / 1000) + "s ago"
                        : "never";
    std::snprintf(line, sizeof line, "  %-12s %-12s %-12s %-14s %s\n", n.name.c_str(),
                  std::string(NodeStateName(n.state)).c_str(), cores.c_str(), mem.c_str(),
                  seen.c_str());
    out << line;
    all_running = all_running && n.state == NodeState::kUp;
  }
  if (reply->nodes.empty()) out << "  (none registered)\n";
  if (!all_running) return Error(Code::kFailedPrecondition, "not every daemon or node is up");
  return OkStatus();
}

Result<LocalEnvText> LocalEnv(const std::string& dir, const std::string& bin_dir,
                              const std::string& path_env) {
  const LocalLayout l(dir);
  if (!Exists(l.SchedulerConfig())) return std::unexpected(NoCluster(l));
  LocalEnvText env;
  env.lines = "export CORRAL_SCHEDULER=" + ShellQuote(l.ClientEndpoint()) + "\n";
  bool on_path = false;
  std::stringstream entries(path_env);
  std::string entry;
  while (std::getline(entries, entry, ':')) {
    std::error_code ec;
    if (!entry.empty() && fs::equivalent(entry, bin_dir, ec)) on_path = true;
  }
  if (!on_path) env.lines += "export PATH=" + ShellQuote(bin_dir) + ":\"$PATH\"\n";
  if (!RunningPid(SchedulerDaemon(l))) {
    env.warning = "the scheduler of " + l.dir + " is not running (corral local up --dir " + l.dir +
                  " starts it)";
  }
  return env;
}

}  // namespace corral
