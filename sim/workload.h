// From a parsed SWF trace to the jobs and machine the simulator runs, by the conventions of
// the reference simulators (stated in `corral-sim --help` and docs/simulator.md). Pure.
//
//   machine    --procs N: one node of N processors; --nodes N --cores-per-node C: N nodes
//              of C; neither: one node of MaxProcs, else of MaxNodes, processors.
//   size       requested processors (field 8), else allocated processors (field 5).
//   run time   field 4; an estimate below it cuts the run at the estimate (the real
//              scheduler would have killed the job).
//   estimate   requested time (field 9), else (<= 0) the run time. Used as the job's h_rt.
//   users      "u<field 12>", groups "g<field 13>" ("u?" / "g?" when -1).
//   skipped    submit time < 0 (missing); run time <= 0; size <= 0 (fields 5 and 8 both
//              missing); size above a node (the planner places a job on one node).
//   order      jobs sorted by submit time (stable: file order on ties), numbered 1..n in
//              that order; the number is the job id the engine sees, so id order is
//              arrival order (what the default prioritizer breaks ties by).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "sim/swf.h"

namespace corral::sim {

// The simulated machine: `nodes` identical nodes of `cores_per_node` processors.
struct Machine {
  int nodes = 1;
  int cores_per_node = 0;
  int64_t Procs() const { return static_cast<int64_t>(nodes) * cores_per_node; }
};

// What the command line says about the machine; zeros mean "not given".
struct MachineRequest {
  int procs = 0;
  int nodes = 0;
  int cores_per_node = 0;
};

// A job as the simulator runs it. Times in seconds from the trace's time 0.
struct SimJob {
  int64_t swf_id = 0;  // field 1, for output
  int line = 0;        // line in the trace file
  int64_t submit_s = 0;
  int64_t run_s = 0;       // after the cut at the estimate; > 0
  int64_t estimate_s = 0;  // > 0; becomes the job's h_rt
  int size = 0;            // processors (cores on one node); > 0
  std::string user;
  std::string group;
};

// How many jobs each convention touched.
struct WorkloadNotes {
  int64_t records = 0;            // job lines in the trace
  int64_t jobs = 0;               // jobs kept
  int64_t skipped_submit = 0;     // submit time < 0 (missing)
  int64_t skipped_run = 0;        // run time <= 0
  int64_t skipped_size = 0;       // fields 5 and 8 both <= 0
  int64_t skipped_too_big = 0;    // size > the largest node
  int64_t size_from_field5 = 0;   // field 8 missing
  int64_t estimate_from_run = 0;  // field 9 missing (<= 0)
  int64_t cut_at_estimate = 0;    // run time > estimate: run cut to the estimate
  std::string machine_from;       // "--procs", "--nodes", "MaxProcs", "MaxNodes"
  int64_t Skipped() const { return skipped_submit + skipped_run + skipped_size + skipped_too_big; }
};

struct Workload {
  Machine machine;
  std::vector<SimJob> jobs;  // by submit time, then file order
  WorkloadNotes notes;
};

// The machine from the request, else the trace header. InvalidArgument when neither gives
// a size, or when --procs is mixed with --nodes/--cores-per-node or only one of those is set.
Result<Machine> ChooseMachine(const SwfTrace& trace, const MachineRequest& request,
                              std::string* from = nullptr);

// Applies the conventions above. Fails only as ChooseMachine does.
Result<Workload> BuildWorkload(const SwfTrace& trace, const MachineRequest& request);

}  // namespace corral::sim
