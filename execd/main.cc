// corral-execd: command line and configuration, recovery of the attempts an earlier execd
// left running, then the daemon's one loop: zmq_poll over the DEALER socket to the scheduler,
// a signalfd (SIGCHLD, SIGTERM, SIGINT) and the pidfds of re-attached shepherds, feeding the
// Agent and sending what it returns. All decisions live in the Agent; this file only moves data.
#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/config.h"
#include "common/curve.h"
#include "common/protocol.h"
#include "common/status.h"
#include "common/units.h"
#include "execd/agent.h"
#include "execd/gpu_fence.h"
#include "execd/inventory.h"
#include "execd/launcher.h"
#include "execd/spawner.h"

namespace corral {
namespace {

constexpr char kUsage[] = R"(NAME
    corral-execd - the Corral execution daemon: runs jobs on this node

SYNOPSIS
    corral-execd [--config FILE] [--scheduler ENDPOINT] [--node NAME] [--spool DIR]
                 [--cores N] [--memory SIZE] [--gpus LIST] [--allow-root-jobs]
                 [--scheduler-key FILE --secret-key FILE]
    corral-execd --help

DESCRIPTION
    corral-execd registers this node with the Corral scheduler, runs the job attempts the
    scheduler sends it and reports how each one ended. It sends a heartbeat listing the
    attempts running here at the interval the scheduler asks for, and resends every exit
    report until the scheduler acknowledges it.

    Each attempt runs under a shepherd of its own: a small process in a new
    session that starts the job in its own process group (killed as a whole), as the
    job's owner (see JOB OWNERS), in the job's working directory, with stdout and stderr
    in NAME.oID / NAME.eID (or the -o / -e paths given to qsub) and the Grid Engine
    environment (JOB_ID, NSLOTS, TMPDIR, ...). The shepherd enforces a wall-clock limit (qsub -l h_rt) with SIGTERM to the
    job's process group, then SIGKILL 5 s later, and records how the job ended in the
    spool.

    Shepherds are forked by corral-spawner, a small, statically linked, single-threaded
    program that corral-execd starts once and which must be installed next to it (one
    fork of a small process per job is much cheaper than one of the whole daemon). It
    reaps them and reports their ends. If it dies, corral-execd logs it, watches the
    running shepherds itself and starts another.

    Shepherds outlive corral-execd: it can be stopped, upgraded or killed (even with
    SIGKILL) without ending any job. At start it re-attaches to the attempts still
    running, reports those that ended while it was away, and reports as failed ("lost")
    those whose shepherd died without recording an end.

CPU AND GPU ALLOCATION
    The scheduler gives each job core indices 0..N-1 of the node (N = --cores) and GPU
    ids from those the node offers (--gpus). corral-execd reads its own CPU affinity
    list once at start (sched_getaffinity, ascending) and, before exec, binds the job
    with sched_setaffinity to exactly the CPUs its core indices map onto: index i runs
    on the i-th CPU of that list or, when the node offers more cores than it has CPUs
    (C of them: an oversubscribed test cluster), on CPU number i mod C of it. The job
    and everything it starts inherit the binding, as Cpus_allowed_list in
    /proc/self/status shows. It is a binding, not a cgroup: a job may change its own
    mask. A job from a scheduler that sends no core indices runs unbound. An order
    naming a core index or GPU this node does not offer, or a binding the kernel
    refuses, fails the job at start with a message saying so.

