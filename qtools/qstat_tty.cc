// Colour and summary of qstat's table on a terminal (qstat_tty.h).
#include "qtools/qstat_tty.h"

#include <algorithm>
#include <string_view>

namespace corral {
namespace {

// The state column's offset in QstatRow's "%7lld %7.5f %-10.10s %-12.12s %-5.5s ...":
// every field before it has a fixed width except the id, which may be wider than 7.
size_t StateColumn(const Job& job) {
  return std::max<size_t>(7, std::to_string(job.id).size()) + 1 + 7 + 1 + 10 + 1 + 12 + 1;
}

const char* ColourOf(const Job& job) {
  switch (job.state) {
    case JobState::kRunning:
      if (job.task == 0 && job.IsArray()) return nullptr;  // a pending array's line
      return job.cancel_requested ? "\033[35m" : "\033[32m";
    case JobState::kHeld:
      return "\033[33m";
    case JobState::kFailed:
      return "\033[31m";
    default:
      return nullptr;
  }
}

}  // namespace

TtyStyle ChooseStyle(bool stdout_is_tty, bool sge_flag, const char* format_env,
                     const char* no_color, const char* term) {
  TtyStyle style;
  if (!stdout_is_tty || sge_flag) return style;
  if (format_env != nullptr && std::string_view(format_env) == "sge") return style;
  style.summary = true;
  style.colour = !(no_color != nullptr && *no_color != '\0') &&
                 !(term != nullptr && std::string_view(term) == "dumb");
  return style;
}

std::string ColourRow(const std::string& row, const Job& job) {
  const char* colour = ColourOf(job);
  const size_t at = StateColumn(job);
  if (colour == nullptr || row.size() < at + 5) return row;
  size_t len = 5;
  while (len > 0 && row[at + len - 1] == ' ') --len;
  if (len == 0) return row;
  return row.substr(0, at) + colour + row.substr(at, len) + "\033[0m" + row.substr(at + len);
}

void QstatSummary::Add(const Job& row) {
  const int64_t n = row.task == 0 && row.IsArray() && !row.pending.empty()
                        ? CountTasks(row.pending)
                        : 1;
  switch (row.state) {
    case JobState::kQueued: pending_ += n; break;
    case JobState::kHeld: held_ += n; break;
    case JobState::kRunning:
      // A running array's own line lists its pending ids (requeued tasks).
      if (row.task == 0 && row.IsArray()) {
        pending_ += n;
      } else {
        ++running_;
      }
      break;
    default: ++finished_; break;
  }
}

std::string QstatSummary::Line() const {
  const int64_t total = running_ + pending_ + held_ + finished_;
  if (total == 0) return "";
  std::string out = std::to_string(total) + (total == 1 ? " job: " : " jobs: ") +
                    std::to_string(running_) + " running, " + std::to_string(pending_) +
                    " pending, " + std::to_string(held_) + " held";
  if (finished_ > 0) out += ", " + std::to_string(finished_) + " finished";
  return out + "\n";
}

}  // namespace corral
