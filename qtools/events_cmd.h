// corral events: job and node state changes as JSON lines, pushed by the scheduler
// (its event endpoint, ZeroMQ PUB) instead of polled; resumable by sequence number.
#pragma once

#include <string>
#include <vector>

namespace corral {

// The whole of `corral events ARGS...`; returns the exit status.
int RunEvents(const std::vector<std::string>& args);

}  // namespace corral
