// What this node offers: cores (the CPUs of the execd's own affinity mask, so a cpuset
// limits it), memory, GPUs and the host name, and how the scheduler's core indices map
// onto real CPUs. Detection reads the kernel and `nvidia-smi -L`; the config's `cores` /
// `memory` / `gpus` override it. No confinement here: the job child binds (shepherd.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "common/types.h"

namespace corral {

// CPUs in this process's affinity mask (CPU_COUNT of sched_getaffinity); at least 1.
int DetectCores();

// The CPU ids of this process's affinity mask, ascending; {0} if it cannot be read. The
// execd reads it once at start: core index i of an allocation runs on the i-th of them.
std::vector<int> AllowedCpus();

// The real CPUs for the core indices `cores` of an allocation: index i -> cpus[i % n] (n =
// cpus.size(); the modulo only matters when a node offers more cores than it has CPUs, as
// in an oversubscribed test cluster). Ascending, without duplicates. InvalidArgument for a
// negative or repeated index, or an empty `cpus`. Pure.
Result<std::vector<int>> MapCoresToCpus(const std::vector<int>& cores,
                                        const std::vector<int>& cpus);

// "0,2,3" (no spaces; "" for an empty list), as in CUDA_VISIBLE_DEVICES. Pure.
std::string JoinIds(const std::vector<int>& ids);

// The value of --gpus: a list "0,1,3" (ids, each at most once) or a count "4" meaning
// 0,1,2,3 ("0" or "" means no GPUs). Ascending. InvalidArgument naming the bad part. Pure.
Result<std::vector<int>> ParseGpuList(std::string_view text);

// The GPU indices in the output of `nvidia-smi -L`, one line per GPU:
//   GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-3b2c...)
// Other lines (MIG devices, indented, and blank lines) are ignored. Ascending.
// InvalidArgument for a "GPU " line without an index and ':' or with an index twice. Pure.
Result<std::vector<int>> ParseNvidiaSmiList(std::string_view text);

// The GPUs of `nvidia-smi -L`, run from the first directory of `search_path` (a $PATH
// value) that holds an executable nvidia-smi, killed if it has not finished within
// `timeout_ms`. NotFound when there is no nvidia-smi (no GPUs, not an error); Unavailable
// when it fails, times out or prints nothing parseable (the message says which).
Result<std::vector<int>> DetectNvidiaGpus(const std::string& search_path, int64_t timeout_ms);

// Physical memory in MiB: sysconf(_SC_PHYS_PAGES) * page size, else MemTotal of
// /proc/meminfo; 0 when neither answers.
int64_t DetectMemoryMb();

// The 1-minute load average of /proc/loadavg text ("0.52 0.48 ..."); 0 if unreadable.
double ParseLoadAverage(std::string_view loadavg);
double ReadLoadAverage();

// MemTotal of /proc/meminfo text ("MemTotal:  16314196 kB") in MiB, rounded down.
// NotFound when there is no MemTotal line, InvalidArgument when it is malformed.
Result<int64_t> ParseMemTotalMb(std::string_view meminfo);

// The host name as gethostname reports it (not shortened at the first '.');
// "localhost" if gethostname fails.
std::string LocalHostName();

// Everything the execd offers and binds to, decided once at start.
struct NodeInventory {
  Resources total;                 // cores, mem_mb, gpus (== gpu_ids.size())
  std::vector<int> gpu_ids;        // ascending
  std::vector<int> cpus;           // AllowedCpus(): where core indices run
  std::vector<std::string> features;  // from the config, sorted
  std::vector<std::string> notes;  // how each figure was found, one log line each
};

// Detected resources with `config.cores` / `config.mem_mb` / `config.gpus` taking
// precedence; GPUs otherwise from DetectNvidiaGpus(`search_path`, `gpu_timeout_ms`), none
// when that fails (said in `notes`). Never fails.
NodeInventory DetectInventory(const ExecdConfig& config, const std::string& search_path,
                              int64_t gpu_timeout_ms = 10000);

}  // namespace corral
