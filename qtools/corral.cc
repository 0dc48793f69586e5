// corral: the administrator's command. Parses argv and dispatches; the `local`
// subcommands (a whole cluster on this machine) are implemented in local_cluster.cc,
// `keygen` (CURVE keypairs) in common/curve.cc.
// Exit status: 0 success, 1 failure, 2 usage error.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/curve.h"
#include "common/status.h"
#include "common/units.h"
#include "qtools/events_cmd.h"
#include "qtools/local_cluster.h"
#include "qtools/submit_many.h"

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage = R"USAGE(usage: corral COMMAND [ARGS...]
       corral --help

Corral's administration command.

commands:
  local     run a complete cluster (one scheduler, N execds) on this machine, for
            trying Corral out, demos and tests: corral local --help
  keygen    make a CURVE keypair for the scheduler or a node: corral keygen --help
  events    job and node state changes as JSON lines, pushed by the scheduler and
            resumable by sequence number: corral events --help
  submit-many
            one job per line of commands, thousands per second (pipelined, each
            acknowledged once on disk): corral submit-many --help
  help      this text

exit status: 0 success, 1 failure, 2 usage error.
)USAGE";

constexpr const char* kLocalUsage =
    R"USAGE(usage: corral local up     --dir DIR [--nodes N] [--cpus C] [--memory SIZE]
                          [--gpus G] [--heartbeat SECONDS] [--node-timeout SECONDS]
       corral local env    --dir DIR
       corral local status --dir DIR
       corral local down   --dir DIR

Runs a whole Corral cluster on this machine: one corral-scheduler and N corral-execd
daemons, each in the background, everything under one directory. The daemons are taken
from the directory that holds this corral executable.

subcommands:
  up       Start the daemons of the cluster in DIR that are not running and wait (at most
           30 s) until every node has registered with the scheduler, printing progress.
           The first `up` writes the configuration files; later ones keep them and start
           only what is not running, so `up` is safe to repeat.
             --nodes N              number of execds, named node1..nodeN (default 2, or
                                    the nodes already configured in DIR)
             --cpus C               cores each node offers (default: detected)
             --memory SIZE          memory each node offers, e.g. 4G, 512M (a plain
                                    number is bytes, as in Grid Engine; default: detected)
             --gpus G               GPUs each node declares, indices 0..G-1 (no GPU
                                    hardware needed: jobs get CUDA_VISIBLE_DEVICES)
             --heartbeat SECONDS    execd heartbeat interval (default 1)
             --node-timeout SECONDS silence after which a node is unreachable (default 30)
  env      Print shell commands that point the q-tools (qsub, qstat, ...) at the cluster:
             export CORRAL_SCHEDULER=ipc://DIR/run/scheduler.sock
           plus `export PATH=BIN:"$PATH"` when BIN, the directory of this corral, is not
           on $PATH yet. Use as:  eval "$(corral local env --dir DIR)"
  status   Show which daemons run (with pids) and the nodes as the scheduler sees them.
           Exit status 0 only when every daemon runs and every node is up.
  down     Stop the execds, then the scheduler: SIGTERM, and SIGKILL for any daemon still
           running 10 s later. Jobs still running are killed with their execd. State
           (DIR/state/corral.db) is kept: a later `up` resumes the same cluster.

DIR (made absolute; created by `up`):
  scheduler.yaml, execd-nodeK.yaml   configuration files (docs/configuration.md)
  keys/                              CURVE keys: scheduler.key/.secret, nodeK.key/.secret;
                                     keys/nodes/nodeK.key is the scheduler's allow-list
                                     (each execd is authenticated by its key and the
                                     connection encrypted: docs/security.md)
  state/                             scheduler database (corral.db) and bound endpoints
  spool/nodeK/                       execd spool directories
  log/scheduler.log, log/execd-nodeK.log
  run/scheduler.pid, run/execd-nodeK.pid, run/scheduler.sock (the client socket)
The socket path must fit in 107 bytes, so DIR must be fairly short.

Every option also accepts the form --option=VALUE.

examples:
  corral local up --dir /tmp/corral --nodes 3 --cpus 4 --memory 8G
  eval "$(corral local env --dir /tmp/corral)"
  echo 'hostname' | qsub -sync y
  corral local down --dir /tmp/corral

exit status: 0 success, 1 failure (the message says what and where; daemon logs are in
DIR/log), 2 usage error.
)USAGE";

constexpr const char* kKeygenUsage = R"USAGE(usage: corral keygen [--out DIR] [--name NAME]

