// The events of a batch (corral events): what changed between the state before a batch of
// Actions is installed and after. Pure; the server numbers them, the store keeps them
// with the batch, and they are published once the batch has committed.
#pragma once

#include <vector>

#include "common/protocol.h"
#include "scheduler/core.h"

namespace corral {

// One Event per job or task whose state changes in `actions` (a new job: from ""), and
// per node whose state or enabled flag changes; seq is left 0. `state` is the state
// before `actions` is installed.
std::vector<Event> EventsOf(const ClusterState& state, const Actions& actions, TimeMs now);

// Whether `caller` may see `event` (private_jobs: only its own jobs; nodes always).
bool MaySeeEvent(const Caller& caller, const Event& event, const CoreConfig& config);

}  // namespace corral
