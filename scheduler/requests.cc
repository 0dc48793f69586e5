// Request interpretation and the "can this ever run?" check (requests.h).
#include "scheduler/requests.h"

#include <algorithm>
#include <charconv>

namespace corral {
namespace {

bool IsTrue(const std::string& value) {
  std::string v = value;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return v == "true" || v == "1" || v == "yes" || v == "y";
}

bool IsConsumable(const std::string& name, const ClusterState& state, const CoreConfig& config) {
  if (config.consumables.count(name)) return true;
  for (const auto& [_, node] : state.nodes) {
    if (node.total.consumables.count(name)) return true;
  }
  return false;
}

bool IsFeature(const std::string& name, const ClusterState& state) {
  for (const auto& [_, node] : state.nodes) {
    if (std::binary_search(node.features.begin(), node.features.end(), name)) return true;
  }
  return false;
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

Result<Interpreted> InterpretRequest(const JobSpec& submitted, const ClusterState& state,
                                     const CoreConfig& config) {
  Interpreted out{submitted, {}};
  JobSpec& spec = out.spec;
  for (const auto& [name, value] : submitted.other_resources) {
    if (name == "s_rt") continue;  // recorded by qsub; Corral has no soft limit
    if (IsConsumable(name, state, config)) {
      int64_t n = -1;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || n < 0) {
        return Error(Code::kInvalidArgument, "-l " + name + "=" + value + ": '" + value +
                                                 "' is not a count of the consumable " + name);
      }
      spec.other_resources.erase(name);
      if (n > 0) spec.request.consumables[name] = n;
    } else if (IsTrue(value) && IsFeature(name, state)) {
      spec.other_resources.erase(name);
      if (std::find(spec.features.begin(), spec.features.end(), name) == spec.features.end()) {
        spec.features.push_back(name);
      }
    } else {
      out.warnings.push_back("unknown resource '" + name + "' in -l " + name +
                             (value == "TRUE" ? "" : "=" + value) + ": recorded, not enforced");
    }
  }
  std::sort(spec.features.begin(), spec.features.end());
  if (spec.h_rt_s == 0) spec.h_rt_s = config.default_h_rt_s;
  if (spec.request.mem_mb == 0) {
    spec.request.mem_mb = config.default_mem_per_core_mb * spec.request.cores;
  }
  return out;
}

Resources NodePart(const Resources& request, const CoreConfig& config) {
  if (request.consumables.empty()) return request;
  Resources part = request;
  std::erase_if(part.consumables,
                [&](const auto& c) { return config.consumables.count(c.first) > 0; });
  return part;
}

std::map<std::string, int64_t> ClusterPart(const Resources& request, const CoreConfig& config) {
  std::map<std::string, int64_t> part;
  for (const auto& [name, n] : request.consumables) {
    if (config.consumables.count(name)) part[name] = n;
  }
  return part;
}

bool HasFeatures(const Node& node, const std::vector<std::string>& features) {
  for (const std::string& f : features) {
    if (std::find(node.features.begin(), node.features.end(), f) == node.features.end()) {
      return false;
    }
  }
  return true;
}

Resources Capacity(const Node& node, const CoreConfig& config) {
  Resources cap = node.total;
  cap.cores *= std::max(1, config.oversubscribe);
  return cap;
}

std::string NeverFits(const ClusterState& state, const JobSpec& spec, const CoreConfig& config) {
  // The cluster-wide pool first: no node can make up for a missing license.
  for (const auto& [name, n] : ClusterPart(spec.request, config)) {
    const int64_t total = config.consumables.at(name);
    if (n > total) {
      return "the cluster has " + std::to_string(total) + " " + name + "; the job asks for " +
             std::to_string(n);
    }
  }
  if (state.nodes.empty()) return "";  // no node has registered yet: nothing to judge by
  const Resources need = NodePart(spec.request, config);
  Resources largest;  // per dimension, over the nodes that have the features
  bool any_with_features = false;
  for (const auto& [name, node] : state.nodes) {
    if (!HasFeatures(node, spec.features)) continue;
    Resources cap = Capacity(node, config);
    // Oversubscription lets jobs share cores, but one job still needs distinct ones.
    const bool fits = need.Fits(cap) && need.cores <= node.total.cores;
    cap.cores = node.total.cores;
    if (fits) return "";
    any_with_features = true;
    largest.cores = std::max(largest.cores, cap.cores);
    largest.mem_mb = std::max(largest.mem_mb, cap.mem_mb);
    largest.gpus = std::max(largest.gpus, cap.gpus);
    for (const auto& [c, n] : cap.consumables) {
      largest.consumables[c] = std::max(largest.Consumable(c), n);
    }
  }
  if (!any_with_features) {
    return spec.features.size() == 1 ? "no node has the feature " + spec.features[0]
                                     : "no node has all of the features " + Join(spec.features);
  }
  const std::string among = spec.features.empty() ? "" : " with " + Join(spec.features);
  auto largest_has = [&](const std::string& what) { return "; largest" + among + " has " + what; };
  if (need.gpus > largest.gpus) {
    return "no node" + among + " has " + std::to_string(need.gpus) + " GPUs" +
           largest_has(std::to_string(largest.gpus));
  }
  if (need.cores > largest.cores) {
    return "no node" + among + " has " + std::to_string(need.cores) + " cores" +
           largest_has(std::to_string(largest.cores));
  }
  if (need.mem_mb > largest.mem_mb) {
    return "no node" + among + " has " + std::to_string(need.mem_mb) + " MiB of memory" +
           largest_has(std::to_string(largest.mem_mb) + " MiB");
  }
  for (const auto& [c, n] : need.consumables) {
    if (n > largest.Consumable(c)) {
      return "no node" + among + " has " + std::to_string(n) + " " + c +
             largest_has(std::to_string(largest.Consumable(c)));
    }
  }
  return "no node" + among + " has all of " + std::to_string(need.cores) + " cores, " +
         std::to_string(need.mem_mb) + " MiB of memory, " + std::to_string(need.gpus) +
         " GPUs and the consumables requested at once";
}

}  // namespace corral
