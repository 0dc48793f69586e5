// corral-node-emulator: one process that plays many execds, as Grid Engine's
// SIMULATE_EXECDS does, to load the real corral-scheduler with a large cluster. Each
// emulated node is the execd's own Agent (execd/agent.h: registration, heartbeats, exits
// resent until acknowledged) on a DEALER socket of its own with routing id
// "execd/NAME", speaking the real protocol; only the Launcher is fake: a job "runs" for
// a time drawn from its id, without any process. Benchmarks only.
//
// It also measures, at full load, the time from a slot freeing (the exit sent) to the
// next job starting there (its StartJob received): on each node, launch number C+k fills
// the slot freed by exit number k (every job takes one core, C = cores per node).
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/time.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "bench/stopwatch.h"
#include "common/clock.h"
#include "common/protocol.h"
#include "execd/agent.h"

namespace corral {
namespace {

constexpr const char* kUsage =
    R"(usage: corral-node-emulator --scheduler tcp://HOST:PORT --nodes N [options]

  --cores C          cores per node (default 32)
  --mem-mb M         memory per node in MiB (default 262144)
  --prefix P         node names P00000, P00001, ... (default emu)
  --job-ms MS        mean run time of a job; each runs uniformly 0..2*MS by its id
                     (default 120000)
  --ramp-ms MS       spread the first registrations over MS (default 2000), so that
                     heartbeats are spread over the interval as real nodes' are
  --measure-s S      once every slot has been filled (and at least 99% of the slots
                     are busy), measure for S seconds, print the results and exit
                     (default 60); 0: run until the --max-s limit
  --windows W        measure W windows of --measure-s one after the other, each
                     reported on its own with the suffix _wK (default 1: no suffix);
                     "window K started" is printed as each begins (bench/perf.sh storm
                     runs its query storm in window 2 only)
  --max-s S          give up after S seconds in all (default 3600)
  --stats-s S        a progress line every S seconds (default 10)
Prints "registered N after T s" once every node is registered, "full after T s" when
the measurement starts, then the figures as "name value unit" lines (the emulator's own
CPU share among them: it shares the machine with the scheduler).
)";

struct Options {
  std::string scheduler;
  int nodes = 0;
  int cores = 32;
  int64_t mem_mb = 262144;
  std::string prefix = "emu";
  int64_t job_ms = 120000;
  int64_t ramp_ms = 2000;
  int64_t measure_s = 60;
  int windows = 1;
  int64_t max_s = 3600;
  int64_t stats_s = 10;
};

// A job's run time: uniform in [0, 2*mean) by a hash of its id and task, so that ends
// spread out and a rerun takes as long.
int64_t RunTimeMs(const AttemptKey& key, int64_t mean) {
  uint64_t x = static_cast<uint64_t>(key.job_id) * 0x9E3779B97F4A7C15ull ^
               static_cast<uint64_t>(key.task) * 0xC2B2AE3D27D4EB4Full;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return static_cast<int64_t>(x % static_cast<uint64_t>(2 * mean));
}

// Ends due, across every node: (end time, node index, attempt).
struct Due {
  TimeMs at;
  size_t node;
  AttemptKey key;
  bool operator>(const Due& o) const { return at > o.at; }
};
using DueQueue = std::priority_queue<Due, std::vector<Due>, std::greater<>>;

// Runs nothing: an attempt "ends" at its start plus RunTimeMs.
class FakeLauncher final : public Launcher {
 public:
  FakeLauncher(size_t index, int64_t job_ms, DueQueue& due, const Clock& clock)
      : index_(index), job_ms_(job_ms), due_(due), clock_(clock) {}

  Result<pid_t> Launch(const Job& job) override {
    const AttemptKey key{job.id, job.attempt, job.task};
    const TimeMs now = clock_.Now();
    running_[key] = now;
    due_.push({now + RunTimeMs(key, job_ms_), index_, key});
    ++launches_;
    return static_cast<pid_t>(100000 + launches_);
  }
  bool Kill(const AttemptKey& key) override {
    if (!running_.contains(key)) return false;
    killed_.push_back(key);
    due_.push({clock_.Now(), index_, key});
    return true;
  }
  std::vector<AttemptEnd> Reap() override {
    std::vector<AttemptEnd> out;
    const TimeMs now = clock_.Now();
    for (const AttemptKey& key : ready_) {
      auto it = running_.find(key);
      if (it == running_.end()) continue;  // killed and already reaped
      AttemptEnd end;
      end.key = key;
      const bool killed = std::find(killed_.begin(), killed_.end(), key) != killed_.end();
      end.exit_code = killed ? 137 : 0;
      end.signal = killed ? 9 : 0;
      end.start_time = it->second;
      end.end_time = now;
      out.push_back(end);
      running_.erase(it);
    }
    ready_.clear();
    return out;
  }
  size_t RunningCount() const override { return running_.size(); }
  Status Release(const AttemptKey&) override { return OkStatus(); }

