// The daemons' configuration files (YAML) as plain structs. Loading is strict: an
// unknown key, a wrong type or a bad value is an InvalidArgument naming the file,
// line and key, so a typo never silently falls back to a default.
// docs/configuration.md lists every key; scripts and `corral local up` write these files.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace corral {

struct SchedulerConfig {
  // ZeroMQ endpoints the scheduler binds, e.g. "tcp://0.0.0.0:6444" (execds, remote
  // clients) and "ipc:///run/corral/scheduler.sock" (local clients; peer credentials).
  // A tcp port of "*" picks a free port; the bound endpoints are written to
  // STATE_DIR/endpoints so that tools and execds can find them.
  std::vector<std::string> endpoints;
  std::string state_dir;                 // holds corral.db (SQLite) and endpoints
  int64_t heartbeat_interval_ms = 5000;  // told to execds at registration
  int64_t node_timeout_ms = 30000;       // a node silent this long is unreachable
  int max_batch = 4096;                  // most messages handled per group commit
  int max_attempts = 3;                  // dispatches per job (node failures); qsub can override
  // Cluster-wide consumables (e.g. licenses: {"matlab": 10}), requested with -l NAME=N.
  std::map<std::string, int64_t> consumables;
  int64_t default_h_rt_s = 0;          // wall-time limit of jobs that give none; 0 = none
  int64_t default_mem_per_core_mb = 0; // memory of jobs that request none, per core; 0 = none
  int oversubscribe = 1;               // jobs that may share one core (1 = never shared)
  std::string policy;                  // policy file (policies/README.md); "" = FCFS
  // Who may do what (root is always an admin). Admins may act on any job and run admin
  // commands (qconf -reload, qmod -d/-e); operators may manage nodes and any job but not
  // the policy. Everyone else acts on their own jobs only.
  std::set<std::string> admins;
  std::set<std::string> operators;
  bool private_jobs = false;  // true: users see only their own jobs in qstat/qacct
  // corral events: where job and node events are published (ZeroMQ PUB); empty =
  // ipc://STATE_DIR/events.sock. Events are kept in SQLite this long for resuming.
  std::vector<std::string> event_endpoints;
  int64_t event_retention_ms = 24 * 3600 * 1000;
  // Who is who (docs/security.md). Execds connect to `node_endpoints` (tcp://), encrypted
  // and authenticated with CURVE when `curve_secret_key` is set: only a key listed in
  // `node_keys` (name -> Z85 public key) or as NAME.key in `node_keys_dir` may speak for
  // node NAME. Without a key, nodes are identified by routing id alone (a loud warning).
  std::vector<std::string> node_endpoints;
  std::string curve_secret_key;                     // file with the scheduler's secret key
  std::map<std::string, std::string> node_keys;     // node name -> Z85 public key
  std::string node_keys_dir;                        // NAME.key public key files
  // How clients on tcp endpoints may prove who they are: "munge" (a MUNGE credential per
  // request) and/or "anonymous" (no credential: read-only). Empty: tcp clients refused.
  std::vector<std::string> tcp_client_auth = {"munge", "anonymous"};
  std::string munge_socket;  // munged's socket; "" = libmunge's default
};

struct ExecdConfig {
  std::string scheduler;          // endpoint of the scheduler, e.g. tcp://head:6444
  std::string node;               // node name; default: the host name
  std::string spool_dir;          // per-job scripts and state
  std::optional<int> cores;       // override detected cores
  std::optional<int64_t> mem_mb;  // override detected memory (MiB)
  std::optional<std::vector<int>> gpus;  // GPU indices offered; default: nvidia-smi -L
  int64_t kill_grace_ms = 5000;  // past h_rt: SIGTERM, then SIGKILL this much later
  std::vector<std::string> features;             // e.g. {"avx512", "bigmem"}
  std::map<std::string, int64_t> consumables;    // node-local, e.g. {"scratch_gb": 800}
  // As root: whether jobs of uid 0 run (as root). Off by default: a job runs as its owner,
  // and root's jobs would run with every right on the node.
  bool allow_root_jobs = false;
  // CURVE (docs/security.md): both set, or neither (then the connection is in clear and
  // the node is not authenticated).
  std::string scheduler_key;  // file with the scheduler's public key
  std::string secret_key;     // file with this node's secret key (mode 0600)
};

// True for a name usable as a feature or consumable: a letter, then letters, digits,
// '_', '.' or '-', at most 64 characters, and not a built-in resource name (h_rt, mem,
// gpus, ...).
bool ValidResourceName(const std::string& name);

Result<SchedulerConfig> LoadSchedulerConfig(const std::string& path);
Result<ExecdConfig> LoadExecdConfig(const std::string& path);

// The same from YAML text; `origin` names the source in error messages.
Result<SchedulerConfig> ParseSchedulerConfig(const std::string& yaml, const std::string& origin);
Result<ExecdConfig> ParseExecdConfig(const std::string& yaml, const std::string& origin);

}  // namespace corral
