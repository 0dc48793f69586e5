// The Standard Workload Format (SWF) of the Parallel Workloads Archive: one job per line,
// 18 whitespace-separated numeric fields (-1 = unknown), ';' comment lines, header lines
// "; Keyword: value". This file only parses; sim/workload.h applies the simulation
// conventions (machine size, job size, estimates, what is skipped).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace corral::sim {

// One job line. Field numbers are the format's (1-based); -1 means unknown.
struct SwfRecord {
  int line = 0;                   // line number in the file, for messages
  int64_t job_number = -1;        // 1
  int64_t submit_s = -1;          // 2: submit time, seconds from the trace's start
  int64_t wait_s = -1;            // 3: wait on the real machine (an output; a simulator ignores it)
  int64_t run_s = -1;             // 4: run time, seconds
  int64_t allocated_procs = -1;   // 5
  double avg_cpu_s = -1;          // 6
  int64_t used_mem_kb = -1;       // 7
  int64_t requested_procs = -1;   // 8
  int64_t requested_s = -1;       // 9: the user's runtime estimate
  int64_t requested_mem_kb = -1;  // 10
  int64_t status = -1;            // 11: 1 completed, 0 failed, 5 cancelled, 2-4 checkpoints
  int64_t user = -1;              // 12
  int64_t group = -1;             // 13
  int64_t executable = -1;        // 14
  int64_t queue = -1;             // 15
  int64_t partition = -1;         // 16
  int64_t preceding_job = -1;     // 17
  int64_t think_time_s = -1;      // 18
};

struct SwfTrace {
  // Header keywords as written ("MaxProcs" -> "100"); continuation lines are not joined.
  std::map<std::string, std::string> header;
  std::optional<int64_t> max_procs;  // "; MaxProcs:" when present and positive
  std::optional<int64_t> max_nodes;  // "; MaxNodes:" likewise
  std::vector<SwfRecord> records;    // in file order
};

// Parses SWF text. `origin` names the input in messages. A job line must hold exactly 18
// numbers (integers; field 6 may have a fraction; other fields may be written "12.0" and
// are then rounded); anything else is InvalidArgument "ORIGIN:LINE: what is wrong". Blank
// lines and ';' lines are skipped; ';' lines of the form "; Key: value" fill `header`.
// Never throws.
Result<SwfTrace> ParseSwf(std::string_view text, const std::string& origin);

// The same from a file; NotFound when it cannot be read.
Result<SwfTrace> LoadSwf(const std::string& path);

}  // namespace corral::sim
