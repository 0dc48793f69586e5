// Regression tests for what the fuzzers (fuzz/) and the malformed-message e2e test found
// in the parsers of outside input: each case is a reduced crashing or misbehaving input.
#include <doctest/doctest.h>

#include <string>

#include "common/protocol.h"
#include "common/task_ranges.h"
#include "common/units.h"
#include "qtools/qsub_options.h"
#include "core_driver.h"

using namespace corral;

namespace {

std::string Nest(int depth, const std::string& open, char close) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += open;
  s += "1";
  s.append(depth, close);
  return s;
}

}  // namespace

TEST_CASE("hostile input: deeply nested JSON is refused before anything recurses over it") {
  // A job's params nesting a million objects overflowed the scheduler's stack when the
  // decoder turned it back into text.
  const std::string deep = Nest(1'000'000, "{\"a\":", '}');
  const std::string reply = R"({"v":1,"type":"jobs","missing":[],"jobs":[{"id":1,"owner":"x",)"
                            R"("uid":0,"gid":0,"state":"queued","attempt":0,"params":)" +
                            deep + "}]}";
  Result<Envelope> decoded = Decode(reply);
  REQUIRE_FALSE(decoded.has_value());
  CHECK(decoded.error().message() == "message nests arrays or objects deeper than 64 levels");
  CHECK_FALSE(Decode(R"({"v":1,"type":"query","ids":)" + Nest(100'000, "[", ']') + "}").has_value());
  CHECK_FALSE(DecodeJobRecord(R"({"id":1,"params":)" + deep + "}").has_value());
  // Brackets inside strings do not count, and ordinary messages are far from the limit.
  CHECK(Decode(R"({"v":1,"type":"query","ids":[],"user":"[[[[{{{{)" + std::string(100, '[') +
               R"(","include_finished":true})")
            .has_value());
  Job job;
  job.id = 1;
  job.spec.request.consumables = {{"matlab", 1}};
  job.attempts = {Attempt{1, "node1", 1, 2, "exited"}};
  CHECK(Decode(Encode(QueryReply{{job}, {}})).has_value());
}

TEST_CASE("hostile input: a sweep point nesting too deep is refused at submit") {
  // The point is a string on the wire, but the execd parses it as JSON and turns each
  // value back into text (recursively): a million levels would crash the execd.
  JobSpec spec = testing::Spec();
  spec.array = TaskRange{1, 2, 1};
  spec.sweep = {R"({"a":1})", R"({"a":)" + Nest(100'000, "[", ']') + "}"};
  Result<Envelope> decoded = Decode(Encode(SubmitRequest{spec}));
  REQUIRE_FALSE(decoded.has_value());
  CHECK(decoded.error().message() ==
        "submit: field 'spec.sweep' has a point nested deeper than 64 levels");
  spec.sweep[1] = R"({"a":[[1]]})";
  CHECK(Decode(Encode(SubmitRequest{spec})).has_value());
}

TEST_CASE("hostile input: a requeued task inside a stepped range keeps the ranges in order") {
  // {1, 9} is kept as 1-9:8; putting 5 back used to give "1-9:8,5", which interleaves,
  // so PopFirstTask returned 1, 9, 5 instead of 1, 5, 9.
  TaskRanges r = {{1, 10, 2}};
  CHECK(RemoveTasks(r, {3, 7, 1}) == 3);
  CHECK(FormatTaskRanges(r) == "1-9:8");
  InsertTask(r, 5);
  CHECK(FormatTaskRanges(r) == "1-9:4");
  InsertTask(r, 4);
  CHECK(FormatTaskRanges(r) == "1-4:3,5-9:4");
  CHECK(PopFirstTask(r) == 1);
  CHECK(PopFirstTask(r) == 4);
  CHECK(PopFirstTask(r) == 5);
  CHECK(PopFirstTask(r) == 9);
  CHECK(r.empty());
}

TEST_CASE("hostile input: a stepped qdel -t costs time in proportion to the ids it names") {
  // Removing every third id of 300000 pending ones used to remove them one at a time,
  // re-normalizing 100000 ranges each time (quadratic: the scheduler hung).
  TaskRanges r = {{1, 300'000, 1}};
  CHECK(RemoveTasks(r, {1, 300'000, 3}) == 100'000);
  CHECK(r.size() == 100'000);
  CHECK(r.front() == TaskRange{2, 3, 1});
  CHECK(r.back() == TaskRange{299'999, 300'000, 1});
  CHECK(CountTasks(r) == 200'000);
  // Ids before the first range and after the last one are skipped, not walked.
  TaskRanges far = {{99'999'990, 100'000'000, 1}};
  CHECK(RemoveTasks(far, {2, 99'999'998, 2}) == 5);
  CHECK(FormatTaskRanges(far) == "99999991-99999997:2,99999999-100000000:1");

  // The core refuses a stepped range naming more ids than that, before touching anything.
  using corral::testing::Cluster;
  Cluster c;
  JobSpec spec = testing::Spec();
  spec.array = TaskRange{1, 1'000'000, 1};
  const JobId id = c.Submit(spec);
  Message big = c.Client(CancelRequest{{id}, "", TaskRange{1, 1'000'000, 3}});
  CHECK(testing::ErrorOf(big) ==
        "-t 1-1000000:3: a range with a step may name at most 100000 tasks");
  Message ok = c.Client(CancelRequest{{id}, "", TaskRange{1, 300'000, 3}});
  REQUIRE(std::holds_alternative<OutcomeReply>(ok));
  CHECK(CountTasks(c.job(id).pending) == 1'000'000 - 100'000);
}

TEST_CASE("hostile input: sizes and durations near the int64 limit are errors, not overflow") {
  // ParseSizeMb rounded up by adding 1 MiB - 1 first: signed overflow (fuzz/qsub_fuzzer.cc).
  CHECK(ParseSizeMb("9223372036854771614").value() == int64_t{1} << 43);
  CHECK(ParseSizeMb("1").value() == 1);
  CHECK(ParseSizeMb("1M").value() == 1);
  // A suffixed duration multiplied without a bound; ParseDurationMs multiplies by 1000.
  CHECK_FALSE(ParseDurationSeconds("99999999999999999d").has_value());
  CHECK_FALSE(ParseDurationMs("99999999999999999d").has_value());
  CHECK_FALSE(ParseDurationMs("9999999999999999999").has_value());
  CHECK_FALSE(ParseDurationMs("99999999999999.5").has_value());
  CHECK(ParseDurationSeconds("12725d").value() == 12725 * 86400);  // 2^40 s is ~34,800 years
  CHECK(ParseDurationMs("1:00:00").value() == 3'600'000);

  QsubInput in;
  in.args = {"-N", "test"};
  in.script_text = "#$ -l mem_free=9223372036854771614\n";
  in.cwd = in.home = "/tmp";
  CHECK(ParseQsub(in).error().message() ==
        "memory request of 8796093022208 MiB per slot x 1 slots is too large");
  // Products of counts and sizes that each pass their own bound (found reviewing the above).
  in.script_text = "#$ -l h_vmem=2T\n#$ -pe smp 1048576\n";
  CHECK(ParseQsub(in).error().message() ==
        "memory request of 2097152 MiB per slot x 1048576 slots is too large");
  in.script_text = "#PBS -l select=1048576:ncpus=1048576\n";
  CHECK(ParseQsub(in).error().message() ==
        "STDIN:1: -l select=1048576:ncpus=1048576: too many cpus");
  in.script_text = "#PBS -l select=1048576:ncpus=1:mem=8T\n";
  CHECK(ParseQsub(in).error().message() ==
        "STDIN:1: -l select=1048576:ncpus=1:mem=8T: too much memory");
  in.script_text = "#PBS -l mem=9223372036854771614\n";
  CHECK(ParseQsub(in).error().message() == "memory request of 8796093022208 MiB is too large");
  in.script_text = "#$ -l h_vmem=1T\n#$ -pe smp 1024\n";
  REQUIRE(ParseQsub(in).has_value());
  CHECK(ParseQsub(in)->spec.request.mem_mb == int64_t{1} << 30);
}
