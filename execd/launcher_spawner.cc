// PosixLauncher's side of its spawner (execd/spawner.h): handing a prepared plan over,
// tracking the shepherd it forks, applying the exits it reports, and what happens when it
// dies (its shepherds re-attached through the spool, a new spawner at the next Launch).
// The rest of PosixLauncher is in launcher.cc.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "execd/launcher.h"
#include "execd/shepherd.h"
#include "execd/spawner.h"
#include "execd/spool.h"

namespace corral {
namespace {

// How long Launch waits for a new shepherd to report its job's pgid. It only forks and
// writes two small files first; this bounds a hung spool disk, not the normal case.
constexpr int kReportTimeoutMs = 5000;

// What a new shepherd sent on its report pipe (see RunShepherd): the job's pgid, 0 if none
// came; `eof` when the pipe was closed by every writer rather than the wait timing out.
struct Report {
  pid_t pgid = 0;
  bool eof = false;
};

Report ReadReport(int fd) {
  const int64_t deadline = MonotonicNowMs() + kReportTimeoutMs;
  pid_t pgid = 0;
  size_t got = 0;
  auto* bytes = reinterpret_cast<char*>(&pgid);
  while (got < sizeof(pgid)) {
    const int64_t left = deadline - MonotonicNowMs();
    if (left <= 0) return {};
    pollfd item{fd, POLLIN, 0};
    if (poll(&item, 1, static_cast<int>(left)) < 0 && errno != EINTR) return {};
    const ssize_t n = read(fd, bytes + got, sizeof(pgid) - got);
    // The shepherd ended before its job existed: its exit file says why.
    if (n == 0) return {.pgid = 0, .eof = true};
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return {};
    }
    got += static_cast<size_t>(n);
  }
  return {.pgid = pgid, .eof = false};
}

}  // namespace

Result<pid_t> PosixLauncher::StartShepherd(const ShepherdPlan& plan) {
  const AttemptKey& key = plan.key;
  for (int round = 0;; ++round) {
    if (Status s = EnsureSpawner(); !s.ok()) return std::unexpected(s);
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
      return Error(Code::kUnavailable,
                   std::string("cannot create a pipe: ") + std::strerror(errno));
    }
    const SpawnOutcome out = spawner_->Spawn(plan, report[1]);
    close(report[1]);
    // Before the new pid is recorded: an exit read on the way may be of an earlier owner of it.
    ApplyExits(out.exits_before);
    if (out.kind == SpawnOutcome::Kind::kStarted) {
      // Only the start of the job stands between us and the pgid, so this wait is short; it
      // lets Kill reach the job at once. A start failure comes later, through the exit file.
      const Report report_read = ReadReport(report[0]);
      close(report[0]);
      running_[key] = Tracked{.shepherd = out.pid, .child = true, .job_pgid = report_read.pgid};
      return out.pid;
    }
    if (out.kind == SpawnOutcome::Kind::kNotStarted && spawner_->alive()) {
      close(report[0]);
      return Error(Code::kUnavailable, out.error);
    }
    // The spawner is gone. If it had the plan, a shepherd may run it: once no process holds
    // the report pipe (the dead spawner's copy is closed; a shepherd keeps its own until its
    // job has started), the spool tells whether one did.
    const Report report_read =
        out.kind == SpawnOutcome::Kind::kUnknown ? ReadReport(report[0]) : Report{.eof = true};
    close(report[0]);
    OnSpawnerDeath(out.error);
    if (out.kind == SpawnOutcome::Kind::kUnknown) {
      // EOF without a pgid and no shepherd.pid: no shepherd got as far as its records, so no
      // job process exists. Anything else is adopted like an attempt found at start-up.
      const bool started = !report_read.eof || report_read.pgid > 0;
      switch (Adopt(key, started, ended_)) {
        case Adopted::kRunning:
          return running_[key].shepherd;
        case Adopted::kEnded: {
          const Result<std::string> text =
              ReadSmallFile(PathsOf(options_.spool_dir, key).shepherd_pid);
          const Result<ProcessId> recorded =
              text ? ParseProcessId(*text) : Result<ProcessId>(std::unexpected(text.error()));
          return recorded ? recorded->pid : 0;
        }
        case Adopted::kNothing:
          break;
      }
    }
    if (round > 0) return Error(Code::kUnavailable, "cannot start a shepherd: " + out.error);
    // Nothing of this attempt was started: once more, with a new spawner.
  }
}

Status PosixLauncher::EnsureSpawner() {
  if (spawner_ && spawner_->alive()) return OkStatus();
  if (spawner_) OnSpawnerDeath("");
  Result<std::unique_ptr<Spawner>> spawner = Spawner::Start(options_.clock, options_.spawner_program, spawner_program_fd_);
  if (!spawner) {
    Log("cannot start a new spawner: " + spawner.error().message());
    return spawner.error();
  }
  spawner_ = std::move(*spawner);
  Log("started a new spawner (pid " + std::to_string(spawner_->pid()) + ")");
  return OkStatus();
}

void PosixLauncher::OnSpawnerDeath(const std::string& why) {
  if (!spawner_) return;
  // Exits it reported before it died are still in the socket: they count.
  ApplyExits(spawner_->TakeExits());
  const pid_t dead = spawner_->pid();
  spawner_.reset();  // reaps it
  // Its shepherds run on, now orphans: watched through pidfds like those of an earlier execd.
  std::vector<AttemptKey> orphans;
  for (const auto& [key, tracked] : running_) {
    if (tracked.child && !tracked.exited) orphans.push_back(key);
  }
  size_t still_running = 0;
  for (const AttemptKey& key : orphans) {
    if (Adopt(key, /*missing_is_lost=*/true, ended_) == Adopted::kRunning) {
      ++still_running;
    } else {
      running_.erase(key);
    }
  }
  Log("the spawner (pid " + std::to_string(dead) + ") died" +
      (why.empty() ? "" : " (" + why + ")") + "; " + std::to_string(still_running) + " of its " +
      std::to_string(orphans.size()) +
      " running shepherd(s) re-attached; a new spawner starts with the next job");
}

void PosixLauncher::ApplyExits(const std::vector<ShepherdExit>& exits) {
  for (const ShepherdExit& exit : exits) {
    for (auto& [key, tracked] : running_) {
      if (tracked.child && !tracked.exited && tracked.shepherd == exit.pid) {
        tracked.exited = true;
        tracked.status = exit.status;
        break;
      }
    }
  }
}

void PosixLauncher::Log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::fprintf(stderr, "corral launcher: %s\n", line.c_str());
  }
}

}  // namespace corral
