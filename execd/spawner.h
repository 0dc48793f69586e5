// The spawner: a small single-threaded process that forks the execd's shepherds, so that
// each per-job fork copies the spawner's small address space instead of the execd's, and
// the execd itself takes no copy-on-write faults from shepherds sharing its pages. The
// execd execs it once (corral-spawner, execd/spawner_main.cc: linked static, nothing but
// what a shepherd runs), with its end of a socket pair on fd 3; a launcher embedded in a
// test with a clock of its own forks it instead (a copy of the test, sharing the clock).
// Also the wire format of a ShepherdPlan, which the execd prepares and the spawner receives.
// Nothing here decides what a job runs as: the plan arrives complete (execd/launcher.cc).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "execd/shepherd.h"

namespace corral {

// The descriptor an exec'd spawner finds its socket on.
inline constexpr int kSpawnerSocketFd = 3;

// The spawner's loop on `sock` (moved to kSpawnerSocketFd; every other descriptor but 0-2 is
// closed): receives plans, forks their shepherds, which stamp times with `clock`, and
// reports answers and exits. Ends the process when the execd's end is closed.
[[noreturn]] void RunSpawner(int sock, const Clock* clock);

// The corral-spawner beside this process's own binary (/proc/self/exe): the execd's.
// NotFound, naming the path, when it is missing or not executable.
Result<std::string> SpawnerBesideSelf();

// Opens `program` (corral-spawner) for Spawner::Start's program_fd: close-on-exec, and
// above kSpawnerSocketFd, where the socket is put. Unavailable naming the path.
Result<int> OpenSpawnerProgram(const std::string& program);

// A ShepherdPlan as bytes, and back. `clock` does not travel (the spawner uses its own copy
// of the launcher's). Decode never throws, bounds every count and size, and refuses
// trailing or missing bytes: InvalidArgument naming the field.
std::string EncodeShepherdPlan(const ShepherdPlan& plan);
Result<ShepherdPlan> DecodeShepherdPlan(std::string_view bytes);

// A shepherd the spawner reaped: its pid and wait status.
struct ShepherdExit {
  pid_t pid = 0;
  int status = 0;
};

// What became of one plan handed to the spawner.
struct SpawnOutcome {
  enum class Kind {
    kStarted,     // a shepherd runs it: `pid`
    kNotStarted,  // refused or fork failed (`error`); no shepherd exists for it
    kUnknown,     // the spawner died with the plan: a shepherd may or may not run it
  };
  Kind kind = Kind::kUnknown;
  pid_t pid = 0;
  std::string error;
  // Exits the spawner reported before this answer, in order: apply them before recording
  // `pid`, which may be a reused pid of one of them. Later ones come from TakeExits.
  std::vector<ShepherdExit> exits_before;
};

// The execd's end of one spawner process. Not thread-safe; not copyable. The spawner is the
// parent of every shepherd it starts, and reaps them: their exits reach the execd in order,
// through fd() (TakeExits). It exits when this end is destroyed (EOF), leaving its shepherds
// running: they live in sessions of their own and write their exit files regardless.
class Spawner {
 public:
  // Starts a spawner. With a `program` (corral-spawner), execs it with its socket on
  // kSpawnerSocketFd: its shepherds stamp times with the system clock, and `clock` is
  // unused. `program_fd`, if not -1, is that file opened earlier, and what is exec'd (the
  // path only names it in messages): a spawner started later runs the same file even if
  // `program` has been replaced since (an upgrade), so it speaks the execd's plan version.
  // Without a program, forks this process: its shepherds stamp times with `clock`
  // (required), read through the spawner's copy of this process's memory, so the object must
  // outlive the launcher and a clock whose state changes later is seen as it was at this
  // fork. Unavailable, naming what, when the socket pair, the fork or the exec fails.
  static Result<std::unique_ptr<Spawner>> Start(const Clock* clock, const std::string& program,
                                                int program_fd = -1);
  ~Spawner();  // closes the socket and reaps the spawner once it has exited

  // Hands `plan` and `report_fd` (the pipe its job child reports its pgid on, passed as a
  // descriptor: RunShepherd's report_fd) to the spawner and waits for its answer (at most
  // 10 s: a spawner that does not answer is killed, and the outcome is kUnknown). The
  // caller keeps and closes its own copy of `report_fd`.
  SpawnOutcome Spawn(const ShepherdPlan& plan, int report_fd);

  // Exits reported since the last call, in the order the spawner reaped them; reads what
  // is waiting on fd() without blocking. After the spawner's death, alive() turns false.
  std::vector<ShepherdExit> TakeExits();

  // Readable when exits are waiting or the spawner has died: poll it with the loop's others.
  int fd() const { return fd_; }
  // True when records were already read off fd() and wait here (Spawn reads whatever came
  // with its answer): fd() will not say so again, TakeExits has them without waiting.
  bool HasBufferedRecords() const;
  pid_t pid() const { return pid_; }
  // False once the spawner's end of the socket is gone (it died or was killed).
  bool alive() const { return alive_; }

  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

 private:
  Spawner(int fd, pid_t pid) : fd_(fd), pid_(pid) {}
  // Execs `program` (through `program_fd` if not -1) with `sv[1]` on kSpawnerSocketFd;
  // closes sv[1], and sv[0] on failure.
  static Result<std::unique_ptr<Spawner>> Exec(const std::string& program, int program_fd,
                                               const int sv[2]);
  // Reads what the spawner sent, without blocking (`block`: waits up to 100 ms for a byte or
  // EOF). Exit records go to exits_ up to the first answer ('S'/'F'), which fills `answer`
  // (true); with no answer expected (null) parsing stops before one.
  bool ReadRecords(bool block, SpawnOutcome* answer);

  int fd_ = -1;
  pid_t pid_ = 0;
  bool alive_ = true;
  std::string in_;  // bytes read and not yet parsed (exits after an answer, a partial record)
  std::vector<ShepherdExit> exits_;
};

}  // namespace corral
