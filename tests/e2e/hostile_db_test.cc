// Malformed messages of every wire type, over the real ipc:// and tcp:// sockets of a
// running scheduler that holds a few jobs: fields of the wrong type, missing fields,
// unknown fields, huge arrays, deep nesting, invalid UTF-8, an oversized frame and
// multi-frame messages. Each gets an error reply (the oversized frame: a dropped
// connection), the scheduler keeps serving, and its database is byte for byte the same
// afterwards (a dump of every table, read through a read-only SQLite connection).
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/protocol.h"
#include "common/transport.h"
#include "tests/e2e/harness.h"

using namespace corral;
using namespace corral::e2e;
using nlohmann::json;

namespace {

// Every table of the database at `path` as text: its schema, then its rows in rowid
// order with each value's type, so that any change shows up in a comparison.
std::string DumpDatabase(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  std::string out;
  auto query = [&](const std::string& sql, const std::function<void(sqlite3_stmt*)>& row) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE_MESSAGE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK,
                    sql << ": " << sqlite3_errmsg(db));
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) row(stmt);
    CHECK(rc == SQLITE_DONE);
    sqlite3_finalize(stmt);
  };
  std::vector<std::pair<std::string, std::string>> tables;
  query("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name",
        [&](sqlite3_stmt* s) {
          tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)),
                              reinterpret_cast<const char*>(sqlite3_column_text(s, 1)));
        });
  for (const auto& table : tables) {  // not a structured binding: clang 14 cannot capture one
    const std::string& name = table.first;
    out += table.second + ";\n";
    query("SELECT * FROM \"" + name + "\" ORDER BY rowid", [&](sqlite3_stmt* s) {
      out += name + ":";
      for (int c = 0; c < sqlite3_column_count(s); ++c) {
        const int type = sqlite3_column_type(s, c);
        const char* text = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
        out += " " + std::to_string(type) + "=" + (text ? text : "NULL");
      }
      out += "\n";
    });
  }
  sqlite3_close(db);
  return out;
}

// The wire id of every message type and a default-constructed instance's encoding: the
// skeleton the malformed variants are made from.
template <size_t... I>
std::vector<std::pair<std::string, json>> Skeletons(std::index_sequence<I...>) {
  return {{std::string(std::variant_alternative_t<I, Message>::kType),
           json::parse(Encode(Message(std::variant_alternative_t<I, Message>{})))}...};
}

// A value of another JSON type than `v`.
std::vector<json> WrongValues(const json& v) {
  std::vector<json> out;
  if (!v.is_string()) out.push_back("not-a-" + std::string(v.type_name()));
  if (!v.is_number()) out.push_back(-12345678901234LL);
  if (!v.is_boolean()) out.push_back(true);
  if (!v.is_array()) out.push_back(json::array({1, "two", nullptr}));
  if (!v.is_object()) out.push_back(json{{"x", 1}});
  if (v.is_number()) out.push_back(1.5e300);
  return out;
}

std::string Nested(char open, const std::string& inner, char close, int depth) {
  std::string s;
  s.reserve(depth * (inner.size() + 2));
  for (int i = 0; i < depth; ++i) (s += open) += inner;
  s += "1";
  s.append(depth, close);
  return s;
}

