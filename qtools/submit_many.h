// corral submit-many: one job per line of commands, submitted pipelined through the
// client library (Client::CallMany), so that the scheduler commits many submissions
// with one fsync instead of one each. The per-job specs are built by a pure function.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/types.h"

namespace corral {

// One job per command line of `text`: `base` with args = {"/bin/sh", "-c", LINE} (a -b y
// job), named "line<N>" (N the 1-based line number) unless `keep_name`. Blank lines and
// lines whose first non-blank character is '#' are skipped; `lines` gets the line number
// of each spec. InvalidArgument for text with a NUL byte or without any command.
Result<std::vector<JobSpec>> SpecsFromLines(const JobSpec& base, std::string_view text,
                                            bool keep_name, std::vector<int>& lines);

// The whole of `corral submit-many ARGS...` (argv after "submit-many"); returns the exit
// status: 0 every job submitted, 1 otherwise, 2 usage error.
int RunSubmitMany(const std::vector<std::string>& args);

}  // namespace corral
