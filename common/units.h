// Parsing of the sizes and durations users and admins write: "4G", "512M",
// "1:30:00", "90s". Shared by qsub's -l parser and the YAML configs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace corral {

// Bytes from "1234", "4K", "512M", "4G", "1T" (powers of 1024; also "KB"/"k"/"GiB").
// A plain number is bytes, as in Grid Engine.
Result<int64_t> ParseSizeBytes(std::string_view text);
// The same rounded up to whole MiB.
Result<int64_t> ParseSizeMb(std::string_view text);

// Seconds from Grid Engine's time syntax "[[h:]m:]s" ("1:30:00", "90") or a number with a
// unit suffix "90s", "5m", "2h", "1d"; at most 2^40 seconds.
Result<int64_t> ParseDurationSeconds(std::string_view text);

// Milliseconds from a number of seconds that may be fractional ("0.5", "30") or any form
// ParseDurationSeconds accepts ("90s", "1:00").
Result<int64_t> ParseDurationMs(std::string_view text);

// "01:30:00" style for display.
std::string FormatDuration(int64_t seconds);

}  // namespace corral
