// corral-sim's input side: the SWF parser (header, comments, -1 fields, bad lines with
// their line numbers) and the trace conventions of workload.h (machine size, job size,
// estimates, the cut at the estimate, what is skipped, arrival order).
#include <doctest/doctest.h>

#include "sim/swf.h"
#include "sim/workload.h"

using namespace corral;
using namespace corral::sim;

namespace {

// An 18-field job line with the fields that matter here; the rest are -1.
std::string Line(int64_t id, int64_t submit, int64_t run, int64_t alloc, int64_t req_procs,
                 int64_t req_time, int64_t user = 1, int64_t group = 1) {
  return std::to_string(id) + " " + std::to_string(submit) + " -1 " + std::to_string(run) + " " +
         std::to_string(alloc) + " -1 -1 " + std::to_string(req_procs) + " " +
         std::to_string(req_time) + " -1 1 " + std::to_string(user) + " " + std::to_string(group) +
         " -1 -1 -1 -1 -1\n";
}

}  // namespace

TEST_CASE("sim swf: header keywords, comments, blank lines and -1 fields") {
  const std::string text =
      "; Version: 2.2\n"
      "; Computer: IBM SP2\n"
      ";\n"
      "; Note: THIS IS A CLEANED VERSION OF THE LOG!\n"
      ";       The filter used to produce it was\n"
      "; MaxNodes: 100\n"
      "; MaxProcs: 128\n"
      "\n"
      "   15   599850 192180   3477    4     -1    -1    4  53940    -1  1  12  12  -1 -1 -1 -1 "
      "-1\n"
      "16 600022 -1 2488 25 12.5 -1 -1 -1 -1 0 13 -1 -1 -1 -1 -1 -1\r\n"
      "; a comment between jobs\n";
  Result<SwfTrace> t = ParseSwf(text, "kth.swf");
  REQUIRE(t.has_value());
  CHECK(t->header.at("Version") == "2.2");
  CHECK(t->header.at("Computer") == "IBM SP2");
  CHECK(t->header.at("Note") == "THIS IS A CLEANED VERSION OF THE LOG!");
  CHECK(t->header.count("The filter used to produce it was") == 0);
  CHECK(t->max_nodes == 100);
  CHECK(t->max_procs == 128);
  REQUIRE(t->records.size() == 2);
  const SwfRecord& a = t->records[0];
  CHECK(a.line == 9);
  CHECK(a.job_number == 15);
  CHECK(a.submit_s == 599850);
  CHECK(a.wait_s == 192180);
  CHECK(a.run_s == 3477);
  CHECK(a.allocated_procs == 4);
  CHECK(a.requested_procs == 4);
  CHECK(a.requested_s == 53940);
  CHECK(a.status == 1);
  CHECK(a.user == 12);
  CHECK(a.group == 12);
  CHECK(a.think_time_s == -1);
  const SwfRecord& b = t->records[1];
  CHECK(b.line == 10);
  CHECK(b.avg_cpu_s == doctest::Approx(12.5));
  CHECK(b.requested_procs == -1);
  CHECK(b.requested_s == -1);
  CHECK(b.group == -1);
}

TEST_CASE("sim swf: a header without sizes, and values written with a fraction") {
  Result<SwfTrace> t =
      ParseSwf("; MaxProcs: -1\n1 0 -1 3600.0 2 -1 -1 2 7200.4 -1 1 1 1 -1 -1 -1 -1 -1\n", "x.swf");
  REQUIRE(t.has_value());
  CHECK_FALSE(t->max_procs.has_value());
  CHECK_FALSE(t->max_nodes.has_value());
  CHECK(t->records[0].run_s == 3600);
  CHECK(t->records[0].requested_s == 7200);
}

TEST_CASE("sim swf: bad lines are refused with file and line number") {
  const std::string good = Line(1, 0, 10, 1, 1, 10);
  auto error = [](const std::string& text) {
    Result<SwfTrace> t = ParseSwf(text, "bad.swf");
    REQUIRE_FALSE(t.has_value());
    CHECK(t.error().code() == Code::kInvalidArgument);
    return t.error().message();
  };
  CHECK(error("; MaxProcs: 4\n" + good + "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n") ==
        "bad.swf:3: 17 fields (an SWF job line has 18)");
  CHECK(error(good + good + "\n1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19\n") ==
        "bad.swf:4: more than 18 fields (an SWF job line has 18)");
  CHECK(error("1 abc 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\n") ==
        "bad.swf:1: field 2 is not a number: 'abc'");
  CHECK(error(good + "1 2 3 4 5 6 7 8 9x 10 11 12 13 14 15 16 17 18\n") ==
        "bad.swf:2: field 9 is not a number: '9x'");
  CHECK(error("1 2 3 4 5 nan 7 8 9 10 11 12 13 14 15 16 17 18\n") ==
        "bad.swf:1: field 6 is not a number: 'nan'");
}