  // Called when the due queue says `key` has ended; the next Reap reports it.
  void MarkDone(const AttemptKey& key) { ready_.push_back(key); }
  int64_t launches() const { return launches_; }

 private:
  size_t index_;
  int64_t job_ms_;
  DueQueue& due_;
  const Clock& clock_;
  std::map<AttemptKey, TimeMs> running_;
  std::vector<AttemptKey> ready_;
  std::vector<AttemptKey> killed_;
  int64_t launches_ = 0;
};

struct EmulatedNode {
  std::string name;
  std::unique_ptr<zmq::socket_t> socket;
  std::unique_ptr<FakeLauncher> launcher;
  std::unique_ptr<Agent> agent;
  bool started = false;
  int64_t exits = 0;
  std::deque<int64_t> freed_us;  // when each exit not yet refilled was sent (monotonic us)
};

class Emulator {
 public:
  explicit Emulator(const Options& o) : o_(o), context_(1) {}

  int Run() {
    RaiseFdLimit();
    context_.set(zmq::ctxopt::max_sockets, o_.nodes + 64);
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    nodes_.resize(o_.nodes);
    for (int i = 0; i < o_.nodes; ++i) {
      EmulatedNode& n = nodes_[i];
      char name[64];
      snprintf(name, sizeof name, "%s%05d", o_.prefix.c_str(), i);
      n.name = name;
      n.socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
      n.socket->set(zmq::sockopt::routing_id, "execd/" + n.name);
      n.socket->set(zmq::sockopt::linger, 0);
      n.socket->set(zmq::sockopt::rcvhwm, 0);
      n.socket->set(zmq::sockopt::sndhwm, 0);
      n.socket->connect(o_.scheduler);
      n.launcher = std::make_unique<FakeLauncher>(i, o_.job_ms, due_, clock_);
      Resources total(o_.cores, o_.mem_mb, 0);
      n.agent = std::make_unique<Agent>(
          AgentOptions{.node = n.name, .total = total}, *n.launcher, [](const std::string&) {});
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = static_cast<uint64_t>(i);
      const int fd = n.socket->get(zmq::sockopt::fd);
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        perror("epoll_ctl");
        return 1;
      }
    }
    const int64_t t0 = bench::NowUs();
    const int64_t slots = static_cast<int64_t>(o_.nodes) * o_.cores;
    int64_t next_stats = t0 + o_.stats_s * 1000000;
    int64_t next_tick_sweep = 0;
    int64_t next_drain_sweep = 0;
    bool all_registered = false;
    std::vector<epoll_event> events(1024);
    while (true) {
      const int64_t now_us = bench::NowUs();
      if (now_us - t0 > o_.max_s * 1000000) {
        printf("gave up after %lld s\n", static_cast<long long>(o_.max_s));
        break;
      }
      if (measure_from_ && o_.measure_s > 0 && now_us - measure_from_ > o_.measure_s * 1000000) {
        if (window_ + 1 >= o_.windows) break;
        Report();
        ++window_;
        measure_from_ = bench::NowUs();
        measure_cpu_from_ = CpuUs();
        measure_exits_from_ = exits_;
        measure_launches_from_ = launches_;
        latency_ms_.clear();
        printf("window %d started\n", window_ + 1);
        fflush(stdout);
      }
      // Registrations, spread over the ramp.
      for (size_t i = started_; i < nodes_.size(); ++i) {
        if (now_us - t0 < static_cast<int64_t>(i) * o_.ramp_ms * 1000 / o_.nodes) break;
        EmulatedNode& n = nodes_[i];
        n.started = true;
        Send(i, n.agent->Start(clock_.Now()));
        started_ = i + 1;
      }
      int timeout = 20;
      if (!due_.empty()) {
        timeout = static_cast<int>(std::clamp<TimeMs>(due_.top().at - clock_.Now(), 0, 20));
      }
      const int n_events = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout);
      for (int e = 0; e < n_events; ++e) Drain(static_cast<size_t>(events[e].data.u64));
      // Ends that are due: exits go out at once (the agent sends them), as a real execd's.
      const TimeMs now = clock_.Now();
      std::vector<size_t> touched;
      while (!due_.empty() && due_.top().at <= now) {
        const Due d = due_.top();
        due_.pop();
        nodes_[d.node].launcher->MarkDone(d.key);
        touched.push_back(d.node);
      }
      for (size_t i : touched) {
        EmulatedNode& n = nodes_[i];
        for (const AttemptEnd& end : n.launcher->Reap()) {
          ++n.exits;
          ++exits_;
          n.freed_us.push_back(bench::NowUs());
          Send(i, n.agent->OnExit(end, now));
        }
      }
      // Timers (heartbeats, registration retries): every node, every 50 ms.
      if (now_us >= next_tick_sweep) {
        next_tick_sweep = now_us + 50000;
        size_t registered = 0;
        for (size_t i = 0; i < started_; ++i) {
          Send(i, nodes_[i].agent->Tick(now));
          registered += nodes_[i].agent->Registered();
        }
        if (!all_registered && registered == nodes_.size()) {
          all_registered = true;
          printf("registered %zu after %.1f s\n", registered, (bench::NowUs() - t0) / 1e6);
          fflush(stdout);
        }
      }
      // The ZeroMQ fd signals edges; a sweep now and then catches anything missed.
      if (now_us >= next_drain_sweep) {
        next_drain_sweep = now_us + 500000;
        for (size_t i = 0; i < started_; ++i) Drain(i);
      }
      // Full: every slot filled once, and the frees meanwhile refilled (99% busy).
      if (!measure_from_ && launches_ >= slots && (launches_ - exits_) * 100 >= slots * 99) {
        measure_from_ = bench::NowUs();
        measure_cpu_from_ = CpuUs();
        measure_exits_from_ = exits_;
        measure_launches_from_ = launches_;
        printf("full after %.1f s\n", (measure_from_ - t0) / 1e6);
        if (o_.windows > 1) printf("window 1 started\n");
        fflush(stdout);
      }
      if (now_us >= next_stats) {
        next_stats = now_us + o_.stats_s * 1000000;
        printf("# t=%.0fs started=%zu launches=%lld exits=%lld running=%lld samples=%zu\n",
               (now_us - t0) / 1e6, started_, static_cast<long long>(launches_),
               static_cast<long long>(exits_), static_cast<long long>(launches_ - exits_),
               latency_ms_.size());
        fflush(stdout);
      }
    }
    Report();
    return 0;
  }

 private:
  void RaiseFdLimit() {
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    const rlim_t want = static_cast<rlim_t>(o_.nodes) * 3 + 256;
    if (lim.rlim_cur < want) {
      const rlim_t old = lim.rlim_cur;
      lim.rlim_cur = std::min(want, lim.rlim_max);
      setrlimit(RLIMIT_NOFILE, &lim);
      printf("# RLIMIT_NOFILE raised from %llu to %llu (hard limit %llu)\n",
             static_cast<unsigned long long>(old), static_cast<unsigned long long>(lim.rlim_cur),
             static_cast<unsigned long long>(lim.rlim_max));
    }
  }

  void Send(size_t i, const std::vector<Message>& messages) {
    if (messages.empty()) return;
    EmulatedNode& n = nodes_[i];
    for (const Message& m : messages) {
      const std::string bytes = Encode(m);
      if (!n.socket->send(zmq::buffer(bytes), zmq::send_flags::dontwait)) ++dropped_;
    }
    Drain(i);  // a send may have consumed the fd's signal of pending input
  }

  void Drain(size_t i) {
    EmulatedNode& n = nodes_[i];
    do {
      while (true) {
        zmq::message_t frame;
        if (!n.socket->recv(frame, zmq::recv_flags::dontwait)) break;
        Result<Envelope> env = Decode(frame.to_string_view());
        if (!env) continue;
        const int64_t before = n.launcher->launches();
        std::vector<Message> out = n.agent->OnMessage(env->message, clock_.Now());
        if (n.launcher->launches() > before) {
          ++launches_;
          // Launch number C+k on this node refills the slot of its exit number k.
          if (n.launcher->launches() > o_.cores && !n.freed_us.empty()) {
            const int64_t freed = n.freed_us.front();
            n.freed_us.pop_front();
            if (measure_from_ && freed >= measure_from_) {
              latency_ms_.push_back((bench::NowUs() - freed) / 1000.0);
            }
          }
        }
        for (const Message& m : out) {
          const std::string bytes = Encode(m);
          if (!n.socket->send(zmq::buffer(bytes), zmq::send_flags::dontwait)) ++dropped_;
        }
      }
    } while (n.socket->get(zmq::sockopt::events) & ZMQ_POLLIN);
  }

  static int64_t CpuUs() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
  }

  void Report() {
    const double secs = measure_from_ ? (bench::NowUs() - measure_from_) / 1e6 : 0;
    int64_t unfilled = 0;
    for (const EmulatedNode& n : nodes_) unfilled += static_cast<int64_t>(n.freed_us.size());
    std::string tag = std::to_string(o_.nodes) + "_nodes";
    if (o_.windows > 1) tag += "_w" + std::to_string(window_ + 1);
    printf("emu_measure_window_%s %.1f s\n", tag.c_str(), secs);
    if (secs > 0) {
      printf("emu_exits_per_s_%s %.1f per_s\n", tag.c_str(), (exits_ - measure_exits_from_) / secs);
      printf("emu_starts_per_s_%s %.1f per_s\n", tag.c_str(),
             (launches_ - measure_launches_from_) / secs);
    }
    printf("emu_slot_refill_samples_%s %zu samples\n", tag.c_str(), latency_ms_.size());
    printf("emu_slot_refill_median_%s %.1f ms\n", tag.c_str(), bench::Median(latency_ms_));
    printf("emu_slot_refill_p90_%s %.1f ms\n", tag.c_str(), bench::Percentile(latency_ms_, 90));
    printf("emu_slot_refill_p99_%s %.1f ms\n", tag.c_str(), bench::Percentile(latency_ms_, 99));
    printf("emu_slot_refill_max_%s %.1f ms\n", tag.c_str(), bench::Percentile(latency_ms_, 100));
    printf("emu_slots_free_at_end_%s %lld slots\n", tag.c_str(), static_cast<long long>(unfilled));
    if (secs > 0) {
      printf("emu_own_cpu_share_%s %.1f %%\n", tag.c_str(),
             (CpuUs() - measure_cpu_from_) / 1e4 / secs);
    }
    printf("emu_dropped_sends_%s %lld messages\n", tag.c_str(), static_cast<long long>(dropped_));
    fflush(stdout);
  }

  const Options& o_;
  SystemClock clock_;
  zmq::context_t context_;
  int epoll_ = -1;
  std::vector<EmulatedNode> nodes_;
  size_t started_ = 0;
  DueQueue due_;
  int64_t launches_ = 0, exits_ = 0, dropped_ = 0;
  int64_t measure_exits_from_ = 0, measure_launches_from_ = 0;
  std::vector<double> latency_ms_;
  int64_t measure_from_ = 0;  // monotonic us; 0 until the cluster is full
  int window_ = 0;            // the window being measured, from 0
  int64_t measure_cpu_from_ = 0;
};

}  // namespace
}  // namespace corral

