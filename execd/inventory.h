// What this node offers: cores (the CPUs of the execd's own affinity mask, so a cpuset
// limits it), memory and the host name. Detection reads the kernel; the config's
// `cores` / `memory` override it. No confinement here: that belongs to the launcher.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/config.h"
#include "common/status.h"
#include "common/types.h"

namespace corral {

// CPUs in this process's affinity mask (CPU_COUNT of sched_getaffinity); at least 1.
int DetectCores();

// Physical memory in MiB: sysconf(_SC_PHYS_PAGES) * page size, else MemTotal of
// /proc/meminfo; 0 when neither answers.
int64_t DetectMemoryMb();

// MemTotal of /proc/meminfo text ("MemTotal:  16314196 kB") in MiB, rounded down.
// NotFound when there is no MemTotal line, InvalidArgument when it is malformed.
Result<int64_t> ParseMemTotalMb(std::string_view meminfo);

// The host name as gethostname reports it (not shortened at the first '.');
// "localhost" if gethostname fails.
std::string LocalHostName();

// Detected resources with `config.cores` / `config.mem_mb` taking precedence.
Resources NodeResources(const ExecdConfig& config);

}  // namespace corral
