// The directly written job text (common/job_text.h) is byte for byte what the nlohmann
// form gives, and query replies with paging fields round-trip.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "builders.h"
#include "common/job_text.h"
#include "common/protocol.h"

namespace corral {
namespace {

std::vector<Job> VariedJobs() {
  std::vector<Job> jobs;
  Job plain;
  plain.id = 1;
  plain.spec = testing::Spec();
  plain.owner = "alice";
  jobs.push_back(plain);

  Job full = plain;
  full.id = 123456789;
  full.spec.name = "quote\" back\\ nl\n tab\t cr\r bell\x07 del\x7f";
  full.spec.args = {"a", "", "b c", "\x01"};
  full.spec.env = {{"PATH", "/usr/bin"}, {"Z", "last"}, {"A", "first"}, {"\x1f", "ctl"}};
  full.spec.other_resources = {{"tmpdir", "<TBD>"}};
  full.spec.request = {8, 65536, 2};
  full.spec.request.consumables = {{"matlab", 1}, {"scratch_gb", 100}};
  full.spec.features = {"avx512"};
  full.spec.after_ok = {3, 4};
  full.spec.after_tasks = {9};
  full.spec.array = TaskRange{1, 1000, 3};
  full.pending = {TaskRange{4, 1000, 3}};
  full.spec.max_running_tasks = 5;
  full.spec.sweep = {"{\"x\":1}"};  // not shipped, but counted
  full.spec.shell = "/bin/bash";
  full.spec.project = "p";
  full.spec.queue = "all.q";
  full.spec.priority = -5;
  full.spec.h_rt_s = 3600;
  full.spec.binary = true;
  full.spec.join = true;
  full.spec.hold = true;
  full.spec.rerunnable = false;
  full.uid = 4294967295u;
  full.gid = 7;
  full.state = JobState::kFailed;
  full.attempt = 2;
  full.node = "node-1";
  full.exit_code = -1;
  full.exit_signal = 9;
  full.cpu_ms = 1234567890123;
  full.max_rss_kb = 99;
  full.cancel_requested = true;
  full.alloc_cores = {0, 1};
  full.alloc_gpus = {3};
  full.params = "{\"b\":2,\"a\":1}";
  full.result = "{\"loss\":0.25}";
  full.result_error = "too large";
  full.attempts = {{1, "n1", 1700000000500, 1700000000999, "node failed"},
                   {2, "n2", 1700000001000, 0, ""}};
  jobs.push_back(full);

  // Times: whole seconds, trailing zeros, tiny and far-future values, a negative one.
  for (TimeMs t : {TimeMs{1}, TimeMs{5}, TimeMs{10}, TimeMs{999}, TimeMs{1000}, TimeMs{1010},
                   TimeMs{1700000000000}, TimeMs{1700000000100}, TimeMs{1700000000120},
                   TimeMs{1700000000123}, TimeMs{3999999999999}, TimeMs{4000000000001},
                   TimeMs{987654321987654}, TimeMs{-1500}}) {
    Job j = plain;
    j.submit_time = t;
    j.start_time = t + 1;
    j.end_time = t + 7;
    j.state = JobState::kCompleted;
    jobs.push_back(j);
  }
  // Non-ASCII: valid UTF-8 and invalid bytes (replaced, as Encode always did).
  Job utf = plain;
  utf.spec.name = "r\xc3\xa9sum\xc3\xa9 \xe2\x9c\x93";
  utf.reason = "bad \xff\xfe byte";
  utf.state = JobState::kCancelled;
  jobs.push_back(utf);
  Job task = plain;
  task.task = 17;
  task.spec = {};
  task.state = JobState::kRunning;
  jobs.push_back(task);
  return jobs;
}

}  // namespace

TEST_CASE("job text: written directly, it is exactly the nlohmann form") {
  for (const Job& job : VariedJobs()) {
    std::string fast;
    AppendJobJson(fast, job);
    CHECK(fast == JobToJson(job));
  }
}

TEST_CASE("job text: a query reply is the same text as before, and pages round-trip") {
  QueryReply reply;
  reply.jobs = VariedJobs();
  reply.missing = {5, 6};
  reply.next = UnitKey{77, 3};
  const std::string text = Encode(reply, "tag\"1");
  // The generic form, built with nlohmann from the same parts.
  nlohmann::json j = {{"missing", reply.missing},
                      {"next", {{"job", 77}, {"task", 3}}},
                      {"req", "tag\"1"},
                      {"type", "jobs"},
                      {"v", kProtocolVersion}};
  j["jobs"] = nlohmann::json::array();
  for (const Job& job : reply.jobs) j["jobs"].push_back(nlohmann::json::parse(JobToJson(job)));
  CHECK(text == j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));

  Result<Envelope> back = Decode(text);
  REQUIRE(back.has_value());
  const auto& r = std::get<QueryReply>(back->message);
  CHECK(r.next == UnitKey{77, 3});
  CHECK(r.missing == reply.missing);
  REQUIRE(r.jobs.size() == reply.jobs.size());
  CHECK(r.jobs[1].spec.env == reply.jobs[1].spec.env);

  WaitReply w{true, {reply.jobs[0]}};
  Result<Envelope> wb = Decode(Encode(w, ""));
  REQUIRE(wb.has_value());
  CHECK(std::get<WaitReply>(wb->message).done);
  CHECK(std::get<WaitReply>(wb->message).jobs.size() == 1);
}

TEST_CASE("job text: paging fields of a query round-trip, and are checked") {
  QueryRequest q;
  q.user = "bob";
  q.states = {"running", "queued"};
  q.limit = 2000;
  q.after = UnitKey{41, 7};
  Result<Envelope> back = Decode(Encode(q, "t"));
  REQUIRE(back.has_value());
  const auto& r = std::get<QueryRequest>(back->message);
  CHECK(r.states == q.states);
  CHECK(r.limit == 2000);
  CHECK(r.after == UnitKey{41, 7});
  // A request without them (an older client) reads as unpaged.
  Result<Envelope> old = Decode(R"({"v":1,"type":"query","ids":[],"user":"","include_finished":false})");
  REQUIRE(old.has_value());
  CHECK(std::get<QueryRequest>(old->message).limit == 0);
  CHECK(!std::get<QueryRequest>(old->message).after);
  for (const char* bad :
       {R"({"v":1,"type":"query","ids":[],"user":"","include_finished":false,"limit":-1})",
        R"({"v":1,"type":"query","ids":[],"user":"","include_finished":false,"limit":5001})",
        R"({"v":1,"type":"query","ids":[],"user":"","include_finished":false,"after":{"job":1}})",
        R"({"v":1,"type":"query","ids":[],"user":"","include_finished":false,"states":[1]})"}) {
    Result<Envelope> e = Decode(bad);
    CHECK_MESSAGE(!e.has_value(), bad);
  }
}

}  // namespace corral
