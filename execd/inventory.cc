// Cores, memory, GPUs and host name of this node, read from the kernel and nvidia-smi.
// Detection never fails: a missing answer falls back (the online CPUs, 0 MiB, no GPUs)
// and the admin's config can override it. The pure parsers and the core-to-CPU mapping
// sit here too, so that they are tested without a GPU or a particular machine.
#include "execd/inventory.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "common/clock.h"

extern char** environ;

namespace corral {
namespace {

// Splits at '\n', without the separators; a last line without '\n' counts.
std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// A whole non-negative decimal number, or nullopt.
std::optional<int> WholeNumber(std::string_view text) {
  int n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || n < 0) {
    return std::nullopt;
  }
  return n;
}

// More than this many GPUs (or a count above it) is a typo, not a machine.
constexpr int kMaxGpus = 1 << 16;
// nvidia-smi output beyond this is not a GPU list.
constexpr size_t kMaxOutput = 1 << 20;

struct ProgramRun {
  bool timed_out = false;
  int status = 0;      // waitpid status, when not timed out
  std::string output;  // stdout and stderr, interleaved, at most kMaxOutput bytes
};

// Runs `path` with `argv` (stdin /dev/null, stdout and stderr into one pipe) and waits at
// most `timeout_ms` for it to finish; SIGKILLed when it has not. posix_spawn rather than
// fork: the caller may have threads. Unavailable when it cannot be started or reaped.
Result<ProgramRun> RunProgram(const std::string& path, std::vector<std::string> argv,
                              int64_t timeout_ms) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    return Error(Code::kUnavailable, std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, out[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // The execd blocks signals for its signalfd; the program must not inherit that.
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, path.c_str(), &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(out[1]);
  if (spawned != 0) {
    close(out[0]);
    return Error(Code::kUnavailable, "cannot run " + path + ": " + std::strerror(spawned));
  }

  // Only our end: the program's stdout stays blocking.
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  ProgramRun run;
  const int64_t deadline = MonotonicNowMs() + timeout_ms;
  char buf[4096];
  for (;;) {
    const int64_t left = deadline - MonotonicNowMs();
    if (left <= 0) {
      run.timed_out = true;
      break;
    }
    pollfd item{out[0], POLLIN, 0};
    const int ready = poll(&item, 1, static_cast<int>(std::min<int64_t>(left, INT_MAX)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;  // the deadline is checked above
    const ssize_t n = read(out[0], buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      break;
    }
    if (run.output.size() < kMaxOutput) run.output.append(buf, static_cast<size_t>(n));
  }
  close(out[0]);

  // Closing its output does not mean it has exited: wait on a pidfd up to the deadline.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  for (;;) {
    const pid_t got = waitpid(pid, &run.status, WNOHANG);
    if (got == pid) break;
    if (got < 0 && errno != EINTR) {
      if (pidfd >= 0) close(pidfd);
      return Error(Code::kUnavailable, "cannot wait for " + path + ": " + std::strerror(errno));
    }
    const int64_t left = deadline - MonotonicNowMs();
    if (run.timed_out || left <= 0) {
      run.timed_out = true;
      kill(pid, SIGKILL);
      while (waitpid(pid, &run.status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    // Without pidfds (Linux < 5.3) a 10 ms check: this runs once, at start.
    pollfd item{pidfd, POLLIN, 0};
    poll(pidfd >= 0 ? &item : nullptr, pidfd >= 0 ? 1 : 0,
         static_cast<int>(pidfd >= 0 ? std::min<int64_t>(left, INT_MAX)
                                     : std::min<int64_t>(left, 10)));
  }
  if (pidfd >= 0) close(pidfd);
  return run;
}

// The first line of a program's output, for an error message.
std::string FirstLine(std::string_view output) {
  std::vector<std::string_view> lines = Lines(output);
  for (std::string_view line : lines) {
    if (!line.empty()) return std::string(line.substr(0, 200));
  }
  return "no output";
}

}  // namespace

std::vector<int> AllowedCpus() {
  // A fixed cpu_set_t holds 1024 CPUs; grow the set until the kernel's mask fits.
  for (int size = CPU_SETSIZE; size <= (1 << 16); size *= 2) {
    cpu_set_t* set = CPU_ALLOC(size);
    if (set == nullptr) break;
    const size_t bytes = CPU_ALLOC_SIZE(size);
    CPU_ZERO_S(bytes, set);
    if (sched_getaffinity(0, bytes, set) == 0) {
      std::vector<int> cpus;
      for (int cpu = 0; cpu < size; ++cpu) {
        if (CPU_ISSET_S(cpu, bytes, set)) cpus.push_back(cpu);
      }
      CPU_FREE(set);
      if (!cpus.empty()) return cpus;
      break;
    }
    const int err = errno;
    CPU_FREE(set);
    if (err != EINVAL) break;
  }
  // The online count is then a better guess than nothing.
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  std::vector<int> cpus;
  for (int cpu = 0; cpu < std::max(1L, online); ++cpu) cpus.push_back(cpu);
  return cpus;
}

int DetectCores() { return static_cast<int>(AllowedCpus().size()); }

Result<std::vector<int>> MapCoresToCpus(const std::vector<int>& cores,
                                        const std::vector<int>& cpus) {
  if (cpus.empty()) return Error(Code::kInvalidArgument, "no CPUs to bind cores to");
  std::set<int> indices;
  std::set<int> mapped;
  for (int core : cores) {
    if (core < 0) {
      return Error(Code::kInvalidArgument, "invalid core index " + std::to_string(core));
    }
    if (!indices.insert(core).second) {
      return Error(Code::kInvalidArgument, "core index " + std::to_string(core) + " given twice");
    }
    mapped.insert(cpus[static_cast<size_t>(core) % cpus.size()]);
  }
  return std::vector<int>(mapped.begin(), mapped.end());
}

std::string JoinIds(const std::vector<int>& ids) {
  std::string out;
  for (int id : ids) {
    if (!out.empty()) out += ',';
    out += std::to_string(id);
  }
  return out;
}

Result<std::vector<int>> ParseGpuList(std::string_view text) {
  if (text.find(',') == std::string_view::npos) {
    const std::optional<int> count = WholeNumber(text);
    if (!text.empty() && (!count || *count > kMaxGpus)) {
      return Error(Code::kInvalidArgument,
                   "'" + std::string(text) + "' is neither a GPU count nor a list like 0,1");
    }
    std::vector<int> ids;
    for (int id = 0; id < count.value_or(0); ++id) ids.push_back(id);
    return ids;
  }
  std::set<int> ids;
  size_t pos = 0;
  for (;;) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string_view part = text.substr(pos, comma - pos);
    const std::optional<int> id = WholeNumber(part);
    if (!id || *id > kMaxGpus) {
      return Error(Code::kInvalidArgument,
                   "'" + std::string(part) + "' in '" + std::string(text) + "' is not a GPU index");
    }
    if (!ids.insert(*id).second) {
      return Error(Code::kInvalidArgument, "GPU " + std::to_string(*id) + " is listed twice");
    }
    if (comma == text.size()) break;
    pos = comma + 1;
  }
  return std::vector<int>(ids.begin(), ids.end());
}

Result<std::vector<int>> ParseNvidiaSmiList(std::string_view text) {
  constexpr std::string_view kPrefix = "GPU ";
  std::set<int> ids;
  for (std::string_view line : Lines(text)) {
    if (!line.starts_with(kPrefix)) continue;  // MIG devices are indented under their GPU
    line.remove_prefix(kPrefix.size());
    const size_t colon = line.find(':');
    const std::optional<int> id =
        colon == std::string_view::npos ? std::nullopt : WholeNumber(line.substr(0, colon));
    if (!id || *id > kMaxGpus) {
      return Error(Code::kInvalidArgument,
                   "nvidia-smi -L: unexpected line 'GPU " + std::string(line.substr(0, 80)) + "'");
    }
    if (!ids.insert(*id).second) {
      return Error(Code::kInvalidArgument, "nvidia-smi -L: GPU " + std::to_string(*id) + " twice");
    }
  }
  return std::vector<int>(ids.begin(), ids.end());
}

Result<std::vector<int>> DetectNvidiaGpus(const std::string& search_path, int64_t timeout_ms) {
  std::string program;
  size_t pos = 0;
  while (program.empty() && pos <= search_path.size()) {
    const size_t colon = std::min(search_path.find(':', pos), search_path.size());
    std::string dir = search_path.substr(pos, colon - pos);
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/nvidia-smi";
    if (access(candidate.c_str(), X_OK) == 0) program = candidate;
    pos = colon + 1;
  }
  if (program.empty()) return Error(Code::kNotFound, "no nvidia-smi on PATH");
  Result<ProgramRun> run = RunProgram(program, {program, "-L"}, timeout_ms);
  if (!run) return std::unexpected(run.error());
  if (run->timed_out) {
    return Error(Code::kUnavailable, program + " -L did not finish within " +
                                         std::to_string(timeout_ms) + " ms (killed)");
  }
  if (!WIFEXITED(run->status) || WEXITSTATUS(run->status) != 0) {
    const std::string how = WIFSIGNALED(run->status)
                                ? "was killed by signal " + std::to_string(WTERMSIG(run->status))
                                : "exited with " + std::to_string(WEXITSTATUS(run->status));
    return Error(Code::kUnavailable, program + " -L " + how + ": " + FirstLine(run->output));
  }
  Result<std::vector<int>> ids = ParseNvidiaSmiList(run->output);
  if (!ids) return Error(Code::kUnavailable, ids.error().message());
  return ids;
}

Result<int64_t> ParseMemTotalMb(std::string_view meminfo) {
  constexpr std::string_view kKey = "MemTotal:";
  for (std::string_view line : Lines(meminfo)) {
    if (!line.starts_with(kKey)) continue;
    line.remove_prefix(kKey.size());
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    int64_t kb = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), kb);
    std::string_view unit(p, line.data() + line.size() - p);
    while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    if (ec != std::errc() || kb < 0 || (unit != "kB" && !unit.empty())) {
      return Error(Code::kInvalidArgument, "/proc/meminfo: malformed MemTotal line");
    }
    return kb / 1024;
  }
  return Error(Code::kNotFound, "/proc/meminfo: no MemTotal line");
}

int64_t DetectMemoryMb() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    return static_cast<int64_t>(pages) * page_size / (1024 * 1024);
  }
  std::ifstream in("/proc/meminfo");
  std::stringstream text;
  text << in.rdbuf();
  Result<int64_t> mb = ParseMemTotalMb(text.str());
  return mb ? *mb : 0;
}

