// qstat on a terminal (qtools/qstat_tty.h): when colour and the summary apply, which
// state is which colour, and the summary's counts.
#include <doctest/doctest.h>

#include "builders.h"
#include "qtools/qstat_tty.h"
#include "qtools/sge_format.h"

namespace corral {
namespace {

Job Row(JobId id, JobState state) {
  Job j;
  j.id = id;
  j.spec = testing::Spec(1, 0, "job");
  j.owner = "alice";
  j.state = state;
  j.submit_time = 1700000000000;
  if (state == JobState::kRunning) j.node = "node1";
  return j;
}

}  // namespace

TEST_CASE("qstat tty: style only on a terminal, and not when the exact format is asked for") {
  CHECK_FALSE(ChooseStyle(false, false, nullptr, nullptr, "xterm").summary);
  TtyStyle tty = ChooseStyle(true, false, nullptr, nullptr, "xterm");
  CHECK(tty.summary);
  CHECK(tty.colour);
  CHECK_FALSE(ChooseStyle(true, true, nullptr, nullptr, "xterm").summary);  // --sge
  CHECK_FALSE(ChooseStyle(true, false, "sge", nullptr, "xterm").summary);
  CHECK(ChooseStyle(true, false, "other", nullptr, "xterm").summary);
  TtyStyle no_color = ChooseStyle(true, false, nullptr, "1", "xterm");
  CHECK(no_color.summary);
  CHECK_FALSE(no_color.colour);
  CHECK(ChooseStyle(true, false, nullptr, "", "xterm").colour);  // NO_COLOR empty: ignored
  CHECK_FALSE(ChooseStyle(true, false, nullptr, nullptr, "dumb").colour);
}

TEST_CASE("qstat tty: the state code is coloured in place, the rest of the row unchanged") {
  const Job running = Row(12, JobState::kRunning);
  const std::string row = QstatRow(running);
  const std::string coloured = ColourRow(row, running);
  CHECK(coloured.find("\033[32mr\033[0m    ") != std::string::npos);
  std::string plain = coloured;
  for (const char* code : {"\033[32m", "\033[0m"}) plain.erase(plain.find(code), std::string(code).size());
  CHECK(plain == row);
  CHECK(ColourRow(QstatRow(Row(3, JobState::kHeld)), Row(3, JobState::kHeld)).find("\033[33mhqw\033[0m") != std::string::npos);
  CHECK(ColourRow(QstatRow(Row(3, JobState::kQueued)), Row(3, JobState::kQueued)) ==
        QstatRow(Row(3, JobState::kQueued)));
  Job deleting = running;
  deleting.cancel_requested = true;
  CHECK(ColourRow(QstatRow(deleting), deleting).find("\033[35mdr\033[0m") != std::string::npos);
  // An id wider than the 7-column field shifts the state column; it is still found.
  const Job wide = Row(123456789, JobState::kFailed);
  CHECK(ColourRow(QstatRow(wide), wide).find("\033[31mz\033[0m") != std::string::npos);
}

TEST_CASE("qstat tty: the summary counts rows by state, an array's pending line by its tasks") {
  QstatSummary none;
  CHECK(none.Line().empty());
  QstatSummary s;
  s.Add(Row(1, JobState::kRunning));
  s.Add(Row(2, JobState::kQueued));
  s.Add(Row(3, JobState::kHeld));
  Job array = Row(4, JobState::kQueued);
  array.spec.array = TaskRange{1, 10, 1};
  array.pending = {TaskRange{3, 10, 1}};
  s.Add(array);
  CHECK(s.Line() == "11 jobs: 1 running, 9 pending, 1 held\n");
  s.Add(Row(5, JobState::kCompleted));
  CHECK(s.Line() == "12 jobs: 1 running, 9 pending, 1 held, 1 finished\n");
  QstatSummary one;
  one.Add(Row(1, JobState::kRunning));
  CHECK(one.Line() == "1 job: 1 running, 0 pending, 0 held\n");
}

}  // namespace corral