    The job's environment says what it got (lists comma-separated, e.g. 0,2):
        OMP_NUM_THREADS        number of allocated cores (else of requested ones)
        CORRAL_CORES           the allocated core indices
        CORRAL_CPUS            the CPU ids it is bound to (empty when unbound)
        CUDA_VISIBLE_DEVICES   its GPU ids; empty when it has none, so that CUDA
        CORRAL_GPUS            shows it no GPU
        CUDA_DEVICE_ORDER      PCI_BUS_ID, so that CUDA numbers GPUs as nvidia-smi does
    These replace any value of the same name from the submit environment (qsub -V/-v).
    Where the execd runs as root, finds /dev/nvidiaN device nodes and a cgroup v1
    devices controller, each job also runs in a devices cgroup that denies it the
    device nodes of the GPUs it was not given (logged at start: "GPU fencing: ...").
    Otherwise (cgroup v2 included) a job that ignores CUDA_VISIBLE_DEVICES can open
    any device node it has permission for.

MEMORY LIMITS
    A job's memory request (qsub -l h_vmem/mem_free/...=SIZE per slot, times its slots)
    is its limit on the node; a job without one has none. How it is enforced is chosen at start and logged
    ("memory limits: ..."): as root, a memory cgroup per attempt (cgroup v2, else the
    v1 memory controller) under <this execd's own cgroup>/corral/NODE, which the job
    joins before exec, so that everything it starts counts; the kernel OOM-kills at the
    limit and the shepherd then kills the rest of the job. Otherwise the shepherd sums
    the resident memory of the job's process group every 150 ms and kills the group
    when it is over (a process that leaves the group escapes this). Either way the
    job's exit records the reason "memory exceeded".

JOB OWNERS
    As root, corral-execd runs each job as its owner: the uid the scheduler identified
    when the job was submitted, with the primary group it was submitted with and
    the owner's supplementary groups from this node's group database; HOME, USER,
    LOGNAME and SHELL come from this node's passwd entry. A job whose owner has no passwd
    entry here fails at start. The working directory and the output files are opened
    after the switch, with the owner's rights only. Jobs of root (uid 0) are refused
    unless allow_root_jobs is set.
    Not as root, corral-execd can run jobs only as its own user: it runs that user's jobs
    and refuses every other (a one-user test cluster).
    A refused job fails at once with the reason ("refused: ..."), which qstat -j ID
    --json shows. The spool is the execd's: a job can read its own script, TMPDIR and
    result files there, nothing else.

OPTIONS
    --config FILE
        Read settings from the YAML file FILE (keys: scheduler, node, spool_dir, cores,
        memory, gpus, kill_grace, features, consumables, allow_root_jobs, scheduler_key,
        secret_key; unknown keys are an error). Options given on the command line
        override it.

    --scheduler ENDPOINT
        ZeroMQ endpoint of the scheduler, e.g. tcp://head:6444. Required.

    --node NAME
        Name of this node as the scheduler knows it. Default: the host name.

    --spool DIR
        Spool directory. Each attempt gets DIR/jobs/ID.ATTEMPT/ holding the job's script,
        its TMPDIR and its shepherd's records (shepherd.pid, job.pgid, exit), removed once
        the scheduler has recorded the attempt's end. Created (0711) if missing; an
        existing one must belong to corral-execd's user and not be writable by group or
        others. What an earlier run left there is recovered at start (see DESCRIPTION),
        never deleted. Required.

    --cores N
        Cores to offer. Default: the number of CPUs this process may run on (its
        affinity mask). More than that oversubscribes them (see CPU AND GPU ALLOCATION).

    --memory SIZE
        Memory to offer, e.g. 64G or 512M. Default: the machine's physical memory.

    --kill-grace DURATION
        When a job passes its wall-clock limit (qsub -l h_rt=...), its process group gets
        SIGTERM, then SIGKILL this long after (seconds, or 30s, 1m). Default 5 s.
        Config key: kill_grace.

    --gpus LIST
        GPUs to offer: a comma-separated list of GPU ids as nvidia-smi numbers them
        (--gpus 0,2 offers GPUs 0 and 2), or a count (--gpus 4 offers 0,1,2,3). A single
        number is always a count: to offer GPU 3 alone, write 'gpus: [3]' in the
        config file. --gpus 0 or --gpus '' offers none. In the config file: gpus: [0, 1].
        Default: the GPUs that 'nvidia-smi -L' lists, when an nvidia-smi is on PATH (it is
        given 10 s, then killed); none when there is none or it fails. What was found,
        and from where, is logged at start.

    --features LIST
        Node features jobs can ask for with qsub -l arch=NAME (or -l NAME), e.g.
        --features avx512,bigmem. Config key: features: [avx512, bigmem].

    --consumables LIST
        Node-local consumables jobs can ask for with qsub -l NAME=N, e.g.
        --consumables scratch_gb=800. The scheduler never gives more than N to the jobs
        running here at once. Config key: consumables: {scratch_gb: 800}.

    --allow-root-jobs
        Run jobs submitted by root (uid 0), as root. Without it they are refused (see
        JOB OWNERS). Config key: allow_root_jobs: true.

