// Fuzzes what reaches the scheduler's sockets: arbitrary bytes go to Decode (and to
// DecodeJobRecord, the store's reader), and whatever decodes goes to the pure core as
// server.cc would hand it on: node messages to HandleNode, client requests to
// HandleClient under four callers (root, the jobs' owner, another user, an anonymous tcp
// client), each result installed and followed by a Decide pass, on a small cluster with
// queued, held, running and array jobs, once first come first served and once under a
// policy. Also checks that a decoded message re-encodes into bytes that decode to the
// same encoding. Any crash, sanitizer report or failed check is a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/protocol.h"
#include "policies/policy_config.h"
#include "scheduler/core.h"

namespace corral {
namespace {

constexpr TimeMs kNow = 1'700'000'000'000;

void Check(bool ok, const char* what, std::string_view detail) {
  if (ok) return;
  std::fprintf(stderr, "protocol_fuzzer: %s: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

Caller User(uint32_t uid, const char* name) { return Caller{uid, 100, name}; }

// A small cluster: two nodes, then jobs submitted and dispatched through the core itself.
struct World {
  ClusterState state;
  CoreConfig config;

  std::optional<Message> Node(const Message& m, TimeMs now) {
    Outcome o = HandleNode(state, m, config, now);
    Install(state, o.actions);
    return o.reply;
  }
  Message Client(const Message& m, const Caller& caller, TimeMs now) {
    Outcome o = HandleClient(state, m, caller, config, now);
    Install(state, o.actions);
    Check(o.reply.has_value(), "no reply to a client request", TypeName(m));
    return *o.reply;
  }
  void Tick(TimeMs now) { Install(state, Decide(state, config, now)); }
};

JobSpec Spec(const std::string& name, int cores) {
  JobSpec s;
  s.name = name;
  s.script = "#!/bin/sh\ntrue\n";
  s.cwd = "/tmp";
  s.request = Resources(cores, 100);
  return s;
}

constexpr char kPolicy[] = R"(
fairshare:
  half_life: 1d
  tree:
    physics: {shares: 60, users: {alice: 3, bob: 1}}
    default: {shares: 5}
priority: {fairshare: 10000, age: 1000, job_size: 100, queue: 2000}
limits:
  default_user: {max_running_jobs: 20, max_cores: 64, max_queued_jobs: 500}
  groups:
    physics: {max_gpus: 2}
queues:
  batch: {max_h_rt: 7d, default_h_rt: 4h, default_resources: {cores: 1, mem: 1G}}
  gpu: {features: [gpu], max_h_rt: 2d, priority: 10}
default_queue: batch
planner: {algorithm: easy, max_jobs_per_pass: 100}
)";

World Build(bool with_policy) {
  World w;
  w.config.heartbeat_interval_ms = 1000;
  w.config.node_timeout_ms = 30000;
  w.config.consumables = {{"matlab", 2}};
  if (with_policy) {
    Result<Policy> p = ParsePolicy(kPolicy, "fuzz-policy.yaml");
    Check(p.has_value(), "the built-in policy does not parse",
          p ? "" : p.error().message());
    w.config.policy = std::make_shared<const PolicyEngine>(std::move(*p));
  }
  const TimeMs t = kNow - 60'000;
  w.Node(RegisterNode{"node1", Resources(4, 8192), {}, {}, {}}, t);
  w.Node(RegisterNode{"node2", Resources(2, 4096, 2), {}, {0, 1}, {"gpu"}}, t);
  const Caller alice = User(1000, "alice");
  w.Client(SubmitRequest{Spec("running", 2)}, alice, t);   // job 1
  JobSpec held = Spec("held", 1);
  held.hold = true;
  w.Client(SubmitRequest{held}, alice, t);                  // job 2
  JobSpec array = Spec("array", 1);
  array.array = TaskRange{1, 100, 1};
  array.max_running_tasks = 2;
  w.Client(SubmitRequest{array}, alice, t);                 // job 3
  JobSpec dependent = Spec("after", 1);
  dependent.after_ok = {1};
  dependent.after_tasks = {3};
  dependent.array = TaskRange{1, 100, 1};
  w.Client(SubmitRequest{dependent}, alice, t);             // job 4
  w.Client(SubmitRequest{Spec("big", 4)}, User(1001, "bob"), t);  // job 5
  w.Tick(t);
  // Job 1's node reports it ended, so there is a finished job as well.
  if (const Job* one = FindUnit(w.state, {1, 0}); one && one->state == JobState::kRunning) {
    JobExit exit;
    exit.node = one->node;
    exit.job_id = 1;
    exit.attempt = one->attempt;
    exit.start_time = t;
    exit.end_time = t + 1000;
    w.Node(exit, t + 1000);
    w.Tick(t + 1000);
  }
  return w;
}

bool IsNodeMessage(const Message& m) {
  return std::holds_alternative<RegisterNode>(m) || std::holds_alternative<Heartbeat>(m) ||
         std::holds_alternative<JobExit>(m);
}

void Feed(const World& world, const Message& m) {
  if (IsNodeMessage(m)) {
    World w = world;
    w.Node(m, kNow);
    w.Tick(kNow);
    w.Tick(kNow + 3'600'000);  // and much later: silent nodes time out
    return;
  }
  if (const auto* wait = std::get_if<WaitRequest>(&m)) {  // parked by the server
    for (JobId id : wait->ids) (void)IsFinished(world.state, id);
    return;
  }
  const Caller callers[] = {Caller{0, 0, "root"}, User(1000, "alice"), User(1001, "bob"),
                            Caller{std::nullopt, 0, ""}};
  for (const Caller& caller : callers) {
    World w = world;
    Message reply = w.Client(m, caller, kNow);
    (void)Encode(reply, "r");
    w.Tick(kNow);
  }
}

}  // namespace
}  // namespace corral

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace corral;
  static const World* const kWorlds[] = {new World(Build(false)), new World(Build(true))};
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)DecodeJobRecord(bytes);
  Result<Envelope> env = Decode(bytes);
  if (!env) return 0;
  const std::string encoded = Encode(env->message, env->req);
  Result<Envelope> again = Decode(encoded);
  Check(again.has_value(), "a decoded message does not decode after Encode",
        again ? encoded : again.error().message() + " in " + encoded);
  Check(Encode(again->message, again->req) == encoded, "Encode(Decode(Encode(m))) != Encode(m)",
        encoded);
  for (const World* world : kWorlds) Feed(*world, env->message);
  return 0;
}
