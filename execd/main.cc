// corral-execd: command line and configuration, then the daemon's one loop: zmq_poll over
// the DEALER socket to the scheduler and a signalfd (SIGCHLD, SIGTERM, SIGINT), feeding the
// Agent and sending what it returns. All decisions live in the Agent; this file only moves data.
#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/config.h"
#include "common/protocol.h"
#include "common/status.h"
#include "common/units.h"
#include "execd/agent.h"
#include "execd/inventory.h"
#include "execd/launcher.h"

namespace corral {
namespace {

constexpr char kUsage[] = R"(NAME
    corral-execd - the Corral execution daemon: runs jobs on this node

SYNOPSIS
    corral-execd [--config FILE] [--scheduler ENDPOINT] [--node NAME] [--spool DIR]
                 [--cores N] [--memory SIZE]
    corral-execd --help

DESCRIPTION
    corral-execd registers this node with the Corral scheduler, runs the job attempts the
    scheduler sends it and reports how each one ended. It sends a heartbeat listing the
    attempts running here at the interval the scheduler asks for, and resends every exit
    report until the scheduler acknowledges it.

    Each attempt runs in its own session (its process group is killed as a whole), as the
    job's owner when corral-execd runs as root (otherwise as corral-execd's own user), in
    the job's working directory, with stdout and stderr in NAME.oID / NAME.eID (or the
    -o / -e paths given to qsub) and the Grid Engine environment (JOB_ID, NSLOTS, TMPDIR,
    ...). A wall-clock limit (qsub -l h_rt) is enforced with SIGKILL.

OPTIONS
    --config FILE
        Read settings from the YAML file FILE (keys: scheduler, node, spool_dir, cores,
        memory; unknown keys are an error). Options given on the command line override it.

    --scheduler ENDPOINT
        ZeroMQ endpoint of the scheduler, e.g. tcp://head:6444. Required.

    --node NAME
        Name of this node as the scheduler knows it. Default: the host name.

    --spool DIR
        Spool directory. Each attempt gets DIR/jobs/ID.ATTEMPT/ holding the job's script
        and its TMPDIR, removed once the scheduler has recorded the attempt's end. Created
        if missing; leftovers of an earlier run are removed at start. Required.

    --cores N
        Cores to offer. Default: the CPUs this process may run on (its affinity mask).

    --memory SIZE
        Memory to offer, e.g. 64G or 512M. Default: the machine's physical memory.

    --help
        Print this text and exit.

SIGNALS
    SIGTERM, SIGINT
        Kill every running job's process group, wait for them, and exit 0. The scheduler
        requeues those jobs when the node registers again.

EXIT STATUS
    0 after SIGTERM or SIGINT; 1 when the daemon cannot run (spool not writable, socket
    error); 2 for a usage error (unknown option, bad value, missing setting).

EXAMPLE
    corral-execd --scheduler tcp://head:6444 --spool /var/spool/corral
)";

constexpr int kExitUsage = 2;
constexpr int64_t kShutdownGraceMs = 5000;  // SIGKILLed processes normally go at once

void Complain(const std::string& message) {
  std::fprintf(stderr, "corral-execd: %s\n", message.c_str());
}