    --scheduler-key FILE
        The scheduler's CURVE public key (a file written by corral keygen). With
        --secret-key, the connection to the scheduler is encrypted and both ends are
        authenticated; see AUTHENTICATION. Config key: scheduler_key.

    --secret-key FILE
        This node's CURVE secret key file (NAME.secret from corral keygen). It must be
        readable by its owner only (chmod 600): a key others can read is refused.
        Config key: secret_key.

    --help
        Print this text and exit.

AUTHENTICATION
    With --scheduler-key and --secret-key (both or neither), corral-execd speaks CURVE
    to the scheduler, which must list this node's public key (NAME.key, next to the
    secret) in its node_keys_dir or node_keys under this node's name; the scheduler
    takes messages for node NAME only from a connection holding NAME's key. The
    endpoint is then one of the scheduler's node_endpoints. Whether the handshake
    succeeded, or why the scheduler refused it, is logged. Without keys the connection
    is in clear and the scheduler can tell nodes apart only by what they claim.
    docs/security.md has the whole model.

SIGNALS
    SIGTERM, SIGINT
        Exit 0 at once, leaving every job running under its shepherd; the next
        corral-execd with the same spool re-attaches to them and reports their ends.
        Jobs are not killed: to stop them, qdel them. (To drain a node before taking it
        down for good, stop sending it jobs and wait for them to finish.)

EXIT STATUS
    0 after SIGTERM or SIGINT; 1 when the daemon cannot run (spool not writable, socket
    error); 2 for a usage error (unknown option, bad value, missing setting).

EXAMPLE
    corral-execd --scheduler tcp://head:6444 --spool /var/spool/corral
    corral-execd --scheduler tcp://head:6444 --spool /var/spool/corral --gpus 0,1
)";

constexpr int kExitUsage = 2;
constexpr char kMonitorEndpoint[] = "inproc://execd-monitor";
// Without pidfds (Linux < 5.3), how often re-attached shepherds are checked.
constexpr int64_t kRecoveredPollMs = 200;

void Complain(const std::string& message) {
  std::fprintf(stderr, "corral-execd: %s\n", message.c_str());
}

