// corral-sim's command line: the options, their parser, the --help text (which states
// the trace conventions), and the whole run from options to output text and files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace corral::sim {

struct Options {
  bool help = false;
  std::string trace;
  std::string policy;                // "" = the reference policy
  std::vector<std::string> compare;  // two policy files ("none" = the reference policy)
  int procs = 0, nodes = 0, cores_per_node = 0;
  std::string planner;           // "" = the policy's (fcfs without a policy)
  std::vector<int64_t> windows;  // first job index (0-based) of each window
  int64_t window_size = 0;
  double warmup_percent = 0;
  bool arrivals_first = true;  // false with --one-pass-per-time
  std::string jobs_csv;
  std::string plot_svg;
  bool json = false;
  size_t users = 15;  // per-user rows in the text report
};

extern const char kUsage[];

// Parses argv without argv[0]. InvalidArgument names the offending option.
Result<Options> ParseArgs(const std::vector<std::string>& args);

// Runs what `options` asks: loads the trace and policies, simulates, writes --jobs and
// --plot files, and returns the report text (or JSON) for stdout.
Result<std::string> RunSim(const Options& options);

}  // namespace corral::sim
