// A cluster driven through the pure core exactly as the server drives it: requests and
// node messages go through HandleClient/HandleNode, Tick() runs Decide, and every result
// is installed. Shared by the core's unit tests.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "builders.h"
#include "scheduler/core.h"

namespace corral::testing {

// The policy engine of policy YAML `yaml` (origin "p.yaml"); REQUIREs that it parses.
inline std::shared_ptr<const PolicyEngine> Engine(const std::string& yaml) {
  Result<Policy> policy = ParsePolicy(yaml, "p.yaml");
  REQUIRE_MESSAGE(policy.has_value(), (policy ? "" : policy.error().message()));
  return std::make_shared<const PolicyEngine>(std::move(*policy));
}

// A cluster driven through the core exactly as the server drives it.
struct Cluster {
  ClusterState state;
  CoreConfig config{1000, 3000};
  TimeMs now = 1000000;
  std::vector<Order> orders;

  Message Client(const Message& req, const Caller& caller = User()) {
    Outcome o = HandleClient(state, req, caller, config, now);
    Install(state, o.actions);
    for (Order& order : o.actions.orders) orders.push_back(order);
    return *o.reply;
  }
  std::optional<Message> FromNode(const Message& msg) {
    Outcome o = HandleNode(state, msg, config, now);
    Install(state, o.actions);
    for (Order& order : o.actions.orders) orders.push_back(order);
    return o.reply;
  }
  void Tick() {
    Actions a = Decide(state, config, now);
    Install(state, a);
    for (Order& order : a.orders) orders.push_back(order);
  }
  JobId Submit(JobSpec spec, const Caller& caller = User()) {
    Message m = Client(SubmitRequest{std::move(spec)}, caller);
    REQUIRE(std::holds_alternative<SubmitReply>(m));
    return std::get<SubmitReply>(m).id;
  }
  void AddNode(const std::string& name, int cores, int64_t mem = 4096, int gpus = 0) {
    std::vector<int> ids;
    for (int g = 0; g < gpus; ++g) ids.push_back(g);
    FromNode(RegisterNode{name, {cores, mem, gpus}, {}, ids});
  }
  const Job& job(JobId id) { return state.jobs.at(id); }
  std::vector<Order> TakeOrders() { return std::exchange(orders, {}); }
};

inline std::string ErrorOf(const Message& m) {
  REQUIRE(std::holds_alternative<ErrorReply>(m));
  return std::get<ErrorReply>(m).message;
}


}  // namespace corral::testing
