// A real network partition: node1's execd lives in a network namespace of this test's
// own, joined to the host by a veth pair. Cutting the link (not stopping a process)
// makes the node unreachable; its job is requeued elsewhere; when the link comes back
// the stale attempt is killed and the job is recorded once. Skipped (with a message)
// where network namespaces cannot be created (not root, no iproute2).
#include <doctest/doctest.h>
#include <unistd.h>

#include <sstream>

#include "tests/e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

namespace {

bool Sh(const std::string& command) {
  RunResult r = Run({"/bin/sh", "-c", command}, {}, "", "", 10000);
  return r.exit_code == 0;
}

// A namespace and veth pair, removed on destruction. Addresses are this test's own,
// on a link that exists only inside this machine.
struct Netns {
  explicit Netns(int tag) {
    const std::string t = std::to_string(tag);
    name = "cns" + t;
    host_if = "cvh" + t;
    ns_if = "cvn" + t;
    const std::string ns = "ip netns exec " + name + " ";
    ok = Sh("ip netns add " + name) &&
         Sh("ip link add " + host_if + " type veth peer name " + ns_if) &&
         Sh("ip link set " + ns_if + " netns " + name) &&
         Sh("ip addr add " + host_ip + "/30 dev " + host_if) && Sh("ip link set " + host_if + " up") &&
         Sh(ns + "ip addr add " + ns_ip + "/30 dev " + ns_if) && Sh(ns + "ip link set " + ns_if + " up") &&
         Sh(ns + "ip link set lo up");
  }
  ~Netns() {
    Sh("ip link del " + host_if + " 2>/dev/null");
    Sh("ip netns del " + name + " 2>/dev/null");
  }
  bool ok = false;
  std::string name, host_if, ns_if;
  std::string host_ip = "10.231.77.1";
  std::string ns_ip = "10.231.77.2";
};

}  // namespace

TEST_CASE("network_partition") {
  Netns net(getpid() % 100000);
  if (!net.ok || geteuid() != 0) {
    MESSAGE("skipped: cannot create a network namespace here (needs root and iproute2)");
    return;
  }
  TestCluster cluster({.nodes = 2,
                       .cores = 1,
                       .heartbeat_ms = 200,
                       .node_timeout_ms = 1500,
                       .netns = net.name,
                       .netns_node = 1,
                       .netns_scheduler_ip = net.host_ip});
  JobId id = cluster.Submit(
      "#!/bin/sh\necho \"start $CORRAL_ATTEMPT\" >> runs.$JOB_ID\necho $$ > pid.$CORRAL_ATTEMPT\n"
      "sleep 5\necho \"end $CORRAL_ATTEMPT\" >> runs.$JOB_ID\n",
      "part");
  const std::string runs = cluster.work() + "/runs." + std::to_string(id);
  REQUIRE(WaitUntil([&] { return !ReadFile(runs).empty(); }, 10000));
  REQUIRE(ReadFile(runs) == "start 1\n");
  Client client = cluster.Connect();
  auto job = [&] {
    auto r = client.Call(QueryRequest{{id}, "", true}, Slack(5000));
    REQUIRE(r.has_value());
    return std::get<QueryReply>(*r).jobs.at(0);
  };
  REQUIRE(job().node == "node1");

  REQUIRE(Sh("ip link set " + net.host_if + " down"));  // the partition
  REQUIRE_MESSAGE(WaitUntil([&] { return job().attempt == 2; }, 10000), cluster.Logs());
  CHECK(job().node == "node2");
  REQUIRE(Sh("ip link set " + net.host_if + " up"));  // healed while attempt 1 still runs
  const pid_t stale = std::stoi(ReadFile(cluster.work() + "/pid.1"));
  CHECK_MESSAGE(WaitUntil([&] { return !Alive(stale); }, 15000), cluster.Logs());
  std::vector<Job> done = cluster.WaitJobs({id}, 30000);
  CHECK(done.at(0).state == JobState::kCompleted);
  CHECK(done.at(0).attempt == 2);
  CHECK(done.at(0).attempts.at(0).exit_reason.find("unreachable") != std::string::npos);
  CHECK(ReadFile(runs).find("end 1") == std::string::npos);
  CHECK(ReadFile(runs).find("end 2") != std::string::npos);
}
