// The execd Agent's protocol logic (registration, heartbeats, duplicate orders, exit
// resends, kills, recovery after a restart) over a recording Launcher, with `now` passed
// in; allocation checks; and the inventory's /proc/meminfo parser.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <variant>
#include <vector>

#include "execd/agent.h"
#include "execd/inventory.h"

namespace corral {
namespace {

// Records what the agent asks of it; processes end when a test says so.
class RecordingLauncher final : public Launcher {
 public:
  Result<pid_t> Launch(const Job& job) override {
    launched.push_back({job.id, job.attempt});
    if (!fail_with.empty()) return Error(Code::kFailedPrecondition, fail_with);
    running.insert({job.id, job.attempt});
    return static_cast<pid_t>(1000 + launched.size());
  }
  bool Kill(const AttemptKey& key) override {
    killed.push_back(key);
    return running.contains(key);
  }
  std::vector<AttemptEnd> Reap() override { return {}; }
  size_t RunningCount() const override { return running.size(); }
  Status Release(const AttemptKey& key) override {
    released.push_back(key);
    return OkStatus();
  }

  std::vector<AttemptKey> launched, killed, released;
  std::set<AttemptKey> running;
  std::string fail_with;
};

struct Fixture {
  RecordingLauncher launcher;
  std::vector<std::string> log;
  Agent agent{AgentOptions{.node = "n1", .total = {8, 16000}}, launcher,
              [this](const std::string& line) { log.push_back(line); }};