Makes a CURVE keypair (docs/security.md) and writes it as two files:
  DIR/NAME.key      the public key (Z85 text, mode 0644): give it to the other side
  DIR/NAME.secret   the secret key (mode 0600, created so): keep it on this host only
Existing files are never replaced.

  --out DIR     where to write them (default: the current directory)
  --name NAME   the file names; for a node, its node name (default: this host's short
                name, which is also corral-execd's default node name)

Setting up a cluster by hand:
  on the scheduler's host:  corral keygen --out /etc/corral --name scheduler
      scheduler.yaml:  curve_secret_key: /etc/corral/scheduler.secret
                       node_keys_dir: /etc/corral/nodes
                       node_endpoints: ["tcp://0.0.0.0:6445"]
  on each node:             corral keygen --out /etc/corral
      copy /etc/corral/HOST.key to the scheduler's /etc/corral/nodes/ (the allow-list,
      read again when it changes) and scheduler.key to the node;
      execd.yaml:      scheduler: tcp://head:6445
                       scheduler_key: /etc/corral/scheduler.key
                       secret_key: /etc/corral/HOST.secret
corral local up does all of this by itself.

exit status: 0 success, 1 failure (e.g. a file exists), 2 usage error.
)USAGE";

int UsageError(const std::string& message, const char* help_hint) {
  std::cerr << "corral: " << message << " (see " << help_hint << ")\n";
  return kExitUsage;
}

int Fail(const corral::Status& status) {
  std::cerr << "corral: " << status.message() << "\n";
  return kExitFailure;
}

bool IsHelp(const std::string& arg) { return arg == "-h" || arg == "--help"; }

// --name VALUE / --name=VALUE for the names in `allowed`; anything else is an error.
corral::Result<std::map<std::string, std::string>> ParseOptions(
    const std::vector<std::string>& args, const std::set<std::string>& allowed) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::string value;
    bool has_value = false;
    if (const size_t eq = name.find('='); name.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (!allowed.contains(name)) {
      return corral::Error(corral::Code::kInvalidArgument,
                           name.rfind("-", 0) == 0 ? "unknown option '" + name + "'"
                                                   : "unexpected argument '" + name + "'");
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        return corral::Error(corral::Code::kInvalidArgument, name + " needs a value");
      }
      value = args[++i];
    }
    if (out.contains(name)) {
      return corral::Error(corral::Code::kInvalidArgument, name + " given twice");
    }
    out[name] = value;
  }
  return out;
}

corral::Result<int> PositiveInt(const std::string& option, const std::string& text) {
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size() && v > 0 && v <= 100000) return static_cast<int>(v);
  } catch (const std::exception&) {
  }
  return corral::Error(corral::Code::kInvalidArgument,
                       option + ": '" + text + "' is not a positive integer");
}

// Seconds as a number ("1", "0.5") or with a unit ("30s", "2m"), in milliseconds.
corral::Result<int64_t> Seconds(const std::string& option, const std::string& text) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && v > 0 && v < 1e9) return static_cast<int64_t>(v * 1000);
  } catch (const std::exception&) {
  }
  corral::Result<int64_t> s = corral::ParseDurationSeconds(text);
  if (s && *s > 0) return *s * 1000;
  return corral::Error(corral::Code::kInvalidArgument,
                       option + ": '" + text + "' is not a positive number of seconds");
}

corral::Result<std::string> DirOption(const std::map<std::string, std::string>& opts) {
  auto it = opts.find("--dir");
  if (it == opts.end())
    return corral::Error(corral::Code::kInvalidArgument, "--dir DIR is required");
  return corral::AbsoluteDir(it->second);
}

int LocalUp(const std::map<std::string, std::string>& opts) {
  corral::LocalUpOptions o;
  corral::Result<std::string> dir = DirOption(opts);
  if (!dir) return UsageError("local up: " + dir.error().message(), "corral local --help");
  o.dir = *dir;
  for (const auto& [name, value] : opts) {
    corral::Status bad;
    if (name == "--nodes" || name == "--cpus") {
      corral::Result<int> n = PositiveInt(name, value);
      if (!n)
        bad = n.error();
      else
        (name == "--nodes" ? o.nodes : o.cpus) = *n;
    } else if (name == "--gpus") {
      corral::Result<int> n = value == "0" ? corral::Result<int>(0) : PositiveInt(name, value);
      if (!n)
        bad = n.error();
      else
        o.gpus = *n;
    } else if (name == "--memory") {
      corral::Result<int64_t> mb = corral::ParseSizeMb(value);
      if (!mb)
        bad = corral::Status(corral::Code::kInvalidArgument, "--memory: " + mb.error().message());
      else if (*mb <= 0)
        bad = corral::Status(corral::Code::kInvalidArgument, "--memory must be positive");
      else
        o.memory = value;
    } else if (name == "--heartbeat" || name == "--node-timeout") {
      corral::Result<int64_t> ms = Seconds(name, value);
      if (!ms)
        bad = ms.error();
      else
        (name == "--heartbeat" ? o.heartbeat_ms : o.node_timeout_ms) = *ms;
    }
    if (!bad.ok()) return UsageError(bad.message(), "corral local --help");
  }
  corral::Result<std::string> bin = corral::SelfBinDir();
  if (!bin) return Fail(bin.error());
  o.bin_dir = *bin;
  if (corral::Status s = corral::LocalUp(o, std::cout); !s.ok()) return Fail(s);
  return 0;
}