std::vector<std::string_view> SplitComma(std::string_view text) {
  std::vector<std::string_view> out;
  for (size_t at = 0; at <= text.size();) {
    size_t comma = text.find(',', at);
    if (comma == std::string_view::npos) comma = text.size();
    out.push_back(text.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

// Command line over the (optional) config file. Result is the merged config.
Result<ExecdConfig> ParseCommandLine(int argc, char** argv, bool& help) {
  struct Flags {
    std::optional<std::string> config, scheduler, node, spool, cores, memory, gpus, kill_grace,
        features, consumables, scheduler_key, secret_key;
    bool allow_root_jobs = false;
  } flags;
  const std::pair<std::string_view, std::optional<std::string>*> known[] = {
      {"--config", &flags.config}, {"--scheduler", &flags.scheduler}, {"--node", &flags.node},
      {"--spool", &flags.spool},   {"--cores", &flags.cores},         {"--memory", &flags.memory},
      {"--gpus", &flags.gpus},     {"--kill-grace", &flags.kill_grace},
      {"--features", &flags.features}, {"--consumables", &flags.consumables},
      {"--scheduler-key", &flags.scheduler_key}, {"--secret-key", &flags.secret_key},
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--allow-root-jobs") {  // a switch: takes no value
      flags.allow_root_jobs = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      help = true;
      return ExecdConfig{};
    }
    std::string_view name = arg;
    std::optional<std::string> value;
    if (const size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = std::string(arg.substr(eq + 1));
    }
    std::optional<std::string>* slot = nullptr;
    for (const auto& [flag, target] : known) {
      if (name == flag) slot = target;
    }
    if (slot == nullptr) {
      return Error(Code::kInvalidArgument,
                   (arg.starts_with("-") ? "unknown option '" : "unexpected argument '") +
                       std::string(arg) + "' (see corral-execd --help)");
    }
    if (!value) {
      if (i + 1 >= argc) {
        return Error(Code::kInvalidArgument, "option " + std::string(name) + " needs a value");
      }
      value = argv[++i];
    }
    *slot = *value;
  }

  ExecdConfig config;
  if (flags.config) {
    Result<ExecdConfig> loaded = LoadExecdConfig(*flags.config);
    if (!loaded) return std::unexpected(loaded.error());
    config = *loaded;
  }
  if (flags.scheduler) config.scheduler = *flags.scheduler;
  if (flags.node) config.node = *flags.node;
  if (flags.spool) config.spool_dir = *flags.spool;
  if (flags.cores) {
    int n = 0;
    const std::string& text = *flags.cores;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || p != text.data() + text.size() || n <= 0) {
      return Error(Code::kInvalidArgument, "--cores: '" + text + "' is not a positive integer");
    }
    config.cores = n;
  }
  if (flags.memory) {
    Result<int64_t> mb = ParseSizeMb(*flags.memory);
    if (!mb) return Error(Code::kInvalidArgument, "--memory: " + mb.error().message());
    if (*mb <= 0) return Error(Code::kInvalidArgument, "--memory: must be more than 0");
    config.mem_mb = *mb;
  }
  if (flags.gpus) {
    Result<std::vector<int>> ids = ParseGpuList(*flags.gpus);
    if (!ids) return Error(Code::kInvalidArgument, "--gpus: " + ids.error().message());
    config.gpus = *ids;
  }
  if (flags.allow_root_jobs) config.allow_root_jobs = true;
  if (flags.kill_grace) {
    Result<int64_t> ms = ParseDurationMs(*flags.kill_grace);
    if (!ms || *ms <= 0) {
      return Error(Code::kInvalidArgument, "--kill-grace: '" + *flags.kill_grace +
                                               "' is not a positive duration (5, 0.5, 30s, 1m)");
    }
    config.kill_grace_ms = *ms;
  }
  if (flags.features) {
    config.features.clear();
    for (std::string_view f : SplitComma(*flags.features)) {
      if (f.empty()) continue;
      if (!ValidResourceName(std::string(f))) {
        return Error(Code::kInvalidArgument, "--features: '" + std::string(f) +
                                                 "' is not a valid feature name");
      }
      config.features.emplace_back(f);
    }
  }
  if (flags.consumables) {
    config.consumables.clear();
    for (std::string_view item : SplitComma(*flags.consumables)) {
      if (item.empty()) continue;
      const size_t eq = item.find('=');
      const std::string name(item.substr(0, eq));
      int64_t n = -1;
      if (eq != std::string_view::npos) {
        auto [p, ec] = std::from_chars(item.data() + eq + 1, item.data() + item.size(), n);
        if (ec != std::errc() || p != item.data() + item.size()) n = -1;
      }
      if (!ValidResourceName(name) || n < 0) {
        return Error(Code::kInvalidArgument, "--consumables: '" + std::string(item) +
                                                 "' is not NAME=COUNT (e.g. scratch_gb=800)");
      }
      config.consumables[name] = n;
    }
  }
  if (flags.scheduler_key) config.scheduler_key = *flags.scheduler_key;
  if (flags.secret_key) config.secret_key = *flags.secret_key;
  if (config.scheduler_key.empty() != config.secret_key.empty()) {
    return Error(Code::kInvalidArgument,
                 "CURVE needs both the scheduler's public key and this node's secret key "
                 "(--scheduler-key and --secret-key, or 'scheduler_key:' and 'secret_key:')");
  }
  if (config.scheduler.empty()) {
    return Error(Code::kInvalidArgument, "no scheduler endpoint (--scheduler or 'scheduler:')");
  }
  if (config.spool_dir.empty()) {
    return Error(Code::kInvalidArgument, "no spool directory (--spool or 'spool_dir:')");
  }
  if (config.node.empty()) config.node = LocalHostName();
  return config;
}

// Fork's children get fds 0-2 as their stdin/stdout/stderr targets; if the daemon was
// started with one closed, a pipe or socket could land there and be clobbered by dup2.
void EnsureStandardFds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) < 0) open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
  }
}

void LogLine(const std::string& node, const std::string& line) {
  const std::string text = "corral-execd[" + node + "]: " + line + "\n";
  std::fwrite(text.data(), 1, text.size(), stderr);
}

// This node's CURVE identity and the scheduler's public key (Z85).
struct NodeCurve {
  std::string scheduler_public;
  CurveKeyPair own;
};

