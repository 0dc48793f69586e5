// A hand-written SVG of a simulation over time: utilization (busy processors / P) in the
// upper panel, queue length (pending jobs) in the lower one. The timeline is a step
// function; each of the plot's columns shows its time-weighted mean (utilization) and its
// maximum (queue length), so a million-event run still gives a small file. Pure: returns
// the document as text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/simulator.h"

namespace corral::sim {

// `procs` is P; `title` goes on top (escaped). An empty timeline gives a valid, empty plot.
std::string TimelineSvg(const std::vector<TimelinePoint>& timeline, int64_t procs,
                        const std::string& title);

}  // namespace corral::sim
