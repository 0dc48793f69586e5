#include "scheduler/events.h"

#include "scheduler/authz.h"

namespace corral {

std::vector<Event> EventsOf(const ClusterState& state, const Actions& actions, TimeMs now) {
  std::vector<Event> out;
  for (const Job& job : actions.put_jobs) {
    const Job* before = FindUnit(state, KeyOf(job));
    // A record seen earlier in the same batch counts as "before" for the next change.
    std::string from = before ? std::string(StateName(before->state)) : "";
    for (const Event& e : out) {
      if (e.kind == "job" && e.job == job.id && e.task == job.task) from = e.to;
    }
    const std::string to(StateName(job.state));
    if (from == to) continue;
    Event e;
    e.time = now;
    e.kind = "job";
    e.job = job.id;
    e.task = job.task;
    e.attempt = job.attempt;
    e.owner = job.owner;
    e.name = SpecOf(state, job).name.empty() ? job.spec.name : SpecOf(state, job).name;
    e.node = job.node;
    e.from = from;
    e.to = to;
    if (IsFinal(job.state)) {
      e.reason = job.reason.empty() && !job.attempts.empty() ? job.attempts.back().exit_reason
                                                             : job.reason.get();
      e.exit_code = job.exit_code;
    }
    out.push_back(std::move(e));
  }
  for (const Node& node : actions.put_nodes) {
    auto it = state.nodes.find(node.name);
    auto describe = [](const Node& n) {
      return n.enabled ? std::string(NodeStateName(n.state)) : "disabled";
    };
    const std::string from = it == state.nodes.end() ? "" : describe(it->second);
    const std::string to = describe(node);
    if (from == to) continue;
    Event e;
    e.time = now;
    e.kind = "node";
    e.node = node.name;
    e.from = from;
    e.to = to;
    out.push_back(std::move(e));
  }
  return out;
}

bool MaySeeEvent(const Caller& caller, const Event& event, const CoreConfig& config) {
  if (event.kind != "job" || !config.private_jobs) return true;
  const Role role = RoleOf(caller, config);
  return role == Role::kAdmin || role == Role::kOperator ||
         (role == Role::kUser && caller.user == event.owner);
}

}  // namespace corral
