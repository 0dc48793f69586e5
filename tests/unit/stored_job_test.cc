// The store's binary job record (scheduler/stored_job.h): every field round-trips, and a
// truncated, extended or corrupted record is an error naming the field, never a crash or
// a job made of garbage.
#include <doctest/doctest.h>

#include "builders.h"
#include "common/protocol.h"
#include "scheduler/stored_job.h"

using namespace corral;
using corral::testing::Spec;

namespace {

// Every field of Job and JobSpec set to something other than its default.
Job EveryField() {
  Job j;
  j.id = 123456789012;
  j.task = 7;
  j.pending = {{1, 5, 1}, {9, 99, 3}};
  j.spec = Spec(4, 2048, "analysis");
  j.spec.script = "#!/bin/sh\necho \"h\\u00e9\" \xff\xfe\n";  // invalid UTF-8 is kept as it is
  j.spec.binary = true;
  j.spec.args = {"a", "b c", ""};
  j.spec.shell = "/bin/bash";
  j.spec.cwd = "/home/alice";
  j.spec.stdout_path = "/out/";
  j.spec.stderr_path = "/err/";
  j.spec.join = true;
  j.spec.env = {{"PATH", "/usr/bin"}, {"PARAM", "x=y"}, {"EMPTY", ""}};
  j.spec.request.gpus = 2;
  j.spec.request.consumables = {{"matlab", 1}, {"scratch_gb", 100}};
  j.spec.h_rt_s = 5400;
  j.spec.hold = true;
  j.spec.queue = "long";
  j.spec.project = "p1";
  j.spec.other_resources = {{"tmpdir", "<TBD>"}};
  j.spec.rerunnable = false;
  j.spec.max_attempts = 4;
  j.spec.priority = -1023;
  j.spec.features = {"avx512", "bigmem"};
  j.spec.array = TaskRange{1, 3, 1};
  j.spec.max_running_tasks = 2;
  j.spec.sweep = {"{\"a\":1}", "{\"a\":2}", "{\"a\":[3]}"};
  j.spec.after_any = {1};
  j.spec.after_ok = {2, 3};
  j.spec.after_notok = {4};
  j.spec.after_tasks = {5};
  j.uid = 0xfffffffe;
  j.gid = 100;
  j.owner = "alice";
  j.state = JobState::kRunning;
  j.attempt = 2;
  j.node = "node1";
  j.submit_time = 1700000000123;
  j.start_time = 1700000001456;
  j.end_time = 1700000009999;
  j.exit_code = -1;
  j.exit_signal = 9;
  j.cpu_ms = 77;
  j.max_rss_kb = 1024;
  j.reason = "why";
  j.cancel_requested = true;
  j.attempts = {{1, "node2", 1700000000500, 1700000000999, "node failed"},
                {2, "node1", 1700000001456, 0, ""}};
  j.alloc_cores = {0, 3};
  j.alloc_gpus = {1};
  j.params = "{\"a\":1}";
  j.result = "{\"loss\":0.5}";
  j.result_error = "too large";
  return j;
}

}  // namespace

TEST_CASE("stored job: every field round-trips exactly") {
  const Job job = EveryField();
  const std::string bytes = EncodeStoredJob(job);
  CHECK(IsStoredJob(bytes));
  Result<Job> back = DecodeStoredJob(bytes);
  REQUIRE_MESSAGE(back.has_value(), (back ? "" : back.error().message()));
  CHECK(*back == job);
  // A default job too (empty strings, no optionals), and a plain finished one.
  Job plain;
  plain.id = 1;
  plain.state = JobState::kCancelled;
  REQUIRE(DecodeStoredJob(EncodeStoredJob(plain)).has_value());
  CHECK(*DecodeStoredJob(EncodeStoredJob(plain)) == plain);
  // Much smaller than the JSON record, which names every field.
  CHECK(EncodeStoredJob(plain).size() * 4 < EncodeJobRecord(plain).size());
}

TEST_CASE("stored job: a JSON record is told apart by its first byte") {
  CHECK_FALSE(IsStoredJob(EncodeJobRecord(EveryField())));
  CHECK_FALSE(IsStoredJob(""));
  CHECK_FALSE(DecodeStoredJob("{\"id\": 1}").has_value());
}

TEST_CASE("stored job: every truncation is an error, as are trailing bytes") {
  const std::string bytes = EncodeStoredJob(EveryField());
  for (size_t n = 0; n < bytes.size(); ++n) {
    Result<Job> job = DecodeStoredJob(bytes.substr(0, n));
    REQUIRE_FALSE_MESSAGE(job.has_value(), "prefix of " << n << " bytes decoded");
  }
  Result<Job> longer = DecodeStoredJob(bytes + '\0');
  REQUIRE_FALSE(longer.has_value());
  CHECK(longer.error().message().find("bytes after its last field") != std::string::npos);
}

TEST_CASE("stored job: an unknown format version is refused by name") {
  std::string bytes = EncodeStoredJob(EveryField());
  bytes[1] = 2;
  Result<Job> job = DecodeStoredJob(bytes);
  REQUIRE_FALSE(job.has_value());
  CHECK(job.error().message().find("format 2") != std::string::npos);
}

TEST_CASE("stored job: out-of-range fields are errors naming the field") {
  auto error_of = [](const Job& job) {
    Result<Job> back = DecodeStoredJob(EncodeStoredJob(job));
    return back ? std::string() : back.error().message();
  };
  Job j = EveryField();
  j.id = 0;
  CHECK(error_of(j).find("id is out of range") != std::string::npos);
  j = EveryField();
  j.spec.priority = 5000;
  CHECK(error_of(j).find("spec.priority is out of range") != std::string::npos);
  j = EveryField();
  j.pending = {{5, 1, 1}};
  CHECK(error_of(j).find("pending_tasks has last < first") != std::string::npos);
  j = EveryField();
  j.spec.sweep.pop_back();
  CHECK(error_of(j).find("spec.sweep must have one point per task") != std::string::npos);
  j = EveryField();
  j.spec.sweep[0] = std::string(100, '[') + std::string(100, ']');
  CHECK(error_of(j).find("spec.sweep has a point nested too deep") != std::string::npos);
  j = EveryField();
  j.spec.request.consumables[""] = 1;
  CHECK(error_of(j).find("spec.request.consumables has an empty") != std::string::npos);
  j = EveryField();
  j.spec.script.assign(kMaxScriptBytes + 1, 'x');
  CHECK(error_of(j).find("spec.script is too long") != std::string::npos);
}

TEST_CASE("stored job: corrupted bytes never crash and never pass a bad state") {
  const std::string bytes = EncodeStoredJob(EveryField());
  int refused = 0;
  for (size_t i = 2; i < bytes.size(); ++i) {
    for (unsigned char flip : {0x01, 0x80, 0xff}) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ flip);
      Result<Job> job = DecodeStoredJob(bad);
      if (!job) {
        ++refused;
        continue;
      }
      // What does decode is a job the JSON decoder would accept too.
      Result<Job> json = DecodeJobRecord(EncodeJobRecord(*job));
      CHECK_MESSAGE(json.has_value(), "byte " << i << " ^ " << int(flip) << ": "
                                              << (json ? "" : json.error().message()));
    }
  }
  CHECK(refused > 0);
}