class Daemon {
 public:
  Daemon(const ExecdConfig& config, const NodeInventory& inventory, PosixLauncher& launcher,
         int signal_fd, std::optional<NodeCurve> curve)
      : config_(config),
        launcher_(launcher),
        signal_fd_(signal_fd),
        curve_(std::move(curve)),
        socket_(context_, zmq::socket_type::dealer),
        monitor_(context_, zmq::socket_type::pair),
        agent_(
            AgentOptions{.node = config.node,
                         .total = inventory.total,
                         .gpu_ids = inventory.gpu_ids,
                         .features = inventory.features,
                         .read_load = ReadLoadAverage},
            launcher, [this](const std::string& line) { Log(line); }) {}

  void Log(const std::string& line) const { LogLine(config_.node, line); }

  // Runs until SIGTERM/SIGINT, starting from what Recover found. Returns the exit code.
  int Run(const Recovery& recovered) {
    // With CURVE, a random suffix nobody else learns (it travels inside the encrypted
    // handshake): another node's connection cannot take this routing id over, and with
    // it the orders meant for this node (docs/security.md).
    std::string routing_id = "execd/" + config_.node;
    if (curve_) {
      std::random_device random;
      char suffix[33];
      std::snprintf(suffix, sizeof suffix, "%08x%08x%08x%08x", random(), random(), random(),
                    random());
      routing_id += "/" + std::string(suffix);
    }
    socket_.set(zmq::sockopt::routing_id, routing_id);  // before connect
    socket_.set(zmq::sockopt::linger, 0);
    if (curve_) {
      socket_.set(zmq::sockopt::curve_serverkey, curve_->scheduler_public);
      socket_.set(zmq::sockopt::curve_publickey, curve_->own.public_key);
      socket_.set(zmq::sockopt::curve_secretkey, curve_->own.secret_key);
    }
    // Handshake outcomes (a refused key above all) reach the log through a monitor.
    if (zmq_socket_monitor(static_cast<void*>(socket_), kMonitorEndpoint,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
      monitor_.set(zmq::sockopt::linger, 0);
      monitor_.connect(kMonitorEndpoint);
    }
    // Messages queue while the connection is down (up to the send high-water mark) and
    // go out on reconnect. Every one of them is idempotent for the scheduler, and without
    // queueing the first RegisterNode would be lost to the connect race, costing a retry.
    socket_.connect(config_.scheduler);
    Log("connecting to " + config_.scheduler);
    Send(agent_.Start(clock_.Now(), recovered));

    bool stop = false;
    while (!stop) {
      std::vector<zmq::pollitem_t> items = {{static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0},
                                            {nullptr, signal_fd_, ZMQ_POLLIN, 0},
                                            {static_cast<void*>(monitor_), 0, ZMQ_POLLIN, 0}};
      // Re-attached shepherds are not our children (no SIGCHLD): their pidfds say when
      // they end.
      for (int fd : launcher_.WatchFds()) items.push_back({nullptr, fd, ZMQ_POLLIN, 0});
      int64_t wait_ms = agent_.MsUntilTick(clock_.Now());
      // An end known already (an exit that came with a Launch's answer) has no descriptor
      // to wake us: reap at once. Without this, such an exit waited for the next exit.
      const bool reap_due = launcher_.ReapDue();
      const bool poll_launcher = reap_due || launcher_.NeedsPolling();
      if (reap_due) wait_ms = 0;
      if (poll_launcher) wait_ms = std::min(wait_ms, kRecoveredPollMs);
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(wait_ms));
      bool reap = poll_launcher;
      if (items[1].revents & ZMQ_POLLIN) ReadSignals(reap, stop);
      if (items[2].revents & ZMQ_POLLIN) ReadMonitor();
      for (size_t i = 3; i < items.size(); ++i) reap = reap || (items[i].revents & ZMQ_POLLIN);
      if (reap) {
        for (const AttemptEnd& end : launcher_.Reap()) Send(agent_.OnExit(end, clock_.Now()));
      }
      if (items[0].revents & ZMQ_POLLIN) ReceiveAll();
      Send(agent_.Tick(clock_.Now()));
    }
    // Jobs stay with their shepherds; unacked exits stay in the spool. Both are picked up
    // by the next execd's Recover.
    Log("leaving " + std::to_string(launcher_.RunningCount()) +
        " job(s) running; they will be re-attached at next start");
    Log("exiting");
    return 0;
  }

