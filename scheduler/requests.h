// How the scheduler reads a submitted request against the cluster it runs: `-l` names
// that are consumables or node features, the site's defaults, and whether any node
// could ever hold the job. Pure: a function of the request, the state and the config.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "scheduler/core.h"

namespace corral {

struct Interpreted {
  JobSpec spec;                       // the request as it will be stored and matched
  std::vector<std::string> warnings;  // for the submitter, e.g. unknown -l names
};

// Moves `-l NAME=N` of known consumables (cluster-wide from the config, node-local from
// any node's inventory) into request.consumables and `-l NAME` of known node features
// into features; applies the site's default h_rt and memory per core. A bad count
// ("-l matlab=two") is an InvalidArgument naming it.
Result<Interpreted> InterpretRequest(const JobSpec& submitted, const ClusterState& state,
                                     const CoreConfig& config);

// Why `spec` can never run on this cluster ("no node has 8 GPUs; largest has 4"), or ""
// if some node could hold it (or no node has registered yet: nothing to judge by).
std::string NeverFits(const ClusterState& state, const JobSpec& spec, const CoreConfig& config);

// The part of `request` a node provides (cluster-wide consumables removed) and the part
// the cluster-wide pool provides.
Resources NodePart(const Resources& request, const CoreConfig& config);
std::map<std::string, int64_t> ClusterPart(const Resources& request, const CoreConfig& config);

// Whether `node` has every feature in `features`.
bool HasFeatures(const Node& node, const std::vector<std::string>& features);

// What a node can hold at most: its cores multiplied by the oversubscription factor.
Resources Capacity(const Node& node, const CoreConfig& config);

}  // namespace corral