// Malformed variants of the message `type` whose default encoding is `skeleton`.
std::vector<std::string> Variants(const std::string& type, const json& skeleton) {
  std::vector<std::string> out;
  auto add = [&](const json& j) { out.push_back(j.dump()); };
  bool huge_array = false, deep = false;
  for (auto it = skeleton.begin(); it != skeleton.end(); ++it) {
    const std::string key = it.key();
    if (key == "v" || key == "type" || key == "req") continue;
    json missing = skeleton;
    missing.erase(key);
    add(missing);
    for (const json& wrong : WrongValues(*it)) {
      json j = skeleton;
      j[key] = wrong;
      j["an_unknown_field"] = {{"nested", json::array({1, 2})}};
      add(j);
    }
    if (it->is_object()) {  // one level down: spec.request, total, job, ...
      for (auto sub = it->begin(); sub != it->end(); ++sub) {
        json gone = skeleton;
        gone[key].erase(sub.key());
        add(gone);
        for (const json& wrong : WrongValues(*sub)) {
          json j = skeleton;
          j[key][sub.key()] = wrong;
          add(j);
        }
      }
    }
    if (it->is_array() && !huge_array) {  // a huge array of elements no field accepts
      huge_array = true;
      json j = skeleton;
      j[key] = json::array();
      for (int i = 0; i < 200000; ++i) j[key].push_back(-1);
      j[key].push_back(json::array());
      add(j);
    }
    if (!deep) {  // deep nesting in place of the first field: arrays, then objects
      deep = true;
      json shallow = skeleton;
      shallow[key] = "@@DEEP@@";
      const std::string text = shallow.dump();
      const size_t at = text.find("\"@@DEEP@@\"");
      out.push_back(text.substr(0, at) + Nested('[', "", ']', 100000) + text.substr(at + 10));
      out.push_back(text.substr(0, at) + Nested('{', "\"a\":", '}', 100000) +
                    text.substr(at + 10));
    }
  }
  // Invalid UTF-8 in a value, and in a key.
  json bad = skeleton;
  bad["req"] = "@@BAD@@";
  std::string text = bad.dump();
  out.push_back(text.replace(text.find("@@BAD@@"), 7, "\xc3\x28\xff\xfe"));
  text = skeleton.dump();
  out.push_back(text.insert(1, "\"\xed\xa0\x80\":1,"));
  // Broken envelopes: wrong version, type of the wrong type, truncated, not an object.
  json version = skeleton;
  version["v"] = 2;
  add(version);
  json typed = skeleton;
  typed["type"] = json::array({type});
  add(typed);
  text = skeleton.dump();
  out.push_back(text.substr(0, text.size() / 2));
  add(json::array({skeleton}));
  return out;
}

// A job record whose `params` object nests `depth` levels: the decoder turns such an
// object back into text, which must not recurse once per level.
std::string DeepParams(const std::string& type, int depth) {
  Job job;
  job.id = 7;
  job.owner = "x";
  job.params = "{}";
  json body = json::parse(type == "start_job" ? Encode(StartJob{job}) : Encode(QueryReply{{job}, {}}));
  json& record = type == "start_job" ? body["job"] : body["jobs"][0];
  record["params"] = "@@DEEP@@";
  std::string text = body.dump();
  const size_t at = text.find("\"@@DEEP@@\"");
  return text.substr(0, at) + Nested('{', "\"a\":", '}', depth) + text.substr(at + 10);
}

// Sends one malformed message and checks the reply is the error Decode gives for it.
void ExpectError(RawSocket& socket, const std::string& where, const std::vector<std::string>& frames,
                 const std::string& expected) {
  Result<Envelope> reply = socket.Call(frames, 10000);
  const std::string shown = frames[0].size() > 200 ? frames[0].substr(0, 200) + "..." : frames[0];
  REQUIRE_MESSAGE(reply.has_value(), where << ": no reply to " << shown);
  const auto* error = std::get_if<ErrorReply>(&reply->message);
  REQUIRE_MESSAGE(error != nullptr, where << ": not an error reply to " << shown);
  CHECK_MESSAGE(error->code == Code::kInvalidArgument, where << ": " << error->message);
  if (!expected.empty()) CHECK_MESSAGE(error->message == expected, where << ": " << shown);
}

}  // namespace

