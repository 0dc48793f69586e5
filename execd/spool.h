// The spool's layout and the small files shepherds leave there: SPOOL/jobs/<id>.<attempt>/
// {script, tmp/, shepherd.pid, job.pgid, exit}. Writing and parsing them, and telling whether a
// recorded pid is still the same process. No process control and no clock reads here.
//
// Who may read what (as root): SPOOL and SPOOL/jobs are the execd's, 0711 (searchable, not
// listable); an attempt's directory is the execd's with the job's group, 0710; in it the
// execd's records are 0600 and the files the job uses (script, tmp/, result.json,
// params.json) are its owner's, 0700/0600. So a job reaches its own files by name and
// nothing of the execd's or of another user's job.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "execd/launcher.h"

namespace corral {

// Where one attempt's files live.
struct AttemptPaths {
  std::string dir;           // SPOOL/jobs/<id>.<attempt>
  std::string script;        // the job script (not for binary jobs)
  std::string tmpdir;        // the job's TMPDIR
  std::string shepherd_pid;  // FormatProcessId of the shepherd, written by the shepherd
  std::string job_pgid;      // FormatProcessId of the job's group leader (pid = pgid)
  std::string exit;          // FormatExitFile, written once the job has ended
};
AttemptPaths PathsOf(const std::string& spool_dir, const AttemptKey& key);

// The attempt named by a directory of SPOOL/jobs ("42.1"); nullopt for any other name.
std::optional<AttemptKey> ParseAttemptName(std::string_view name);

// The attempt directories of SPOOL/jobs, in key order. Other entries are ignored.
Result<std::vector<AttemptKey>> ListAttempts(const std::string& spool_dir);

// ProcessId (launcher.h) as "pid=N\nstart_ticks=N\nboot_id=S\n", and back. Parse:
// InvalidArgument naming the bad line or field.
std::string FormatProcessId(const ProcessId& id);
Result<ProcessId> ParseProcessId(std::string_view text);

// This boot's id (/proc/sys/kernel/random/boot_id), read once per process: it cannot
// change while the process lives. "" when unreadable.
const std::string& BootId();

// The identity of `pid` now. NotFound when it does not exist or has exited (a zombie).
Result<ProcessId> IdentifyProcess(pid_t pid);

// True while the process `recorded` describes still runs (same pid, start, boot; not a zombie).
bool StillRunning(const ProcessId& recorded);

// The exit file: one "key=value" line per field of `end` but its key (exit_code, signal,
// start_time, end_time, cpu_ms, max_rss_kb, failure, reason). In values, '\' and newlines
// are escaped as "\\" and "\n". Parse ignores unknown keys (newer shepherds may add some)
// and needs exit_code: InvalidArgument naming the line otherwise.
std::string FormatExitFile(const AttemptEnd& end);
Result<AttemptEnd> ParseExitFile(std::string_view text, const AttemptKey& key);

// Writes all of `text` to `fd` (retrying short writes and EINTR); `path` names the file
// in the error. Does not close `fd`.
Status WriteAll(int fd, std::string_view text, const std::string& path);

// Writes `text` to `path` (mode 0600) through `path`.tmp and rename, so that readers see the
// whole file or none. With `durable`, the data and the directory entry are fsync'd first.
Status WriteFileAtomically(const std::string& path, std::string_view text, bool durable);

// The contents of a small file. NotFound when it does not exist.
Result<std::string> ReadSmallFile(const std::string& path);

// Removes `path` and, if it is a directory, everything below it, without ever following a
// symlink: each directory is opened relative to its parent with O_NOFOLLOW, so a job that
// swaps a directory of its TMPDIR for a symlink to /etc while root removes it gets only its
// symlink removed. OK when `path` does not exist; Internal naming `path` when something
// stayed (e.g. a tree deeper than the descriptors this process may open).
Status RemoveTree(const std::string& path);

}  // namespace corral
