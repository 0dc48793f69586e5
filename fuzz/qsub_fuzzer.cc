// Fuzzes qsub's option parsing (qtools/qsub_options.h). The input's first line is the
// command line, split into words as a directive is (SplitOptionWords); the rest is the
// script, whose `#$` and `#PBS` directives ParseQsub reads. A parsed submission is then
// encoded as the SubmitRequest qsub would send. Any crash or sanitizer report is a finding.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/protocol.h"
#include "qtools/qsub_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace corral;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t newline = text.find('\n');
  const std::string_view first = text.substr(0, newline);
  (void)ValidateJobName(first);
  Result<std::vector<std::string>> words = SplitOptionWords(first);
  if (!words) return 0;
  QsubInput in;
  in.args = std::move(*words);
  in.script_text = newline == std::string_view::npos ? "" : std::string(text.substr(newline + 1));
  in.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/home/alice"}, {"SHELL", "/bin/sh"},
            {"FOO", "bar"}};
  in.cwd = "/home/alice/work";
  in.home = "/home/alice";
  in.host = "head";
  in.user = "alice";
  Result<QsubCommandLine> cl = SplitQsubCommandLine(in.args);
  if (cl) (void)ScriptFromStdin(*cl);
  Result<ParsedQsub> parsed = ParseQsub(in);
  if (parsed) (void)Encode(SubmitRequest{parsed->spec});
  return 0;
}