  // Starts the agent at t=0 and completes registration with a 5 s heartbeat.
  void Register() {
    agent.Start(0);
    agent.OnMessage(NodeRegistered{5000}, 10);
  }
  std::vector<Message> Order(JobId id, int attempt, TimeMs now, int64_t h_rt_s = 0) {
    StartJob start;
    start.job.id = id;
    start.job.attempt = attempt;
    start.job.spec.h_rt_s = h_rt_s;
    return agent.OnMessage(start, now);
  }
};

// The type names of `messages`, e.g. "job_exit,heartbeat".
std::string Types(const std::vector<Message>& messages) {
  std::string out;
  for (const Message& m : messages) out += (out.empty() ? "" : ",") + std::string(TypeName(m));
  return out;
}

TEST_CASE("execd agent: registration is retried every second until answered") {
  Fixture f;
  std::vector<Message> first = f.agent.Start(0);
  REQUIRE(Types(first) == "register");
  const auto& reg = std::get<RegisterNode>(first[0]);
  CHECK(reg.node == "n1");
  CHECK(reg.total == Resources{8, 16000});
  CHECK(reg.running.empty());

  CHECK(f.agent.MsUntilTick(400) == 600);
  CHECK(f.agent.Tick(999).empty());
  CHECK(Types(f.agent.Tick(1000)) == "register");
  CHECK(Types(f.agent.Tick(2000)) == "register");

  CHECK(f.agent.OnMessage(NodeRegistered{3000}, 2100).empty());
  CHECK(f.agent.Registered());
  CHECK(f.agent.MsUntilTick(2100) == 3000);
  CHECK(f.agent.Tick(3100).empty());  // no more registers, no heartbeat yet
  CHECK(Types(f.agent.Tick(5100)) == "heartbeat");
}

TEST_CASE("execd agent: heartbeat lists the running attempts") {
  Fixture f;
  f.Register();
  f.Order(7, 1, 100);
  f.Order(9, 2, 100);
  std::vector<Message> out = f.agent.Tick(5010);
  REQUIRE(Types(out) == "heartbeat");
  const auto& hb = std::get<Heartbeat>(out[0]);
  CHECK(hb.node == "n1");
  CHECK(hb.running == std::vector<RunningAttempt>{{7, 1}, {9, 2}});
}

TEST_CASE("execd agent: a repeated StartJob is ignored, also after the attempt ended") {
  Fixture f;
  f.Register();
  CHECK(f.Order(7, 1, 100).empty());
  CHECK(f.Order(7, 1, 200).empty());
  CHECK(f.launcher.launched.size() == 1);

  f.agent.OnExit({.key = {7, 1}, .exit_code = 0}, 300);
  f.agent.OnMessage(ExitAck{7, 1}, 400);
  CHECK(f.Order(7, 1, 500).empty());
  CHECK(f.launcher.launched.size() == 1);

  CHECK(f.Order(7, 2, 600).empty());  // a new attempt of the same job does run
  CHECK(f.launcher.launched.size() == 2);
}

TEST_CASE("execd agent: exits are sent at once and before each heartbeat until acked") {
  Fixture f;
  f.Register();
  f.Order(7, 1, 100);
  f.Order(8, 1, 100);

  std::vector<Message> out =
      f.agent.OnExit({.key = {7, 1}, .exit_code = 3, .cpu_ms = 12, .max_rss_kb = 900}, 2000);
  REQUIRE(Types(out) == "job_exit");
  const auto& exit = std::get<JobExit>(out[0]);
  CHECK(exit.node == "n1");
  CHECK(exit.job_id == 7);
  CHECK(exit.attempt == 1);
  CHECK(exit.exit_code == 3);
  CHECK(exit.start_time == 100);
  CHECK(exit.end_time == 2000);
  CHECK(exit.cpu_ms == 12);
  CHECK(exit.max_rss_kb == 900);
  CHECK(exit.failure.empty());

  out = f.agent.Tick(5010);
  REQUIRE(Types(out) == "job_exit,heartbeat");
  CHECK(std::get<JobExit>(out[0]).job_id == 7);
  CHECK(std::get<Heartbeat>(out[1]).running == std::vector<RunningAttempt>{{8, 1}});
  CHECK(Types(f.agent.Tick(10010)) == "job_exit,heartbeat");

  f.agent.OnMessage(ExitAck{7, 1}, 10100);
  CHECK(f.agent.UnackedCount() == 0);
  CHECK(f.launcher.released == std::vector<AttemptKey>{{7, 1}});
  CHECK(Types(f.agent.Tick(15010)) == "heartbeat");
  f.agent.OnMessage(ExitAck{7, 1}, 15100);  // a late duplicate ack is harmless
  CHECK(f.launcher.released.size() == 1);
}

TEST_CASE("execd agent: a start failure becomes an exit with the reason") {
  Fixture f;
  f.Register();
  f.launcher.fail_with = "cannot chdir to /nope: No such file or directory";
  std::vector<Message> out = f.Order(7, 1, 100);
  REQUIRE(Types(out) == "job_exit");
  const auto& exit = std::get<JobExit>(out[0]);
  CHECK(exit.exit_code == 1);
  CHECK(exit.failure == f.launcher.fail_with);
  CHECK(f.agent.Running().empty());
  CHECK(f.agent.UnackedCount() == 1);
  CHECK(f.Order(7, 1, 200).empty());  // still not retried
}

TEST_CASE("execd agent: RegisterNode carries the GPU ids; the log names them") {
  RecordingLauncher launcher;
  std::vector<std::string> log;
  Agent agent(AgentOptions{.node = "g1", .total = {8, 16000, 3}, .gpu_ids = {0, 2, 3}}, launcher,
              [&log](const std::string& line) { log.push_back(line); });
  std::vector<Message> out = agent.Start(0);
  REQUIRE(Types(out) == "register");
  const auto& reg = std::get<RegisterNode>(out[0]);
  CHECK(reg.total == Resources{8, 16000, 3});
  CHECK(reg.gpu_ids == std::vector<int>{0, 2, 3});
  REQUIRE_FALSE(log.empty());
  CHECK(log.back().find("GPUs 0,2,3") != std::string::npos);
  // What the scheduler decodes: total.gpus must match the ids.
  Result<Envelope> decoded = Decode(Encode(out[0]));
  REQUIRE(decoded.has_value());
  CHECK(std::get<RegisterNode>(decoded->message).gpu_ids == std::vector<int>{0, 2, 3});
}

TEST_CASE("execd agent: an allocation this node does not offer is a start failure") {
  const Resources total{4, 16000, 2};
  const std::vector<int> gpus{1, 3};
  Job job;
  CHECK(CheckAllocation(job, total, gpus).ok());  // an older scheduler: nothing allocated
  job.alloc_cores = {0, 3};
  job.alloc_gpus = {3, 1};
  CHECK(CheckAllocation(job, total, gpus).ok());
  job.alloc_cores = {4};
  CHECK(CheckAllocation(job, total, gpus).message() ==
        "allocated core index 4 is not one of this node's 0..3");
  job.alloc_cores = {1, 1};
  CHECK(CheckAllocation(job, total, gpus).message() == "core index 1 allocated twice");
  job.alloc_cores = {-1};
  CHECK(CheckAllocation(job, total, gpus).code() == Code::kInvalidArgument);
  job.alloc_cores = {};
  job.alloc_gpus = {2};
  CHECK(CheckAllocation(job, total, gpus).message() ==
        "allocated GPU 2 is not offered by this node");
  job.alloc_gpus = {1, 1};
  CHECK(CheckAllocation(job, total, gpus).message() == "GPU 1 allocated twice");

  // Through the agent: the launcher is not asked, the scheduler gets the reason.
  RecordingLauncher launcher;
  Agent agent(AgentOptions{.node = "g1", .total = total, .gpu_ids = gpus}, launcher,
              [](const std::string&) {});
  agent.Start(0);
  agent.OnMessage(NodeRegistered{5000}, 10);
  StartJob start;
  start.job.id = 5;
  start.job.attempt = 1;
  start.job.alloc_gpus = {0};
  std::vector<Message> out = agent.OnMessage(start, 100);
  REQUIRE(Types(out) == "job_exit");
  CHECK(std::get<JobExit>(out[0]).failure == "allocated GPU 0 is not offered by this node");
  CHECK(launcher.launched.empty());
  start.job.id = 6;
  start.job.alloc_gpus = {3};
  start.job.alloc_cores = {2, 3};
  CHECK(agent.OnMessage(start, 100).empty());
  CHECK(launcher.launched.size() == 1);
}

TEST_CASE("execd agent: kill orders go to the launcher; wall-clock limits are the shepherd's") {
  Fixture f;
  f.Register();
  f.Order(7, 1, 100);
  f.Order(8, 1, 100, /*h_rt_s=*/60);

  f.agent.OnMessage(KillJob{7, 1}, 200);
  f.agent.OnMessage(KillJob{99, 1}, 200);  // not here: ignored
  CHECK(f.launcher.killed == std::vector<AttemptKey>{{7, 1}});

  CHECK(f.agent.MsUntilTick(4000) == 1010);  // heartbeat due at 5010
  f.agent.OnMessage(NodeRegistered{100000}, 5000);
  CHECK(f.agent.MsUntilTick(50000) == 55000);  // no timer for the limit of 8.1
  f.agent.Tick(60100);
  CHECK(f.launcher.killed.size() == 1);

  // The shepherd's record of a limit kill is reported as it is.
  std::vector<Message> out = f.agent.OnExit({.key = {8, 1},
                                             .exit_code = 137,
                                             .signal = 9,
                                             .start_time = 150,
                                             .end_time = 65150,
                                             .reason = "wall time exceeded"},
                                            65200);
  REQUIRE(Types(out) == "job_exit");
  const auto& exit = std::get<JobExit>(out[0]);
  CHECK(exit.signal == 9);
  CHECK(exit.start_time == 150);
  CHECK(exit.end_time == 65150);
  CHECK(exit.failure.empty());
  CHECK(exit.reason == "wall time exceeded");  // reaches the scheduler's exit_reason
}

TEST_CASE("execd agent: after a restart, registration lists re-attached attempts after the exits") {
  Fixture f;
  Recovery recovered;
  recovered.running = {{7, 1}, {9, 2}};
  recovered.ended = {{.key = {5, 1},
                      .exit_code = 3,
                      .cpu_ms = 4,
                      .max_rss_kb = 800,
                      .start_time = 10,
                      .end_time = 20},
                     {.key = {6, 1},
                      .exit_code = 1,
                      .failure = "lost: the shepherd of attempt 6.1 died without an exit status"}};
  std::vector<Message> out = f.agent.Start(1000, recovered);
  // Exits first: the scheduler requeues whatever a registration does not list.
  REQUIRE(Types(out) == "job_exit,job_exit,register");
  const auto& done = std::get<JobExit>(out[0]);
  CHECK(done.job_id == 5);
  CHECK(done.exit_code == 3);
  CHECK(done.start_time == 10);
  CHECK(done.end_time == 20);
  CHECK(done.cpu_ms == 4);
  const auto& lost = std::get<JobExit>(out[1]);
  CHECK(lost.job_id == 6);
  CHECK(lost.failure == recovered.ended[1].failure);
  CHECK(lost.end_time == 1000);  // unknown: the time it was found
  CHECK(std::get<RegisterNode>(out[2]).running == std::vector<RunningAttempt>{{7, 1}, {9, 2}});

  // Retries carry the exits too, until acked.
  CHECK(Types(f.agent.Tick(2000)) == "job_exit,job_exit,register");
  f.agent.OnMessage(NodeRegistered{5000}, 2100);
  f.agent.OnMessage(ExitAck{5, 1}, 2100);
  CHECK(f.launcher.released == std::vector<AttemptKey>{{5, 1}});
  out = f.agent.Tick(7100);
  REQUIRE(Types(out) == "job_exit,heartbeat");
  CHECK(std::get<Heartbeat>(out[1]).running == std::vector<RunningAttempt>{{7, 1}, {9, 2}});

  // Re-sent orders for recovered attempts start nothing.
  CHECK(f.Order(7, 1, 7200).empty());
  CHECK(f.Order(5, 1, 7200).empty());
  CHECK(f.Order(6, 1, 7200).empty());
  CHECK(f.launcher.launched.empty());

  // A re-attached attempt's end is reported like any other, with the shepherd's times.
  out = f.agent.OnExit({.key = {7, 1}, .exit_code = 0, .start_time = 50, .end_time = 7000}, 7300);
  REQUIRE(Types(out) == "job_exit");
  CHECK(std::get<JobExit>(out[0]).start_time == 50);
  CHECK(std::get<JobExit>(out[0]).end_time == 7000);
  CHECK(f.agent.Running() == std::vector<RunningAttempt>{{9, 2}});
}

TEST_CASE("execd agent: not_found from the scheduler means register again") {
  Fixture f;
  f.Register();
  f.Order(7, 1, 100);
  std::vector<Message> out = f.agent.OnMessage(ErrorReply{Code::kNotFound, "unknown node"}, 200);
  REQUIRE(Types(out) == "register");
  CHECK(std::get<RegisterNode>(out[0]).running == std::vector<RunningAttempt>{{7, 1}});
  CHECK_FALSE(f.agent.Registered());
  CHECK(f.agent.OnMessage(ErrorReply{Code::kNotFound, "again"}, 300).empty());
  CHECK(Types(f.agent.Tick(1200)) == "register");
  CHECK(f.agent.OnMessage(ErrorReply{Code::kInternal, "disk"}, 1300).empty());
}

TEST_CASE("execd agent: unexpected and invalid messages are logged and ignored") {
  Fixture f;
  f.Register();
  CHECK(f.agent.OnMessage(SubmitRequest{}, 100).empty());
  CHECK(f.Order(0, 1, 100).empty());
  CHECK(f.Order(5, 0, 100).empty());
  CHECK(f.launcher.launched.empty());
  CHECK(f.agent.OnExit({.key = {3, 1}}, 100).empty());
  CHECK(f.log.size() >= 4);
}

TEST_CASE("execd agent: a clock stepped back does not silence heartbeats") {
  Fixture f;
  f.Register();  // heartbeat due at 5010
  CHECK(f.agent.MsUntilTick(-1000000) == 5000);
  CHECK(Types(f.agent.Tick(-1000000)) == "heartbeat");
}

TEST_CASE("execd agent: the memory of seen attempts is bounded") {
  RecordingLauncher launcher;
  Agent agent(AgentOptions{.node = "n1", .seen_limit = 2}, launcher, [](const std::string&) {});
  for (JobId id = 1; id <= 3; ++id) {
    StartJob start;
    start.job.id = id;
    start.job.attempt = 1;
    agent.OnMessage(start, 0);
    agent.OnExit({.key = {id, 1}}, 1);
    agent.OnMessage(ExitAck{id, 1}, 2);
  }
  StartJob again;
  again.job.id = 1;  // evicted: would run again
  again.job.attempt = 1;
  agent.OnMessage(again, 3);
  again.job.id = 3;  // still remembered
  agent.OnMessage(again, 3);
  CHECK(launcher.launched.size() == 4);
}

TEST_CASE("execd agent: inventory parses MemTotal of /proc/meminfo") {
  CHECK(ParseMemTotalMb("MemTotal:       16314196 kB\nMemFree: 1 kB\n") == 15931);
  CHECK(ParseMemTotalMb("MemFree: 1 kB\nMemTotal: 2048 kB") == 2);
  CHECK(ParseMemTotalMb("MemFree: 1 kB\n").error().code() == Code::kNotFound);
  CHECK(ParseMemTotalMb("MemTotal: lots\n").error().code() == Code::kInvalidArgument);
  CHECK(DetectCores() >= 1);
  CHECK(DetectMemoryMb() > 0);
}

}  // namespace
}  // namespace corral
