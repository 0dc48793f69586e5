// Bad input at the scheduler's sockets: garbage, unknown types, wrong field types,
// multi-frame messages, a client posing as a node, and tcp clients trying to change
// things. Each gets an error reply (or, above the size limit, a dropped connection),
// nothing changes, and the daemon keeps serving.
#include <doctest/doctest.h>

#include <zmq.hpp>

#include "common/protocol.h"
#include "common/transport.h"
#include "tests/e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

namespace {

// Sends raw frames on a fresh DEALER and returns the decoded reply (bounded wait).
Result<Envelope> Raw(zmq::context_t& ctx, const std::string& endpoint,
                     const std::vector<std::string>& frames, const std::string& routing_id = "") {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  if (!routing_id.empty()) s.set(zmq::sockopt::routing_id, routing_id);
  s.connect(endpoint);
  for (size_t i = 0; i < frames.size(); ++i) {
    s.send(zmq::buffer(frames[i]),
           i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, std::chrono::milliseconds(3000)) == 0) {
    return Error(Code::kUnavailable, "no reply");
  }
  zmq::message_t reply;
  (void)s.recv(reply);
  return Decode(reply.to_string_view());
}

std::string ErrorText(const Result<Envelope>& r) {
  REQUIRE(r.has_value());
  REQUIRE(std::holds_alternative<ErrorReply>(r->message));
  return std::get<ErrorReply>(r->message).message;
}

}  // namespace

TEST_CASE("hostile_messages") {
  TestCluster cluster({.nodes = 1, .cores = 1});
  zmq::context_t ctx;
  const std::string ipc = cluster.ipc();
  CHECK(ErrorText(Raw(ctx, ipc, {"\x01\x02garbage"})).find("not valid JSON") != std::string::npos);
  CHECK(ErrorText(Raw(ctx, ipc, {R"({"v":1,"type":"format_disk"})"})).find("format_disk") !=
        std::string::npos);
  CHECK(ErrorText(Raw(ctx, ipc, {R"({"v":1,"type":"cancel","ids":"all","user":""})"}))
            .find("'ids'") != std::string::npos);
  CHECK(ErrorText(Raw(ctx, ipc, {"{}", "{}"})).find("one frame") != std::string::npos);
  // A client pretending to be node1's execd (wrong routing id) is refused.
  CHECK(ErrorText(Raw(ctx, ipc, {Encode(JobExit{"node1", 1, 1, 0, 0, 1, 2, 0, 0, ""})}))
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
  CHECK(ErrorText(Raw(ctx, tcp, {Encode(SubmitRequest{spec})})).find("ipc://") !=
        std::string::npos);
  auto query = Raw(ctx, tcp, {Encode(QueryRequest{{}, "", true})});
  REQUIRE(query.has_value());
  CHECK(std::holds_alternative<QueryReply>(query->message));
  // Above the size limit ZeroMQ drops the connection: no reply, no crash.
  CHECK_FALSE(Raw(ctx, ipc, {std::string(kMaxMessageBytes + 1024, 'x')}).has_value());

  // Nothing was created, and the scheduler still serves and runs jobs.
  Client client = cluster.Connect();
  auto all = client.Call(QueryRequest{{}, "", true}, 5000);
  REQUIRE(all.has_value());
  CHECK(std::get<QueryReply>(*all).jobs.empty());
  JobId id = cluster.Submit("#!/bin/sh\nexit 0\n", "after");
  CHECK(cluster.WaitJobs({id}, 10000).at(0).state == JobState::kCompleted);
}
