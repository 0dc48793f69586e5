// Resource arithmetic, unit names, and names of node states (wire, SQLite and --json).
#include "common/types.h"

namespace corral {

bool Resources::Fits(const Resources& free) const {
  if (cores > free.cores || mem_mb > free.mem_mb || gpus > free.gpus) return false;
  for (const auto& [name, amount] : consumables) {
    if (amount > free.Consumable(name)) return false;
  }
  return true;
}

Resources& Resources::operator+=(const Resources& o) {
  cores += o.cores;
  mem_mb += o.mem_mb;
  gpus += o.gpus;
  for (const auto& [name, amount] : o.consumables) consumables[name] += amount;
  return *this;
}

std::string UnitName(const UnitKey& key) {
  return key.task == 0 ? std::to_string(key.job)
                       : std::to_string(key.job) + "." + std::to_string(key.task);
}

Resources& Resources::operator-=(const Resources& o) {
  cores -= o.cores;
  mem_mb -= o.mem_mb;
  gpus -= o.gpus;
  for (const auto& [name, amount] : o.consumables) consumables[name] -= amount;
  return *this;
}

std::string_view NodeStateName(NodeState state) {
  return state == NodeState::kUp ? "up" : "unreachable";
}

std::string_view NodeDisplayState(const Node& node, int running_cores) {
  if (node.state == NodeState::kUnreachable) return "unreachable";
  if (!node.enabled) return running_cores > 0 ? "draining" : "down";
  return "up";
}

std::optional<NodeState> NodeStateFromName(std::string_view name) {
  if (name == "up") return NodeState::kUp;
  if (name == "unreachable") return NodeState::kUnreachable;
  return std::nullopt;
}

}  // namespace corral