double ParseLoadAverage(std::string_view loadavg) {
  double load = 0;
  const char* end = loadavg.data() + loadavg.size();
  auto [p, ec] = std::from_chars(loadavg.data(), end, load);
  return ec == std::errc() && load >= 0 ? load : 0.0;
}

double ReadLoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string text;
  std::getline(in, text);
  return ParseLoadAverage(text);
}

std::string LocalHostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

NodeInventory DetectInventory(const ExecdConfig& config, const std::string& search_path,
                              int64_t gpu_timeout_ms) {
  NodeInventory inv;
  inv.cpus = AllowedCpus();
  const int n_cpus = static_cast<int>(inv.cpus.size());
  inv.total.cores = config.cores ? *config.cores : n_cpus;
  const bool over = inv.total.cores > n_cpus;
  inv.notes.push_back("cores: " + std::to_string(inv.total.cores) +
                      (config.cores ? " (configured)" : " (the execd's affinity mask)") +
                      " on CPUs " + JoinIds(inv.cpus) + ": jobs are bound to the " +
                      (over ? "(i mod " + std::to_string(n_cpus) + ")-th" : "i-th") +
                      " of them for core index i" +
                      (over ? " (oversubscribed: more cores than CPUs)" : ""));

  inv.total.mem_mb = config.mem_mb ? *config.mem_mb : DetectMemoryMb();
  inv.notes.push_back("memory: " + std::to_string(inv.total.mem_mb) + " MiB" +
                      (config.mem_mb ? " (configured)" : " (physical memory)"));

  std::string gpus;
  if (config.gpus) {
    inv.gpu_ids = *config.gpus;
    std::sort(inv.gpu_ids.begin(), inv.gpu_ids.end());
    gpus = " (configured)";
  } else if (Result<std::vector<int>> found = DetectNvidiaGpus(search_path, gpu_timeout_ms)) {
    inv.gpu_ids = *found;
    gpus = " (nvidia-smi -L)";
  } else {
    gpus = " (" + found.error().message() + ")";
  }
  inv.total.gpus = static_cast<int>(inv.gpu_ids.size());
  inv.notes.push_back("GPUs: " + (inv.gpu_ids.empty() ? "none" : JoinIds(inv.gpu_ids)) + gpus);

  inv.features = config.features;
  std::sort(inv.features.begin(), inv.features.end());
  inv.total.consumables = config.consumables;
  if (!inv.features.empty() || !inv.total.consumables.empty()) {
    std::string text;
    for (const std::string& f : inv.features) text += (text.empty() ? "" : ",") + f;
    std::string counts;
    for (const auto& [name, n] : inv.total.consumables) {
      counts += (counts.empty() ? "" : ",") + name + "=" + std::to_string(n);
    }
    inv.notes.push_back("features: " + (text.empty() ? "none" : text) +
                        "; consumables: " + (counts.empty() ? "none" : counts) + " (configured)");
  }
  return inv;
}

}  // namespace corral