int main(int argc, char** argv) {
  corral::Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "corral-node-emulator: " << a << " needs a value\n";
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--scheduler") o.scheduler = next();
    else if (a == "--nodes") o.nodes = std::stoi(next());
    else if (a == "--cores") o.cores = std::stoi(next());
    else if (a == "--mem-mb") o.mem_mb = std::stoll(next());
    else if (a == "--prefix") o.prefix = next();
    else if (a == "--job-ms") o.job_ms = std::stoll(next());
    else if (a == "--ramp-ms") o.ramp_ms = std::stoll(next());
    else if (a == "--measure-s") o.measure_s = std::stoll(next());
    else if (a == "--windows") o.windows = std::max(1, std::stoi(next()));
    else if (a == "--max-s") o.max_s = std::stoll(next());
    else if (a == "--stats-s") o.stats_s = std::stoll(next());
    else {
      std::cerr << corral::kUsage;
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }
  if (o.scheduler.empty() || o.nodes <= 0 || o.job_ms <= 0) {
    std::cerr << corral::kUsage;
    return 2;
  }
  try {
    return corral::Emulator(o).Run();
  } catch (const zmq::error_t& e) {
    std::cerr << "corral-node-emulator: ZeroMQ: " << e.what() << "\n";
    return 1;
  }
}