 private:
  void ReadSignals(bool& child_ended, bool& stop) {
    signalfd_siginfo info;
    while (read(signal_fd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      if (info.ssi_signo == SIGCHLD) child_ended = true;
      if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
        Log(std::string("received ") + strsignal(static_cast<int>(info.ssi_signo)) +
            "; stopping (jobs keep running)");
        stop = true;
      }
    }
  }

  // Logs a handshake outcome when it differs from the last one: a refused execd retries
  // every few hundred milliseconds, and one line says it all.
  void ReadMonitor() {
    for (;;) {
      zmq::message_t head;
      zmq::message_t endpoint;
      if (!monitor_.recv(head, zmq::recv_flags::dontwait)) return;
      if (head.more() && !monitor_.recv(endpoint, zmq::recv_flags::dontwait)) return;
      if (head.size() < 6) continue;
      uint16_t event = 0;
      uint32_t value = 0;
      std::memcpy(&event, head.data(), sizeof event);
      std::memcpy(&value, static_cast<const char*>(head.data()) + 2, sizeof value);
      std::string state;
      if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        state = curve_ ? "CURVE handshake with the scheduler succeeded: its key is verified and "
                         "the connection is encrypted"
                       : "connected to the scheduler in clear (no CURVE keys: unauthenticated)";
      } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
        state = "the scheduler refused this node's CURVE key (ZAP status " + std::to_string(value) +
                (curve_ ? "): its public key " + curve_->own.public_key +
                              " must be in the scheduler's node_keys_dir as " + config_.node +
                              ".key, or in its node_keys under " + config_.node
                        : ")");
      } else {
        state = "handshake with the scheduler at " + endpoint.to_string() + " failed (" +
                (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                     ? "protocol error " + std::to_string(value)
                     : std::string("no detail")) +
                (curve_ ? "): is scheduler_key the scheduler's public key, and the endpoint one "
                          "of its node_endpoints?"
                        : "): does the scheduler expect CURVE there? (scheduler_key, secret_key)");
      }
      if (state != last_handshake_) {
        Log(state);
        last_handshake_ = state;
      }
    }
  }

  void ReceiveAll() {
    for (;;) {
      zmq::message_t frame;
      if (!socket_.recv(frame, zmq::recv_flags::dontwait)) return;
      // The payload is the last frame; tolerate an empty delimiter frame before it.
      while (frame.more()) {
        if (!socket_.recv(frame, zmq::recv_flags::dontwait)) return;
      }
      Result<Envelope> envelope = Decode(frame.to_string_view());
      if (!envelope) {
        Log("ignoring malformed message from the scheduler: " + envelope.error().ToString());
        continue;
      }
      Send(agent_.OnMessage(envelope->message, clock_.Now()));
    }
  }

  void Send(const std::vector<Message>& messages) {
    for (const Message& message : messages) {
      const std::string bytes = Encode(message);
      const bool sent = socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait).has_value();
      if (sent != send_ok_) {
        // Only when the send queue is full (the scheduler is away or not reading): the
        // timers re-send what was dropped.
        Log(sent ? "sending to the scheduler again"
                 : "send queue to the scheduler is full; dropping messages until it drains");
        send_ok_ = sent;
      }
    }
  }

  const ExecdConfig& config_;
  PosixLauncher& launcher_;
  int signal_fd_;
  std::optional<NodeCurve> curve_;
  SystemClock clock_;
  zmq::context_t context_;
  zmq::socket_t socket_;
  zmq::socket_t monitor_;  // PAIR end of socket_'s monitor: handshake events
  std::string last_handshake_;
  Agent agent_;
  bool send_ok_ = true;
};

// The CURVE keys named by the config, or nullopt when it names none (logged loudly).
// Errors (a missing, malformed or world-readable key) stop the daemon before it starts.
Result<std::optional<NodeCurve>> LoadCurve(const ExecdConfig& config) {
  if (config.secret_key.empty()) {
    LogLine(config.node,
            "WARNING: no CURVE keys (scheduler_key, secret_key): the connection to the scheduler "
            "is in clear and this node is not authenticated; see docs/security.md");
    return std::optional<NodeCurve>();
  }
  if (!CurveAvailable()) {
    return Error(Code::kFailedPrecondition, "secret_key is set but this libzmq lacks CURVE");
  }
  Result<CurveKeyPair> own = LoadSecretKeyFile(config.secret_key);
  if (!own) return std::unexpected(own.error());
  Result<std::string> scheduler = LoadPublicKeyFile(config.scheduler_key);
  if (!scheduler) return std::unexpected(scheduler.error());
  LogLine(config.node, "CURVE: this node's public key is " + own->public_key +
                           "; the scheduler's is " + *scheduler + " (" + config.scheduler_key + ")");
  return std::optional<NodeCurve>(NodeCurve{*scheduler, *own});
}

