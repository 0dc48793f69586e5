// Bad input at the scheduler's sockets: garbage, unknown types, wrong field types,
// multi-frame messages, a client posing as a node, and tcp clients trying to change
// things. Each gets an error reply (or, above the size limit, a dropped connection),
// nothing changes, and the daemon keeps serving.
#include <doctest/doctest.h>


#include "common/protocol.h"
#include "common/transport.h"
#include "tests/e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

namespace {

}  // namespace

TEST_CASE("hostile_messages") {
  TestCluster cluster({.nodes = 1, .cores = 1});
  const std::string ipc = cluster.ipc();
  CHECK(ErrorText(RawExchange(ipc, {"\x01\x02garbage"})).find("not valid JSON") != std::string::npos);
  CHECK(ErrorText(RawExchange(ipc, {R"({"v":1,"type":"format_disk"})"})).find("format_disk") !=
        std::string::npos);
  CHECK(ErrorText(RawExchange(ipc, {R"({"v":1,"type":"cancel","ids":"all","user":""})"}))
            .find("'ids'") != std::string::npos);
  CHECK(ErrorText(RawExchange(ipc, {"{}", "{}"})).find("one frame") != std::string::npos);
  // A client pretending to be node1's execd (wrong routing id) is refused.
  CHECK(ErrorText(RawExchange(ipc, {Encode(JobExit{"node1", 1, 1, 0, 0, 1, 2, 0, 0, ""})}))
            .find("routing id") != std::string::npos);
  // Over tcp nobody is known: looking is fine, changing is not.
  auto endpoints = ReadEndpointsFile(cluster.dir() + "/state/endpoints");
  REQUIRE(endpoints.has_value());
  const std::string tcp = endpoints->at(0);
  REQUIRE(tcp.rfind("tcp://", 0) == 0);
  JobSpec spec;
  spec.name = "x";
  spec.script = "#!/bin/sh\ntrue\n";
  spec.cwd = "/tmp";
  CHECK(ErrorText(RawExchange(tcp, {Encode(SubmitRequest{spec})})).find("ipc://") !=
        std::string::npos);
  auto query = RawExchange(tcp, {Encode(QueryRequest{{}, "", true})});
  REQUIRE(query.has_value());
  CHECK(std::holds_alternative<QueryReply>(query->message));
  // Above the size limit ZeroMQ drops the connection: no reply, no crash.
  CHECK_FALSE(RawExchange(ipc, {std::string(kMaxMessageBytes + 1024, 'x')}).has_value());

  // Nothing was created, and the scheduler still serves and runs jobs.
  Client client = cluster.Connect();
  auto all = client.Call(QueryRequest{{}, "", true}, Slack(5000));
  REQUIRE(all.has_value());
  CHECK(std::get<QueryReply>(*all).jobs.empty());
  JobId id = cluster.Submit("#!/bin/sh\nexit 0\n", "after");
  CHECK(cluster.WaitJobs({id}, 10000).at(0).state == JobState::kCompleted);
}
