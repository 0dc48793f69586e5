// Sweep parameters in, results out (job_data.h).
#include "execd/job_data.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cctype>

#include "common/protocol.h"

namespace corral {

std::map<std::string, std::string> ParamVariables(const std::string& params_json) {
  std::map<std::string, std::string> env;
  if (params_json.empty()) return env;
  const nlohmann::json j = nlohmann::json::parse(params_json, nullptr, false);
  if (!j.is_object()) return env;
  for (const auto& [name, value] : j.items()) {
    std::string var = "PARAM_";
    for (char c : name) {
      var += std::isalnum(static_cast<unsigned char>(c))
                 ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                 : '_';
    }
    env[var] = value.is_string() ? value.get<std::string>() : value.dump();
  }
  return env;
}

void ReadJobResult(const std::string& path, AttemptEnd& end) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return;  // no result file: nothing to report
  std::string text;
  char buf[8192];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxResultBytes) break;  // never read an unbounded file
  }
  close(fd);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) return;
  if (text.size() > kMaxResultBytes) {
    end.result_error = "$CORRAL_RESULT is larger than " + std::to_string(kMaxResultBytes / 1024) +
                       " KiB; not kept";
    return;
  }
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    end.result_error = "$CORRAL_RESULT is not valid JSON; not kept";
  } else if (!j.is_object()) {
    end.result_error = "$CORRAL_RESULT is not a JSON object; not kept";
  } else {
    end.result = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

}  // namespace corral
