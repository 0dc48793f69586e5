// Every protocol message round-trips; malformed input is rejected with a clear error.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "builders.h"
#include "common/protocol.h"

using namespace corral;
using corral::testing::Spec;

namespace {

Job FullJob() {
  Job j;
  j.id = 42;
  j.spec = Spec(4, 2048, "analysis");
  j.spec.args = {"a", "b c"};
  j.spec.env = {{"PATH", "/usr/bin"}, {"PARAM", "x=y"}};
  j.spec.stdout_path = "/out/";
  j.spec.join = true;
  j.spec.h_rt_s = 5400;
  j.spec.other_resources = {{"tmpdir", "<TBD>"}};
  j.uid = 1000;
  j.gid = 100;
  j.owner = "alice";
  j.state = JobState::kRunning;
  j.attempt = 2;
  j.node = "node1";
  j.submit_time = 1700000000123;
  j.start_time = 1700000001456;
  j.cpu_ms = 77;
  j.max_rss_kb = 1024;
  j.spec.rerunnable = false;
  j.spec.max_attempts = 4;
  j.spec.features = {"avx512", "bigmem"};
  j.spec.request.consumables = {{"matlab", 1}, {"scratch_gb", 100}};
  j.attempts = {{1, "node2", 1700000000500, 1700000000999, "node failed"},
                {2, "node1", 1700000001456, 0, ""}};
  return j;
}

template <typename M>
M RoundTrip(const M& m, const std::string& req = "r1") {
  std::string bytes = Encode(Message(m), req);
  Result<Envelope> env = Decode(bytes);
  REQUIRE_MESSAGE(env.has_value(), (env ? "" : env.error().message()));
  CHECK(env->req == req);
  REQUIRE(std::holds_alternative<M>(env->message));
  return std::get<M>(env->message);
}

}  // namespace

TEST_CASE("protocol: every message round-trips") {
  Job job = FullJob();
  CHECK(RoundTrip(SubmitRequest{job.spec}).spec == job.spec);
  CHECK(RoundTrip(SubmitReply{42, "analysis"}).id == 42);
  auto q = RoundTrip(QueryRequest{{1, 2}, "bob", true});
  CHECK(q.ids == std::vector<JobId>{1, 2});
  CHECK(q.user == "bob");
  CHECK(q.include_finished);
  // Query replies carry jobs without scripts, times in seconds (ms precision kept).
  Job shown = job;
  shown.spec.script.clear();
  auto qr = RoundTrip(QueryReply{{job}, {7}});
  REQUIRE(qr.jobs.size() == 1);
  CHECK(qr.jobs[0] == shown);
  CHECK(qr.missing == std::vector<JobId>{7});
  CHECK(RoundTrip(CancelRequest{{3}, "u"}).ids == std::vector<JobId>{3});
  CHECK_FALSE(RoundTrip(HoldRequest{{3}, false}).hold);
  auto outs = RoundTrip(OutcomeReply{{{3, "deleted", "alice"}}});
  CHECK(outs.outcomes == std::vector<JobOutcome>{{3, "deleted", "alice"}});
  CHECK(RoundTrip(WaitRequest{{9}, 1500}).timeout_ms == 1500);
  CHECK(RoundTrip(WaitReply{true, {shown}}).jobs[0] == shown);
  RoundTrip(NodesRequest{});
  Node n = corral::testing::MakeNode("node1", 8, 16384, 1700000000000);
  auto nr = RoundTrip(NodesReply{{n}, {{2, 100}}});
  CHECK(nr.nodes[0] == n);
  CHECK(nr.used[0] == Resources{2, 100});
  auto err = RoundTrip(ErrorReply{Code::kPermissionDenied, "no"});
  CHECK(err.code == Code::kPermissionDenied);
  CHECK(err.message == "no");
  RegisterNode full{"node1", {8, 1024}, {{42, 2}}};
  full.total.consumables = {{"scratch_gb", 800}};
  full.features = {"avx512"};
  auto reg = RoundTrip(full);
  CHECK(reg.running == std::vector<RunningAttempt>{{42, 2}});
  CHECK(reg.total == full.total);
  CHECK(reg.features == full.features);
  CHECK(RoundTrip(Heartbeat{"node1", {}, 1.5}).load == 1.5);
  CHECK(RoundTrip(SubmitReply{42, "x", {"careful"}}).warnings == std::vector<std::string>{"careful"});
  CHECK(RoundTrip(NodeRegistered{1000}).heartbeat_interval_ms == 1000);
  CHECK(RoundTrip(Heartbeat{"node1", {{1, 1}}}).running.size() == 1);
  CHECK(RoundTrip(NodeAdminRequest{"node1", false}).node == "node1");
  JobExit ex{"node1", 42, 2, 137, 9, 1, 2, 3, 4, "", "wall time exceeded"};
  auto ex2 = RoundTrip(ex);
  CHECK(ex2.exit_code == 137);
  CHECK(ex2.signal == 9);
  CHECK(ex2.max_rss_kb == 4);
  CHECK(ex2.reason == "wall time exceeded");
  CHECK(RoundTrip(ExitAck{42, 2}).attempt == 2);
  // StartJob carries the complete record, script and millisecond times included.
  CHECK(RoundTrip(StartJob{job}).job == job);
  CHECK(RoundTrip(KillJob{42, 2}).job_id == 42);
}

