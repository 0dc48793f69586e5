// qstat for people: colour in the state column and a summary line, only when stdout is a
// terminal and the user has not asked for Grid Engine's exact format. Piped output is
// always the exact format (sge-compat.md §3): workflow tools parse it.
#pragma once

#include <cstdint>
#include <string>

#include "common/types.h"

namespace corral {

struct TtyStyle {
  bool summary = false;  // a "N jobs: ..." line after the table
  bool colour = false;   // ANSI colour in the state column
};

// What qstat adds for a person: nothing unless `stdout_is_tty`; nothing with --sge
// (`sge_flag`) or CORRAL_QSTAT_FORMAT=sge (`format_env`, may be null); no colour when
// NO_COLOR is set and not empty (`no_color`) or TERM is "dumb" (`term`).
TtyStyle ChooseStyle(bool stdout_is_tty, bool sge_flag, const char* format_env,
                     const char* no_color, const char* term);

// `row` (QstatRow(job)) with its state code coloured: running green, being deleted
// magenta, held yellow, failed red; other states unchanged.
std::string ColourRow(const std::string& row, const Job& job);

// Counts of the rows qstat showed, by state (an array's pending line counts its tasks).
class QstatSummary {
 public:
  void Add(const Job& row);
  // "12 jobs: 4 running, 6 pending, 2 held" (", 3 finished" when some were shown),
  // newline-terminated; "" when nothing was counted.
  std::string Line() const;

 private:
  int64_t running_ = 0, pending_ = 0, held_ = 0, finished_ = 0;
};

}  // namespace corral
