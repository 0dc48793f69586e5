// Formatting for planner reasons.
#include "policies/plan_text.h"

#include <cstdio>

namespace corral::planning {

std::string RequestText(const Resources& node_part,
                        const std::map<std::string, int64_t>& cluster_part) {
  std::vector<std::string> parts;
  if (node_part.cores > 0) {
    parts.push_back(std::to_string(node_part.cores) + (node_part.cores == 1 ? " core" : " cores"));
  }
  if (node_part.mem_mb > 0) {
    parts.push_back(node_part.mem_mb % 1024 == 0
                        ? std::to_string(node_part.mem_mb / 1024) + "G memory"
                        : std::to_string(node_part.mem_mb) + "M memory");
  }
  if (node_part.gpus > 0) {
    parts.push_back(std::to_string(node_part.gpus) + (node_part.gpus == 1 ? " GPU" : " GPUs"));
  }
  for (const auto& [name, n] : node_part.consumables) {
    if (n > 0) parts.push_back(name + "=" + std::to_string(n));
  }
  for (const auto& [name, n] : cluster_part) {
    if (n > 0) parts.push_back(name + "=" + std::to_string(n));
  }
  if (parts.empty()) return "nothing";
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

std::string InText(int64_t ms) {
  const int64_t minutes = (ms + 59999) / 60000;  // round up: never promise too early
  if (ms <= 0) return "under 1m";
  char buf[48];
  if (minutes < 60) {
    std::snprintf(buf, sizeof buf, "%lldm", static_cast<long long>(minutes));
  } else if (minutes < 24 * 60) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(minutes / 60),
                  static_cast<long long>(minutes % 60));
  } else {
    const int64_t hours = (minutes + 59) / 60;
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(hours / 24),
                  static_cast<long long>(hours % 24));
  }
  return buf;
}

std::string ListText(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += i + 1 == items.size() ? " and " : ", ";
    out += items[i];
  }
  return out;
}

}  // namespace corral::planning
