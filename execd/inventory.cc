// Cores, memory and host name of this node, read from the kernel. Detection never fails:
// a missing answer falls back (1 core, 0 MiB) and the admin's config can override it.
#include "execd/inventory.h"

#include <sched.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>

namespace corral {

int DetectCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  // More than CPU_SETSIZE CPUs makes the fixed-size call fail; the online count is then
  // the better guess than nothing.
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<int>(online) : 1;
}

Result<int64_t> ParseMemTotalMb(std::string_view meminfo) {
  constexpr std::string_view kKey = "MemTotal:";
  size_t pos = 0;
  while (pos < meminfo.size()) {
    size_t end = meminfo.find('\n', pos);
    if (end == std::string_view::npos) end = meminfo.size();
    std::string_view line = meminfo.substr(pos, end - pos);
    pos = end + 1;
    if (!line.starts_with(kKey)) continue;
    line.remove_prefix(kKey.size());
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    int64_t kb = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), kb);
    std::string_view unit(p, line.data() + line.size() - p);
    while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    if (ec != std::errc() || kb < 0 || (unit != "kB" && !unit.empty())) {
      return Error(Code::kInvalidArgument, "/proc/meminfo: malformed MemTotal line");
    }
    return kb / 1024;
  }
  return Error(Code::kNotFound, "/proc/meminfo: no MemTotal line");
}

int64_t DetectMemoryMb() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    return static_cast<int64_t>(pages) * page_size / (1024 * 1024);
  }
  std::ifstream in("/proc/meminfo");
  std::stringstream text;
  text << in.rdbuf();
  Result<int64_t> mb = ParseMemTotalMb(text.str());
  return mb ? *mb : 0;
}

std::string LocalHostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

Resources NodeResources(const ExecdConfig& config) {
  Resources r;
  r.cores = config.cores ? *config.cores : DetectCores();
  r.mem_mb = config.mem_mb ? *config.mem_mb : DetectMemoryMb();
  return r;
}

}  // namespace corral
