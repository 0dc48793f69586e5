// What every q-tool's main shares: the one mapping of a Status to a message and exit
// code, --help handling, the calling user, job-id arguments, and the guard that keeps
// exceptions from escaping main. Grid Engine's text itself lives in sge_format.h.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "qtools/qsub_options.h"

namespace corral::cli {

// Timeout of one request to the scheduler.
inline constexpr int64_t kCallTimeoutMs = 30000;

// Runs `body(args)` (argv without argv[0]) and returns its exit code. An exception that
// escapes `body` is reported as "<tool>: internal error: ..." with exit code 1.
int Main(std::string_view tool, int argc, char** argv,
         const std::function<int(const std::vector<std::string>&)>& body);

// The single place a Status becomes output: "<tool>: <message>" on stderr. Returns the
// exit code, 1 for every error (Grid Engine's code for usage and request errors).
int Fail(std::string_view tool, const Status& status);

// True for "--help" and "-help".
bool IsHelp(std::string_view arg);
// Writes `text` to stdout / stderr unbuffered-in-order (stdout is flushed first).
void Out(std::string_view text);
void Err(std::string_view text);

// Login name of the real uid (getpwuid), or the uid in decimal if it has no entry.
std::string CurrentUser();
// Group name of `gid`, or the gid in decimal.
std::string GroupName(uint32_t gid);

// What ParseQsub needs from this process: `args`, `script`, the environment, the
// current directory, $HOME, the host and user names (qsub and corral submit-many).
QsubInput GatherQsubInput(std::vector<std::string> args, std::string script);

// Job ids from words like "42", "42,43": InvalidArgument naming the bad word.
Result<std::vector<JobId>> ParseJobIds(std::span<const std::string> words);

// The whole of qhold (hold = true) and qrls (hold = false), which differ only in that
// flag: one HoldRequest, "modified hold of job N" per job, exit 1 if any failed.
int RunHoldTool(std::string_view tool, bool hold, const std::vector<std::string>& args);

}  // namespace corral::cli