TEST_CASE("sim swf: a file that cannot be read is NotFound") {
  Result<SwfTrace> t = LoadSwf("/nonexistent/trace.swf");
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error().code() == Code::kNotFound);
}

TEST_CASE("sim workload: machine size from the options, else MaxProcs, else MaxNodes") {
  SwfTrace t;
  std::string from;
  CHECK_FALSE(ChooseMachine(t, {}).has_value());
  t.max_nodes = 64;
  Result<Machine> m = ChooseMachine(t, {}, &from);
  REQUIRE(m.has_value());
  CHECK(m->nodes == 1);
  CHECK(m->cores_per_node == 64);
  CHECK(from == "MaxNodes");
  t.max_procs = 128;
  m = ChooseMachine(t, {}, &from);
  CHECK(m->cores_per_node == 128);
  CHECK(from == "MaxProcs");
  m = ChooseMachine(t, {.procs = 32}, &from);
  CHECK(m->Procs() == 32);
  CHECK(from == "--procs");
  m = ChooseMachine(t, {.nodes = 4, .cores_per_node = 16}, &from);
  CHECK(m->nodes == 4);
  CHECK(m->Procs() == 64);
  CHECK(from == "--nodes");
  CHECK_FALSE(ChooseMachine(t, {.procs = 8, .nodes = 2, .cores_per_node = 4}).has_value());
  CHECK_FALSE(ChooseMachine(t, {.nodes = 2}).has_value());
}

TEST_CASE("sim workload: size, estimate, cut at the estimate, skips and arrival order") {
  std::string text = "; MaxProcs: 8\n";
  text += Line(1, 50, 100, 4, 2, 200, 7, 3);  // size 2 (field 8), estimate 200
  text += Line(2, 10, 100, 3, -1, -1);        // size 3 (field 5), estimate = run = 100
  text += Line(3, 20, 300, 1, 1, 120);        // run cut to 120
  text += Line(4, 30, 0, 1, 1, 10);           // skipped: run time 0
  text += Line(5, 30, 10, -1, -1, 10);        // skipped: no size
  text += Line(6, 30, 10, 9, 9, 10);          // skipped: larger than the machine
  text += Line(7, 10, 5, 1, 1, 10, -1, -1);   // same submit as job 2: after it (file order)
  text += Line(8, -1, 5, 1, 1, 10);           // skipped: no submit time
  Result<SwfTrace> t = ParseSwf(text, "w.swf");
  REQUIRE(t.has_value());
  Result<Workload> w = BuildWorkload(*t, {});
  REQUIRE(w.has_value());
  const WorkloadNotes& n = w->notes;
  CHECK(n.records == 8);
  CHECK(n.jobs == 4);
  CHECK(n.skipped_run == 1);
  CHECK(n.skipped_size == 1);
  CHECK(n.skipped_too_big == 1);
  CHECK(n.skipped_submit == 1);
  CHECK(n.Skipped() == 4);
  CHECK(n.size_from_field5 == 1);
  CHECK(n.estimate_from_run == 1);
  CHECK(n.cut_at_estimate == 1);
  REQUIRE(w->jobs.size() == 4);
  CHECK(w->jobs[0].swf_id == 2);
  CHECK(w->jobs[1].swf_id == 7);
  CHECK(w->jobs[2].swf_id == 3);
  CHECK(w->jobs[3].swf_id == 1);
  CHECK(w->jobs[0].size == 3);
  CHECK(w->jobs[0].estimate_s == 100);
  CHECK(w->jobs[1].user == "u?");
  CHECK(w->jobs[1].group == "g?");
  CHECK(w->jobs[2].run_s == 120);
  CHECK(w->jobs[2].estimate_s == 120);
  CHECK(w->jobs[3].size == 2);
  CHECK(w->jobs[3].estimate_s == 200);
  CHECK(w->jobs[3].user == "u7");
  CHECK(w->jobs[3].group == "g3");

  // On nodes of 2 cores, the size-3 job does not fit a node.
  w = BuildWorkload(*t, {.nodes = 4, .cores_per_node = 2});
  REQUIRE(w.has_value());
  CHECK(w->notes.skipped_too_big == 2);
  CHECK(w->jobs.size() == 3);
}
