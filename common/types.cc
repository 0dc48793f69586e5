// Names of node states (wire, SQLite and --json).
#include "common/types.h"

namespace corral {

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
