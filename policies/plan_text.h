// Words for the planner's reasons: requests, durations and shortfalls as users read them.
// Internal to the planner (planner.cc); exposed for its tests.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/types.h"

namespace corral::planning {

// "4 cores, 8G memory, 2 GPUs, scratch_gb=100, matlab=2"; memory in G when whole, else M.
std::string RequestText(const Resources& node_part,
                        const std::map<std::string, int64_t>& cluster_part);

// A wait from now in short words: "under 1m", "42m", "1h05m", "2d03h".
std::string InText(int64_t ms);

// "a, b and c".
std::string ListText(const std::vector<std::string>& items);

}  // namespace corral::planning
