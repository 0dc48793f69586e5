// The trace conventions (listed in workload.h).
#include "sim/workload.h"

#include <algorithm>

namespace corral::sim {
namespace {

std::string Name(char prefix, int64_t id) {
  return id < 0 ? std::string(1, prefix) + "?" : prefix + std::to_string(id);
}

}  // namespace

Result<Machine> ChooseMachine(const SwfTrace& trace, const MachineRequest& request,
                              std::string* from) {
  auto said = [from](const char* what) {
    if (from) *from = what;
  };
  if (request.procs != 0 && (request.nodes != 0 || request.cores_per_node != 0)) {
    return Error(Code::kInvalidArgument,
                 "give either --procs or --nodes with --cores-per-node, not both");
  }
  if (request.procs < 0 || request.nodes < 0 || request.cores_per_node < 0) {
    return Error(Code::kInvalidArgument, "machine sizes must be positive");
  }
  if (request.procs > 0) {
    said("--procs");
    return Machine{1, request.procs};
  }
  if ((request.nodes > 0) != (request.cores_per_node > 0)) {
    return Error(Code::kInvalidArgument, "--nodes and --cores-per-node go together");
  }
  if (request.nodes > 0) {
    said("--nodes");
    return Machine{request.nodes, request.cores_per_node};
  }
  constexpr int64_t kMax = 1 << 30;
  if (trace.max_procs && *trace.max_procs <= kMax) {
    said("MaxProcs");
    return Machine{1, static_cast<int>(*trace.max_procs)};
  }
  if (trace.max_nodes && *trace.max_nodes <= kMax) {
    said("MaxNodes");
    return Machine{1, static_cast<int>(*trace.max_nodes)};
  }
  return Error(Code::kInvalidArgument,
               "the trace has no MaxProcs or MaxNodes header: give --procs N "
               "(or --nodes N --cores-per-node C)");
}

Result<Workload> BuildWorkload(const SwfTrace& trace, const MachineRequest& request) {
  Workload w;
  Result<Machine> machine = ChooseMachine(trace, request, &w.notes.machine_from);
  if (!machine) return std::unexpected(machine.error());
  w.machine = *machine;
  WorkloadNotes& notes = w.notes;
  notes.records = static_cast<int64_t>(trace.records.size());
  w.jobs.reserve(trace.records.size());
  for (const SwfRecord& r : trace.records) {
    if (r.submit_s < 0) {
      ++notes.skipped_submit;
      continue;
    }
    if (r.run_s <= 0) {
      ++notes.skipped_run;
      continue;
    }
    int64_t size = r.requested_procs;
    if (size <= 0) {
      size = r.allocated_procs;
      if (size > 0) ++notes.size_from_field5;
    }
    if (size <= 0) {
      ++notes.skipped_size;
      continue;
    }
    if (size > w.machine.cores_per_node) {
      ++notes.skipped_too_big;
      continue;
    }
    SimJob j;
    j.swf_id = r.job_number;
    j.line = r.line;
    j.submit_s = r.submit_s;
    j.estimate_s = r.requested_s;
    if (j.estimate_s <= 0) {
      j.estimate_s = r.run_s;
      ++notes.estimate_from_run;
    }
    j.run_s = r.run_s;
    if (j.run_s > j.estimate_s) {
      j.run_s = j.estimate_s;
      ++notes.cut_at_estimate;
    }
    j.size = static_cast<int>(size);
    j.user = Name('u', r.user);
    j.group = Name('g', r.group);
    w.jobs.push_back(std::move(j));
  }
  std::stable_sort(w.jobs.begin(), w.jobs.end(),
                   [](const SimJob& a, const SimJob& b) { return a.submit_s < b.submit_s; });
  notes.jobs = static_cast<int64_t>(w.jobs.size());
  return w;
}

}  // namespace corral::sim
