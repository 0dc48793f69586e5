// What end-to-end tests need to run real Corral daemons: temp dirs, processes started
// and stopped by PID, commands run with captured output, bounded waits, and a
// TestCluster of one scheduler and N execds on loopback/ipc in a temp dir.
#pragma once

#include <sys/types.h>

#include <csignal>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/curve.h"
#include "common/protocol.h"
#include "common/types.h"
#include "qtools/client.h"

namespace corral::e2e {

// Path of a Corral executable in the build's bin directory.
std::string Bin(const std::string& name);

// A fresh directory under /tmp (short, so ipc:// paths fit), removed with its contents.
struct TempDir {
  TempDir();
  ~TempDir();
  std::string path;
};

// `ms` stretched by CORRAL_TEST_TIME_SCALE (a positive integer, default 1): deadlines are
// generous for a normal build, but a sanitized -O0 build (scripts/sanitize.sh sets 4) runs
// the daemons several times slower. Every deadline of the harness goes through it; tests
// pass their own client deadlines through it too. Never shortens a deadline.
int64_t Slack(int64_t ms);

// Starts argv[0] (a path) with stdout/stderr appended to `log`, in its own process
// group, with `env` added to this process's environment. Returns the pid.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log,
            const std::map<std::string, std::string>& env = {});

// Sends `sig`, waits up to `timeout_ms` for the process to exit, then SIGKILLs it.
// Returns the wait status.
int Stop(pid_t pid, int sig = SIGTERM, int64_t timeout_ms = 10000);

// True while `pid` exists (and is not a zombie of ours: reaped on the way).
bool Alive(pid_t pid);

struct RunResult {
  int exit_code = -1;  // -1 if it did not finish in time (then it was killed)
  std::string out;
  std::string err;
};
// Runs a command to completion (deadline `timeout_ms`), capturing stdout and stderr.
RunResult Run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              const std::string& cwd = "", const std::string& stdin_text = "",
              int64_t timeout_ms = 30000);

// Polls `done` every 20 ms until it is true or `timeout_ms` passes.
bool WaitUntil(const std::function<bool()>& done, int64_t timeout_ms);

std::string ReadFile(const std::string& path);
// `text` split at newlines (no trailing empty line).
std::vector<std::string> Lines(const std::string& text);
void WriteFile(const std::string& path, const std::string& text, int mode = 0644);

// A free tcp port on 127.0.0.1 (bound and released), so that a restarted scheduler
// can listen where its execds already connect.
int FreePort();

struct ClusterOptions {
  int nodes = 2;
  int cores = 2;
  int64_t heartbeat_ms = 500;
  int64_t node_timeout_ms = 30000;
  int gpus = 0;  // GPUs each execd declares (--gpus: ids 0..gpus-1)
  std::string scheduler_yaml;                         // extra lines for scheduler.yaml
  std::map<int, std::vector<std::string>> execd_args;  // extra arguments of node<k>'s execd
  // A network namespace to run node<netns_node> in, reaching the scheduler at
  // netns_scheduler_ip (which the scheduler then also listens on). Empty: all on loopback.
  std::string netns;
  int netns_node = 0;
  std::string netns_scheduler_ip;
  // The secure configuration (docs/security.md), which every test runs unless it says
  // otherwise: CURVE keys for the scheduler and each node (dir()/keys), execds on a node
  // endpoint of their own, each allow-listed by its key. false: nodes connect in clear
  // to the client tcp endpoint, identified by routing id alone.
  bool curve = true;
};

class TestCluster {
 public:
  explicit TestCluster(ClusterOptions options = {});
  ~TestCluster();  // stops every daemon it started, by pid

  void StartScheduler();
  void StopScheduler(int sig = SIGTERM);
  void StartExecd(int k);  // node<k>, k = 1..nodes
  void StopExecd(int k, int sig = SIGTERM);
  // Waits until every node is registered and up (REQUIREs it).
  void WaitForNodes();

  Client Connect();
  // The environment the q-tools need: CORRAL_SCHEDULER and PATH (bin dir first).
  std::map<std::string, std::string> Env() const;
  // Waits (WaitRequest, bounded) until the jobs are finished; returns their records.
  std::vector<Job> WaitJobs(const std::vector<JobId>& ids, int64_t timeout_ms);
  // Submits a /bin/sh script through the client library; REQUIREs acceptance.
  JobId Submit(const std::string& script, const std::string& name, int cores = 1);

  const std::string& dir() const { return dir_.path; }
  std::string work() const { return dir_.path + "/work"; }
  std::string ipc() const { return "ipc://" + dir_.path + "/s.sock"; }
  // The tcp endpoint for clients, and the one execds connect to (the same without curve).
  std::string tcp() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  std::string node_endpoint() const {
    return "tcp://127.0.0.1:" + std::to_string(options_.curve ? node_port_ : port_);
  }
  // Key files (with curve): KEYS/scheduler.{key,secret}, KEYS/node<k>.{key,secret}, and
  // the allow-list KEYS/nodes/node<k>.key.
  std::string key_dir() const { return dir_.path + "/keys"; }
  std::string scheduler_key() const { return key_dir() + "/scheduler.key"; }
  std::string node_secret_key(int k) const {
    return key_dir() + "/node" + std::to_string(k) + ".secret";
  }
  std::string Logs() const;  // tail of every daemon log, for failure messages
  pid_t scheduler_pid() const { return scheduler_; }
  pid_t execd_pid(int k) const { return execds_.at(k); }

 private:
  ClusterOptions options_;
  TempDir dir_;
  void StopAll();  // every daemon started, by pid; jobs left in the spools

  int port_ = 0;
  int node_port_ = 0;
  pid_t scheduler_ = 0;
  std::map<int, pid_t> execds_;
};

// A DEALER connected to `endpoint`, for messages the client library would never send:
// raw frames out, one decoded reply back. With `routing_id`, the DEALER uses it; with
// `keys`, it speaks CURVE to `server_key`.
class RawSocket {
 public:
  explicit RawSocket(const std::string& endpoint, const std::string& routing_id = "",
                     const CurveKeyPair* keys = nullptr, const std::string& server_key = "");
  ~RawSocket();
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;
  // Sends `frames` and returns the decoded reply, or Unavailable after Slack(timeout_ms)
  // without one.
  Result<Envelope> Call(const std::vector<std::string>& frames, int64_t timeout_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One Call of 3 s on a fresh RawSocket.
Result<Envelope> RawExchange(const std::string& endpoint, const std::vector<std::string>& frames,
                             const std::string& routing_id = "",
                             const CurveKeyPair* keys = nullptr,
                             const std::string& server_key = "");
// The message of the ErrorReply in `r`; fails the test if `r` is anything else.
std::string ErrorText(const Result<Envelope>& r);

}  // namespace corral::e2e