TEST_CASE("malformed_messages_change_nothing") {
  TestCluster cluster({.nodes = 1, .cores = 1});
  cluster.WaitForNodes();
  // A few jobs of every kind in the database: completed, failed, held, a held array, and
  // a cancelled one.
  const JobId ok = cluster.Submit("#!/bin/sh\nexit 0\n", "ok");
  const JobId failed = cluster.Submit("#!/bin/sh\nexit 3\n", "failed");
  cluster.WaitJobs({ok, failed}, 30000);
  Client client = cluster.Connect();
  JobSpec spec;
  spec.name = "held";
  spec.script = "#!/bin/sh\ntrue\n";
  spec.cwd = cluster.work();
  spec.hold = true;
  REQUIRE(client.Call(SubmitRequest{spec}, Slack(10000)).has_value());
  spec.name = "held_array";
  spec.array = TaskRange{1, 50, 1};
  REQUIRE(client.Call(SubmitRequest{spec}, Slack(10000)).has_value());
  spec.array.reset();
  spec.name = "cancelled";
  Result<Message> cancelled = client.Call(SubmitRequest{spec}, Slack(10000));
  REQUIRE(cancelled.has_value());
  REQUIRE(client.Call(CancelRequest{{std::get<SubmitReply>(*cancelled).id}, ""}, Slack(10000))
              .has_value());
  Result<Message> jobs = client.Call(QueryRequest{{}, "", true}, Slack(10000));
  REQUIRE(jobs.has_value());
  REQUIRE(std::get<QueryReply>(*jobs).jobs.size() == 5);

  const std::string db = cluster.dir() + "/state/corral.db";
  const std::string before = DumpDatabase(db);
  REQUIRE(before.find("held_array") != std::string::npos);

  auto endpoints = ReadEndpointsFile(cluster.dir() + "/state/endpoints");
  REQUIRE(endpoints.has_value());
  std::vector<std::string> targets = {cluster.ipc()};
  for (const std::string& e : *endpoints) {
    if (e.rfind("tcp://", 0) == 0) targets.push_back(e);
  }
  REQUIRE(targets.size() >= 2);  // the ipc endpoint and at least one tcp one

  const auto skeletons = Skeletons(std::make_index_sequence<std::variant_size_v<Message>>());
  size_t sent = 0;
  for (const std::string& endpoint : targets) {
    RawSocket socket(endpoint);
    for (const auto& [type, skeleton] : skeletons) {
      for (const std::string& variant : Variants(type, skeleton)) {
        // Only what the decoder refuses is malformed (a variant may happen to be valid,
        // such as a nodes request without its optional fields): those are not sent.
        Result<Envelope> local = Decode(variant);
        if (local) continue;
        ExpectError(socket, endpoint + " " + type, {variant}, local.error().message());
        ++sent;
      }
      // Two frames, and three: refused as a whole, whatever the first one holds.
      ExpectError(socket, endpoint + " " + type + " multi-frame", {skeleton.dump(), "{}"},
                  "message must be one frame");
      ExpectError(socket, endpoint + " " + type + " multi-frame",
                  {skeleton.dump(), "", skeleton.dump()}, "message must be one frame");
      sent += 2;
    }
    for (const std::string type : {"jobs", "start_job"}) {
      const std::string deep = DeepParams(type, 1'000'000);
      REQUIRE(deep.size() < kMaxMessageBytes);
      Result<Envelope> local = Decode(deep);
      ExpectError(socket, endpoint + " deep params", {deep}, local ? "" : local.error().message());
      ++sent;
    }
    // Above the size limit ZeroMQ drops the connection: no reply, no crash.
    CHECK_FALSE(RawExchange(endpoint, {std::string(kMaxMessageBytes + 1024, '{')}).has_value());
    REQUIRE_MESSAGE(Alive(cluster.scheduler_pid()), cluster.Logs());
  }
  MESSAGE("sent " << sent << " malformed messages");
  CHECK(sent > 500);

  // The scheduler still serves, and nothing it stores has changed.
  REQUIRE_MESSAGE(Alive(cluster.scheduler_pid()), cluster.Logs());
  Result<Message> after = client.Call(QueryRequest{{}, "", true}, Slack(10000));
  REQUIRE(after.has_value());
  CHECK(std::get<QueryReply>(*after).jobs.size() == 5);
  CHECK(DumpDatabase(db) == before);
  const JobId later = cluster.Submit("#!/bin/sh\nexit 0\n", "later");
  CHECK(cluster.WaitJobs({later}, 30000).at(0).state == JobState::kCompleted);
}