int Keygen(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (IsHelp(a)) {
      std::cout << kKeygenUsage;
      return 0;
    }
  }
  corral::Result<std::map<std::string, std::string>> opts = ParseOptions(args, {"--out", "--name"});
  if (!opts) return UsageError("keygen: " + opts.error().message(), "corral keygen --help");
  std::string name;
  if (auto it = opts->find("--name"); it != opts->end()) {
    name = it->second;
  } else {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    name = host;
    name = name.substr(0, name.find('.'));
  }
  if (!corral::ValidKeyName(name)) {
    return UsageError("keygen: '" + name + "' is not a usable name (letters, digits, '.', '_', '-')",
                      "corral keygen --help");
  }
  const std::string dir = opts->contains("--out") ? opts->at("--out") : ".";
  corral::Result<corral::CurveKeyPair> pair = corral::GenerateCurveKeyPair();
  if (!pair) return Fail(pair.error());
  if (corral::Status s = corral::WriteKeyPairFiles(dir, name, *pair); !s.ok()) return Fail(s);
  std::cout << "corral: wrote " << dir << "/" << name << ".key (public) and " << dir << "/" << name
            << ".secret (secret, mode 0600)\n"
            << "public key: " << pair->public_key << "\n";
  return 0;
}

int Local(const std::vector<std::string>& args) {
  if (args.empty())
    return UsageError("local: missing subcommand (up, env, status, down)", "corral local --help");
  const std::string& sub = args[0];
  if (IsHelp(sub) || sub == "help") {
    std::cout << kLocalUsage;
    return 0;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const std::string& a : rest) {
    if (IsHelp(a)) {
      std::cout << kLocalUsage;
      return 0;
    }
  }
  std::set<std::string> allowed = {"--dir"};
  if (sub == "up") {
    allowed.insert({"--nodes", "--cpus", "--memory", "--gpus", "--heartbeat", "--node-timeout"});
  } else if (sub != "env" && sub != "status" && sub != "down") {
    return UsageError("local: unknown subcommand '" + sub + "' (up, env, status, down)",
                      "corral local --help");
  }
  corral::Result<std::map<std::string, std::string>> opts = ParseOptions(rest, allowed);
  if (!opts)
    return UsageError("local " + sub + ": " + opts.error().message(), "corral local --help");
  if (sub == "up") return LocalUp(*opts);

  corral::Result<std::string> dir = DirOption(*opts);
  if (!dir) return UsageError("local " + sub + ": " + dir.error().message(), "corral local --help");
  if (sub == "down") {
    if (corral::Status s = corral::LocalDown(*dir, std::cout); !s.ok()) return Fail(s);
    return 0;
  }
  if (sub == "status") {
    if (corral::Status s = corral::LocalStatus(*dir, std::cout); !s.ok()) return Fail(s);
    return 0;
  }
  corral::Result<std::string> bin = corral::SelfBinDir();
  if (!bin) return Fail(bin.error());
  const char* path = std::getenv("PATH");
  corral::Result<corral::LocalEnvText> env = corral::LocalEnv(*dir, *bin, path ? path : "");
  if (!env) return Fail(env.error());
  if (!env->warning.empty()) std::cerr << "corral: warning: " << env->warning << "\n";
  std::cout << env->lines;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  const std::string command = args[0];
  if (IsHelp(command) || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (command == "local") return Local({args.begin() + 1, args.end()});
  if (command == "keygen") return Keygen({args.begin() + 1, args.end()});
  if (command == "events") return corral::RunEvents({args.begin() + 1, args.end()});
  if (command == "submit-many") return corral::RunSubmitMany({args.begin() + 1, args.end()});
  return UsageError("unknown command '" + command + "'", "corral --help");
}
