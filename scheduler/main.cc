// corral-scheduler: parses the command line, opens the store and runs the server.
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include <cstring>
#include <iostream>
#include <string>

#include "common/clock.h"
#include "common/config.h"
#include "policies/policy_config.h"
#include "scheduler/server.h"
#include "scheduler/store.h"

namespace {

constexpr const char* kUsage = R"(usage: corral-scheduler --config FILE
       corral-scheduler --check-policy FILE

The Corral scheduler daemon: tracks jobs and nodes in SQLite (STATE_DIR/corral.db),
accepts jobs from q-tools on its ipc:// endpoint (users are identified by the kernel)
and orders execds to run them. It runs in the foreground and logs to stderr; stop it
with SIGTERM; SIGHUP reloads the policy file (an invalid file is logged and the policy
in force stays). Every accepted job survives a crash (kill -9) of the scheduler.

options:
  --config FILE   YAML configuration (see docs/configuration.md):
                    endpoints: ["tcp://0.0.0.0:6444", "ipc:///run/corral/scheduler.sock"]
                    state_dir: /var/lib/corral
                    heartbeat_interval: 5     # seconds, told to execds
                    node_timeout: 30          # seconds of silence before a node is lost
                    max_batch: 4096           # messages per group commit
                    policy: /etc/corral/policy.yaml   # fair-share, limits, backfill
                  who is who (docs/security.md):
                    node_endpoints: ["tcp://0.0.0.0:6445"]   # execds connect here
                    curve_secret_key: /etc/corral/scheduler.secret  # CURVE on (mode 0600)
                    node_keys_dir: /etc/corral/nodes   # NAME.key: may speak for node NAME
                    node_keys: {node1: "<Z85 public key>"}   # the same, inline
                    tcp_client_auth: [munge, anonymous]   # tcp clients: MUNGE or read-only
                    munge_socket: /run/munge/munge.socket.2
  --check-policy FILE
                  validate a policy file (policies/example-policy.yaml is annotated) and
                  exit: 0 and "FILE: valid" if it is, else 2 and
                  "FILE:LINE:COLUMN: key: what is wrong" on stderr
  -h, --help      this text

The endpoints actually bound (a tcp port "*" picks a free one) are written to
STATE_DIR/endpoints, the node endpoints to STATE_DIR/node_endpoints.

Without curve_secret_key, execds are not authenticated (anyone who reaches a tcp
endpoint can pose as a node) and a WARNING says so at start; corral keygen makes keys,
corral local up sets all of it up by itself.

exit status: 0 after SIGTERM/SIGINT, 1 on a runtime error, 2 on a usage or
configuration error.
)";

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--check-policy" && i + 1 < argc) {
      corral::Result<corral::Policy> policy = corral::LoadPolicy(argv[i + 1]);
      if (!policy) {
        std::cerr << "corral-scheduler: " << policy.error().message() << "\n";
        return 2;
      }
      std::cout << argv[i + 1] << ": valid\n";
      return 0;
    }
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else {
      std::cerr << "corral-scheduler: unknown argument '" << arg << "'\n" << kUsage;
      return 2;
    }
  }
  if (config_path.empty()) {
    std::cerr << "corral-scheduler: --config FILE is required\n" << kUsage;
    return 2;
  }
  corral::Result<corral::SchedulerConfig> config = corral::LoadSchedulerConfig(config_path);
  if (!config) {
    std::cerr << "corral-scheduler: " << config.error().message() << "\n";
    return 2;
  }
  mkdir(config->state_dir.c_str(), 0755);
  auto store = corral::Store::Open(config->state_dir + "/corral.db");
  if (!store) {
    std::cerr << "corral-scheduler: " << store.error().message() << "\n";
    return 1;
  }
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  const int signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

  corral::SystemClock clock;
  corral::Server server(*config, **store, clock);
  if (corral::Status s = server.Start(); !s.ok()) {
    std::cerr << "corral-scheduler: " << s.message() << "\n";
    return 1;
  }
  if (corral::Status s = server.Run(signal_fd); !s.ok()) {
    std::cerr << "corral-scheduler: " << s.message() << "\n";
    return 1;
  }
  return 0;
}