TEST_CASE("protocol: job records round-trip exactly") {
  Job job = FullJob();
  job.state = JobState::kFailed;
  job.exit_code = 3;
  job.reason = "exit code 3";
  Result<Job> back = DecodeJobRecord(EncodeJobRecord(job));
  REQUIRE(back.has_value());
  CHECK(*back == job);
}

TEST_CASE("protocol: malformed input is rejected, naming what is wrong") {
  auto error_of = [](std::string_view bytes) {
    Result<Envelope> env = Decode(bytes);
    REQUIRE_FALSE(env.has_value());
    CHECK(env.error().code() == Code::kInvalidArgument);
    return env.error().message();
  };
  CHECK(error_of("not json").find("not valid JSON") != std::string::npos);
  CHECK(error_of("[1,2]").find("object") != std::string::npos);
  CHECK(error_of(R"({"type":"query"})").find("'v'") != std::string::npos);
  CHECK(error_of(R"({"v":2,"type":"query"})").find("version 2") != std::string::npos);
  CHECK(error_of(R"({"v":1,"type":"launch_missiles"})").find("launch_missiles") !=
        std::string::npos);
  CHECK(error_of(R"({"v":1,"type":"query","ids":"x","user":"","include_finished":false})")
            .find("'ids'") != std::string::npos);
  CHECK(error_of(R"({"v":1,"type":"query","ids":[-1],"user":"","include_finished":false})")
            .find("positive") != std::string::npos);
  CHECK(error_of(R"({"v":1,"type":"cancel","ids":[1]})").find("'user'") != std::string::npos);
  CHECK(error_of(R"({"v":1,"type":"submit","spec":{"name":"x"}})").find("spec.") !=
        std::string::npos);
  CHECK(error_of(R"({"v":1,"type":"register","node":"","total":{"cores":1,"mem_mb":1},"running":[]})")
            .find("'node'") != std::string::npos);
  CHECK(error_of(R"({"v":1,"type":"heartbeat","node":"n","running":[{"job_id":1}]})")
            .find("running[0].attempt") != std::string::npos);
  std::string huge(kMaxMessageBytes + 1, ' ');
  CHECK(error_of(huge).find("exceeds") != std::string::npos);
  CHECK(error_of("{\"v\":1,\"type\":\"query\",\"ids\":[1],\"user\":\"\xff\"").find("JSON") !=
        std::string::npos);
}

TEST_CASE("protocol: the documented job JSON has the stable keys") {
  Job job = FullJob();
  job.state = JobState::kCompleted;
  job.exit_code = 0;
  auto j = nlohmann::json::parse(JobToJson(job));
  for (const char* key : {"id", "name", "owner", "state", "exit_code", "node", "submit_time",
                          "start_time", "end_time"}) {
    CHECK_MESSAGE(j.contains(key), key);
  }
  CHECK(j["state"] == "completed");
  CHECK(j["name"] == "analysis");
  CHECK(j["submit_time"].get<double>() == doctest::Approx(1700000000.123));
  CHECK(j["end_time"].is_null());
  CHECK_FALSE(j["spec"].contains("script"));
}