// Command line over the (optional) config file. Result is the merged config.
Result<ExecdConfig> ParseCommandLine(int argc, char** argv, bool& help) {
  struct Flags {
    std::optional<std::string> config, scheduler, node, spool, cores, memory;
  } flags;
  const std::pair<std::string_view, std::optional<std::string>*> known[] = {
      {"--config", &flags.config}, {"--scheduler", &flags.scheduler}, {"--node", &flags.node},
      {"--spool", &flags.spool},   {"--cores", &flags.cores},         {"--memory", &flags.memory},
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
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

class Daemon {
 public:
  Daemon(const ExecdConfig& config, PosixLauncher& launcher, int signal_fd)
      : config_(config),
        launcher_(launcher),
        signal_fd_(signal_fd),
        socket_(context_, zmq::socket_type::dealer),
        agent_(AgentOptions{.node = config.node, .total = NodeResources(config)}, launcher,
               [this](const std::string& line) { Log(line); }) {}

  void Log(const std::string& line) const {
    const std::string text = "corral-execd[" + config_.node + "]: " + line + "\n";
    std::fwrite(text.data(), 1, text.size(), stderr);
  }

  // Runs until SIGTERM/SIGINT. Returns the process exit code.
  int Run() {
    socket_.set(zmq::sockopt::routing_id, "execd/" + config_.node);  // before connect
    socket_.set(zmq::sockopt::linger, 0);
    // Messages queue while the connection is down (up to the send high-water mark) and
    // go out on reconnect. Every one of them is idempotent for the scheduler, and without
    // queueing the first RegisterNode would be lost to the connect race, costing a retry.
    socket_.connect(config_.scheduler);
    Log("connecting to " + config_.scheduler);
    Send(agent_.Start(clock_.Now()));

    bool stop = false;
    while (!stop) {
      zmq::pollitem_t items[] = {{static_cast<void*>(socket_), 0, ZMQ_POLLIN, 0},
                                 {nullptr, signal_fd_, ZMQ_POLLIN, 0}};
      const int64_t wait_ms = agent_.MsUntilTick(clock_.Now());
      zmq::poll(items, 2, std::chrono::milliseconds(wait_ms));
      bool child_ended = false;
      if (items[1].revents & ZMQ_POLLIN) ReadSignals(child_ended, stop);
      if (child_ended) {
        for (const AttemptEnd& end : launcher_.Reap()) Send(agent_.OnExit(end, clock_.Now()));
      }
      if (items[0].revents & ZMQ_POLLIN) ReceiveAll();
      Send(agent_.Tick(clock_.Now()));
    }
    Shutdown();
    return 0;
  }

 private:
  void ReadSignals(bool& child_ended, bool& stop) {
    signalfd_siginfo info;
    while (read(signal_fd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      if (info.ssi_signo == SIGCHLD) child_ended = true;
      if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
        Log(std::string("received ") + strsignal(static_cast<int>(info.ssi_signo)) + "; stopping");
        stop = true;
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

  // Kill, reap (bounded), clean the spool. No exit reports: see Agent::Shutdown.
  void Shutdown() {
    agent_.Shutdown();
    const int64_t deadline = MonotonicNowMs() + kShutdownGraceMs;
    for (;;) {
      for (const AttemptEnd& end : launcher_.Reap()) {
        Log("job " + AttemptName(end.key) + " ended (shutdown)");
        if (Status s = launcher_.Release(end.key); !s.ok()) Log(s.message());
      }
      const int64_t left = deadline - MonotonicNowMs();
      if (launcher_.RunningCount() == 0 || left <= 0) break;
      zmq::pollitem_t item{nullptr, signal_fd_, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(left));
      signalfd_siginfo info;
      while (read(signal_fd_, &info, sizeof(info)) > 0) {
      }
    }
    if (launcher_.RunningCount() > 0) {
      Log(std::to_string(launcher_.RunningCount()) + " job(s) did not end after SIGKILL");
    }
    Log("exiting");
  }

  const ExecdConfig& config_;
  PosixLauncher& launcher_;
  int signal_fd_;
  SystemClock clock_;
  zmq::context_t context_;
  zmq::socket_t socket_;
  Agent agent_;
  bool send_ok_ = true;
};

int RunExecd(const ExecdConfig& config) {
  EnsureStandardFds();
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
  Result<std::unique_ptr<PosixLauncher>> launcher =
      PosixLauncher::Create({config.spool_dir, JobHost{config.node, LocalHostName()}});
  if (!launcher) {
    Complain(launcher.error().message());
    return 1;
  }
  try {
    Daemon daemon(config, **launcher, signal_fd);
    if (Result<int> removed = (*launcher)->RemoveLeftovers(); !removed) {
      daemon.Log(removed.error().message());
    } else if (*removed > 0) {
      daemon.Log("removed " + std::to_string(*removed) + " attempt dir(s) left by an earlier run");
    }
    return daemon.Run();
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
