// `corral local`: a scheduler and N execds on this machine, run as background daemons
// under one directory (configs, state, spools, logs, pid files, the client socket).
// The logic lives here; argument parsing and exit codes live in corral.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "common/status.h"

namespace corral {

// Where everything of one local cluster lives. `dir` is absolute and has no trailing '/'.
struct LocalLayout {
  explicit LocalLayout(std::string dir) : dir(std::move(dir)) {}

  std::string SchedulerConfig() const { return dir + "/scheduler.yaml"; }
  std::string ExecdConfig(int k) const { return dir + "/execd-" + NodeName(k) + ".yaml"; }
  std::string StateDir() const { return dir + "/state"; }
  std::string EndpointsFile() const { return StateDir() + "/endpoints"; }
  std::string NodeEndpointsFile() const { return StateDir() + "/node_endpoints"; }
  // CURVE keys (docs/security.md): the scheduler's pair and each node's in keys/, the
  // nodes' public keys again in keys/nodes/, the scheduler's allow-list.
  std::string KeyDir() const { return dir + "/keys"; }
  std::string NodeKeysDir() const { return KeyDir() + "/nodes"; }
  std::string SchedulerSecretKey() const { return KeyDir() + "/scheduler.secret"; }
  std::string SchedulerPublicKey() const { return KeyDir() + "/scheduler.key"; }
  std::string NodeSecretKey(int k) const { return KeyDir() + "/" + NodeName(k) + ".secret"; }
  std::string SpoolDir(int k) const { return dir + "/spool/" + NodeName(k); }
  std::string LogDir() const { return dir + "/log"; }
  std::string SchedulerLog() const { return LogDir() + "/scheduler.log"; }
  std::string ExecdLog(int k) const { return LogDir() + "/execd-" + NodeName(k) + ".log"; }
  std::string RunDir() const { return dir + "/run"; }
  std::string SchedulerPidFile() const { return RunDir() + "/scheduler.pid"; }
  std::string ExecdPidFile(int k) const { return RunDir() + "/execd-" + NodeName(k) + ".pid"; }
  std::string Socket() const { return RunDir() + "/scheduler.sock"; }
  // What local clients connect to: "ipc://" + Socket().
  std::string ClientEndpoint() const { return "ipc://" + Socket(); }

  static std::string NodeName(int k) { return "node" + std::to_string(k); }

  std::string dir;
};

// The longest path an AF_UNIX socket can have (sun_path is 108 bytes with its NUL).
inline constexpr size_t kMaxSocketPathBytes = 107;

// `dir` made absolute (against the current directory) and normalized, without a trailing
// '/'. The directory need not exist. InvalidArgument for an empty path.
Result<std::string> AbsoluteDir(const std::string& dir);

// The directory holding the running executable (readlink /proc/self/exe): where
// corral-scheduler and corral-execd are expected.
Result<std::string> SelfBinDir();

struct LocalUpOptions {
  std::string dir;                         // absolute (see AbsoluteDir)
  std::string bin_dir;                     // holds corral-scheduler and corral-execd
  std::optional<int> nodes;                // unset: the nodes already configured in dir, or 2
  std::optional<int> cpus;                 // cores each execd offers; unset: detected
  std::optional<std::string> memory;       // memory each execd offers ("4G"); unset: detected
  std::optional<int> gpus;                 // GPUs each execd declares (0..gpus-1); unset: detected
  std::optional<int64_t> heartbeat_ms;     // unset: 1000
  std::optional<int64_t> node_timeout_ms;  // unset: 30000
  int64_t deadline_ms = 30000;             // for the scheduler to bind and every node to register
};

// Starts the daemons of the cluster in `options.dir` that are not running, writing the
// configuration files that do not exist yet (existing ones are kept, so options that
// would change them are reported and ignored), and returns once every node is
// registered and up. Progress goes to `out`. Errors: InvalidArgument (bad options, socket
// path too long), NotFound (daemon binaries missing), Unavailable (a daemon exited or the
// deadline passed; the message names the log to read), Internal (file system).
Status LocalUp(const LocalUpOptions& options, std::ostream& out);

// SIGTERM to every daemon of the cluster in `dir` (execds first, then the scheduler),
// SIGKILL to those still running after 10 s; removes the pid files and reports on `out`
// what it stopped. Only processes whose command line is that daemon with this cluster's
// config file are signalled. NotFound if `dir` holds no cluster.
Status LocalDown(const std::string& dir, std::ostream& out);

// Prints which daemons run (with pids) and the nodes as the scheduler sees them. OK when
// the scheduler and every configured execd run and the scheduler answers;
// FailedPrecondition (after printing) otherwise; NotFound if `dir` holds no cluster.
Status LocalStatus(const std::string& dir, std::ostream& out);

// Shell lines that point the q-tools at the cluster in `dir`:
//   export CORRAL_SCHEDULER=ipc://DIR/run/scheduler.sock
// and, only when `bin_dir` is not already on `path_env` ($PATH), a line putting it first.
// NotFound if `dir` holds no cluster. `warning` is set when the scheduler is not running.
struct LocalEnvText {
  std::string lines;
  std::string warning;
};
Result<LocalEnvText> LocalEnv(const std::string& dir, const std::string& bin_dir,
                              const std::string& path_env);

}  // namespace corral