int RunExecd(const ExecdConfig& config) {
  EnsureStandardFds();
  Result<std::optional<NodeCurve>> curve = LoadCurve(config);
  if (!curve) {
    Complain(curve.error().message());
    return kExitUsage;
  }
  // The spawner that forks the shepherds is the small static program beside this one:
  // checked before anything is detected or created.
  Result<std::string> spawner = SpawnerBesideSelf();
  if (!spawner) {
    Complain(spawner.error().message());
    return 1;
  }
  // Before signals are blocked and ZeroMQ starts threads: this may run nvidia-smi.
  const char* path = std::getenv("PATH");
  const NodeInventory inventory = DetectInventory(config, path != nullptr ? path : "/usr/bin:/bin");
  for (const std::string& note : inventory.notes) LogLine(config.node, note);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  const int signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd < 0) {
    Complain(std::string("cannot create a signalfd: ") + std::strerror(errno));
    return 1;
  }
  // Before ZeroMQ starts threads, like the inventory: it creates this node's cgroup parent.
  Result<MemoryEnforcement> memory = DetectMemoryEnforcement("auto", config.node);
  if (!memory) {
    Complain(memory.error().message());
    return 1;
  }
  LogLine(config.node, "memory limits: " + memory->description);
  GpuFencing gpus = DetectGpuFencing(config.node);
  LogLine(config.node, "GPU fencing: " + gpus.description);
  LogLine(config.node, geteuid() != 0
                           ? "jobs run as this execd's user (uid " + std::to_string(geteuid()) +
                                 "); jobs of other users are refused"
                           : std::string("jobs run as their owners; jobs of root are ") +
                                 (config.allow_root_jobs ? "allowed" : "refused"));
  Result<std::unique_ptr<PosixLauncher>> launcher = PosixLauncher::Create(
      {.spool_dir = config.spool_dir,
       .host = JobHost{config.node, LocalHostName()},
       .kill_grace_ms = config.kill_grace_ms,
       .cpus = inventory.cpus,
       .memory = *memory,
       .gpus = std::move(gpus),
       .allow_root_jobs = config.allow_root_jobs,
       .spawner_program = *spawner,
       .log = [node = config.node](const std::string& line) { LogLine(node, line); }});
  if (!launcher) {
    Complain(launcher.error().message());
    return 1;
  }
  // Before the first RegisterNode: the registration must list what still runs here.
  Result<Recovery> recovered = (*launcher)->Recover();
  if (!recovered) {
    Complain(recovered.error().message());
    return 1;
  }
  try {
    Daemon daemon(config, inventory, **launcher, signal_fd, std::move(*curve));
    if (!recovered->running.empty() || !recovered->ended.empty()) {
      std::string running;
      for (const AttemptKey& key : recovered->running) running += " " + AttemptName(key);
      daemon.Log("recovered from the spool: " + std::to_string(recovered->running.size()) +
                 " job(s) still running" + (running.empty() ? "" : " (" + running.substr(1) + ")") +
                 ", " + std::to_string(recovered->ended.size()) + " ended while away");
    }
    return daemon.Run(*recovered);
  } catch (const zmq::error_t& e) {
    // cppzmq throws; nothing else here does. A bad endpoint ends up here too.
    Complain(std::string("ZeroMQ: ") + e.what() + " (scheduler endpoint '" + config.scheduler +
             "')");
    return 1;
  }
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) {
  bool help = false;
  corral::Result<corral::ExecdConfig> config = corral::ParseCommandLine(argc, argv, help);
  if (help) {
    std::fputs(corral::kUsage, stdout);
    return 0;
  }
  if (!config) {
    corral::Complain(config.error().message());
    return corral::kExitUsage;
  }
  return corral::RunExecd(*config);
}
