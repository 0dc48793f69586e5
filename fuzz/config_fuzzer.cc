// Fuzzes the daemons' configuration files (common/config.h): the same YAML goes to the
// scheduler's and the execd's parsers, which must return a config or an error naming
// file and line, never throw or crash.
#include <cstdint>
#include <string>

#include "common/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace corral;
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)ParseSchedulerConfig(text, "scheduler.yaml");
  (void)ParseExecdConfig(text, "execd.yaml");
  (void)ValidResourceName(text);
  return 0;
}
