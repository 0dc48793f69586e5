// corral events on a real cluster: the live stream has every change of the jobs in order,
// and after a scheduler restart a subscriber resuming with --since gets exactly what it
// missed, byte for byte, with the numbering continuing.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

TEST_CASE("events_stream_and_resume") {
  ClusterOptions options;
  options.nodes = 1;
  options.cores = 2;
  TestCluster cluster(options);
  const auto env = cluster.Env();
  const std::string live_log = cluster.dir() + "/events.out";
  // From the start of the record: the node's registration is event 1, so once that line is
  // out the follower has subscribed, and what follows comes live.
  const pid_t follower =
      Spawn({Bin("corral"), "events", "--user", "root", "--since", "0"}, live_log, env);
  REQUIRE_MESSAGE(WaitUntil([&] { return !ReadFile(live_log).empty(); }, 20000), cluster.Logs());
  CHECK(ReadFile(live_log).find("\"kind\":\"node\"") != std::string::npos);
  const JobId ok = cluster.Submit("exit 0\n", "ok");
  const JobId bad = cluster.Submit("exit 3\n", "bad");
  const JobId third = cluster.Submit("exit 0\n", "third");
  cluster.WaitJobs({ok, bad, third}, 30000);
  std::vector<nlohmann::json> live;
  REQUIRE_MESSAGE(WaitUntil([&] {
    live.clear();
    for (const std::string& line : Lines(ReadFile(live_log))) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded()) live.push_back(j);
    }
    // Each job: queued, running, then completed or failed; the follower may have joined
    // after the first submission, so count the ends.
    int ends = 0;
    for (const auto& e : live) {
      const std::string to = e.value("to", "");
      ends += to == "completed" || to == "failed";
    }
    return ends == 3;
  }, 20000), (ReadFile(live_log) + cluster.Logs()));
  CHECK(Stop(follower, SIGTERM) == 0);
  // In order, no duplicates, and each job's changes in the order they happened.
  for (size_t i = 1; i < live.size(); ++i) CHECK(live[i].at("seq") > live[i - 1].at("seq"));
  std::map<JobId, std::vector<std::string>> path;
  for (const auto& e : live) {
    if (e["kind"] == "job") path[e.at("job").get<JobId>()].push_back(e.at("to"));
  }
  CHECK(path[ok] == std::vector<std::string>{"queued", "running", "completed"});
  CHECK(path[bad].back() == "failed");
  CHECK(path[ok].back() == "completed");
  for (const auto& e : live) {
    // Node events have no "job", and only ends have "exit_code": value(), not operator[]
    // (a const json's operator[] of an absent key is undefined behaviour).
    if (e.value("job", JobId{0}) == bad && e.at("to") == "failed") {
      CHECK(e.value("exit_code", -1) == 3);
    }
  }

  // The scheduler restarts; a subscriber that saw up to the first live event resumes.
  cluster.StopScheduler();
  cluster.StartScheduler();
  cluster.WaitForNodes();
  const int64_t from = live.front()["seq"].get<int64_t>();
  RunResult resumed = Run({Bin("corral"), "events", "--user", "root", "--since",
                           std::to_string(from - 1), "--no-follow"}, env);
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.err);
  std::vector<std::string> again = Lines(resumed.out);
  const std::vector<std::string> seen = Lines(ReadFile(live_log));
  REQUIRE(again.size() >= seen.size());
  for (size_t i = 0; i < seen.size(); ++i) CHECK(again[i] == seen[i]);
  // Numbering continues after the restart.
  const JobId after = cluster.Submit("exit 0\n", "after");
  cluster.WaitJobs({after}, 30000);
  RunResult tail = Run({Bin("corral"), "events", "--job", std::to_string(after), "--since",
                        std::to_string(from), "--no-follow"}, env);
  REQUIRE(tail.exit_code == 0);
  std::vector<std::string> mine = Lines(tail.out);
  REQUIRE(mine.size() == 3);
  CHECK(nlohmann::json::parse(mine[0])["seq"].get<int64_t>() >
        live.back()["seq"].get<int64_t>());
  // Bad options are refused with a clear error.
  RunResult bad_opt = Run({Bin("corral"), "events", "--since", "x"}, env);
  CHECK(bad_opt.exit_code == 1);
  CHECK(bad_opt.err.find("--since needs a sequence number") != std::string::npos);
}
