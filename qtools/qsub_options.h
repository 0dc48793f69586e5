// qsub's options, from argv and from the script's `#$` (and `#PBS`) directives, turned
// into a JobSpec plus qsub's own flags. Pure: no file, environment or clock access, so
// every rule of sge-compat.md §2 is unit-testable. Reading the script is qsub.cc's job.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/types.h"

namespace corral {

// One option word with its values, as found on the command line.
struct QsubOption {
  std::string name;                 // "-N", "-pe", ...
  std::vector<std::string> values;  // 0, 1 or 2 words
};

// argv split into options, the script word and its arguments. Only the arity of each
// option is checked here; values are checked by ParseQsub.
struct QsubCommandLine {
  std::vector<QsubOption> options;
  std::optional<std::string> script;  // first non-option word; nullopt = none (read stdin)
  std::vector<std::string> script_args;
  bool binary = false;                  // -b y: `script` is a command, not a file to read
  bool help = false;                    // -help / --help seen
  std::string directive_prefix = "#$";  // -C; empty = do not scan the script
};

// `args` = argv without argv[0]. Errors: unknown option ("unknown option '-x'"),
// missing value, -t ("array jobs are not supported yet"), -@.
Result<QsubCommandLine> SplitQsubCommandLine(const std::vector<std::string>& args);

// True when the script must be read from standard input ("-" or no script word).
bool ScriptFromStdin(const QsubCommandLine& cl);

// Everything ParseQsub needs, gathered by the caller.
struct QsubInput {
  std::vector<std::string> args;           // argv without argv[0]
  std::string script_text;                 // the script's bytes (ignored with -b y)
  std::map<std::string, std::string> env;  // qsub's environment
  std::string cwd;                         // qsub's absolute working directory
  std::string home;                        // the user's home directory
  std::string host;                        // this host's name (SGE_O_HOST)
  std::string user;                        // the calling user's login name (SGE_O_LOGNAME)
};

struct ParsedQsub {
  JobSpec spec;
  bool terse = false;                 // -terse: print only the job id
  bool sync = false;                  // -sync y: wait for the job and exit with its code
  bool help = false;                  // -help: print usage, submit nothing
  std::string script_label;           // script path as given, or "STDIN" (for messages)
  std::vector<std::string> warnings;  // for stderr, without the "qsub: warning: " prefix
  std::vector<std::string> hold_names;  // -hold_jid NAME: to resolve to job ids
  std::string sweep_file;               // --sweep FILE: to expand into tasks and points
};

// Applies defaults, then the script's directives top to bottom and left to right, then
// the command line left to right; a later value of an option replaces an earlier one
// (-l and -v accumulate per name). Errors are InvalidArgument; an error in a directive
// names "<script>:<line>: ". Memory requests (-l h_vmem=2G, ...) are per slot as in Grid
// Engine: spec.request.mem_mb = value x slots.
Result<ParsedQsub> ParseQsub(const QsubInput& input);

// Splits a directive line or a DRMAA native specification into words: blanks separate,
// '…' and "…" quote, a backslash escapes the next character outside single quotes.
Result<std::vector<std::string>> SplitOptionWords(std::string_view text);

// Grid Engine's rule for job names (sge_types(5)): non-empty printable ASCII, none of
// / : @ \ * ? or whitespace, not starting with a digit. Returns why not, or OK.
Status ValidateJobName(std::string_view name);

}  // namespace corral
