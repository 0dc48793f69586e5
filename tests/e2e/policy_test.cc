// The admin's policy on a real cluster: a reload (qconf -reload and SIGHUP) while clients
// keep submitting changes the order of the pending jobs without losing or duplicating
// any; an invalid file is refused with file:line:column and the old order stays; the
// reloads are in the audit log; qstat -pri, qshare and qstat -j explain the order.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <set>
#include <thread>

#include "e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

namespace {

// Size first, or -p first: the two policies the test switches between.
const char* kByPriority = "priority: {user: 1000, job_size: 0, age: 0}\nplanner: {algorithm: easy}\n";
const char* kBySize = "priority: {user: 0, job_size: 1000, age: 0}\nplanner: {algorithm: easy}\n";

JobSpec Sleeper(const TestCluster& cluster, int cores, int priority, bool hold) {
  JobSpec spec;
  spec.name = "p" + std::to_string(priority) + "c" + std::to_string(cores);
  spec.script = "sleep 300\n";
  spec.cwd = cluster.work();
  spec.request = {cores, 0};
  spec.h_rt_s = 600;
  spec.priority = priority;
  spec.hold = hold;
  return spec;
}

// The pending jobs in the order the last pass ranked them.
std::vector<JobId> Ranked(TestCluster& cluster) {
  Client client = cluster.Connect();
  Result<Message> reply = client.Call(PriorityRequest{}, Slack(10000));
  REQUIRE_MESSAGE(reply.has_value(), (reply ? "" : reply.error().message()));
  std::vector<JobId> ids;
  for (const JobPriority& p : std::get<PriorityReply>(*reply).jobs) ids.push_back(p.id);
  return ids;
}

}  // namespace

TEST_CASE("reload_under_load_reorders_pending") {
  TempDir policy_dir;
  const std::string policy = policy_dir.path + "/policy.yaml";
  WriteFile(policy, kByPriority);
  ClusterOptions options;
  options.nodes = 1;
  options.cores = 2;
  options.scheduler_yaml = "policy: " + policy + "\n";
  TestCluster cluster(options);
  const auto env = cluster.Env();

  // The node is full, so everything submitted next waits.
  Client client = cluster.Connect();
  auto submit = [&](Client& c, const JobSpec& spec) {
    Result<Message> reply = c.Call(SubmitRequest{spec}, Slack(10000));
    REQUIRE_MESSAGE(reply.has_value(), (reply ? "" : reply.error().message()));
    return std::get<SubmitReply>(*reply).id;
  };
  const JobId blocker = submit(client, Sleeper(cluster, 2, 0, false));
  REQUIRE(WaitUntil([&] {
    auto r = client.Call(QueryRequest{{blocker}, "", false}, Slack(5000));
    return r && std::get<QueryReply>(*r).jobs.size() == 1 &&
           std::get<QueryReply>(*r).jobs[0].state == JobState::kRunning;
  }, 20000));
  // Small jobs with -p 100 and big ones with -p 0, alternating.
  std::vector<JobId> small, big;
  for (int i = 0; i < 10; ++i) {
    small.push_back(submit(client, Sleeper(cluster, 1, 100, false)));
    big.push_back(submit(client, Sleeper(cluster, 2, 0, false)));
  }
  auto small_first = [&](const std::vector<JobId>& ranked) {
    return ranked.size() == 20 && std::set<JobId>(ranked.begin(), ranked.begin() + 10) ==
                                      std::set<JobId>(small.begin(), small.end());
  };
  auto big_first = [&](const std::vector<JobId>& ranked) {
    return ranked.size() == 20 && std::set<JobId>(ranked.begin(), ranked.begin() + 10) ==
                                      std::set<JobId>(big.begin(), big.end());
  };
  REQUIRE_MESSAGE(WaitUntil([&] { return small_first(Ranked(cluster)); }, 20000), cluster.Logs());

  // Load: a second client submits held jobs for the whole of the reloads.
  std::atomic<bool> stop{false};
  std::vector<JobId> acknowledged;
  std::thread load([&] {
    Client c = cluster.Connect();
    while (!stop) {
      Result<Message> reply = c.Call(SubmitRequest{Sleeper(cluster, 1, 0, true)}, Slack(10000));
      if (reply && std::holds_alternative<SubmitReply>(*reply)) {
        acknowledged.push_back(std::get<SubmitReply>(*reply).id);
      }
    }
  });

  // qconf -reload to "size first": the big jobs move ahead.
  WriteFile(policy, kBySize);
  RunResult reload = Run({Bin("qconf"), "-reload"}, env);
  CHECK_MESSAGE(reload.exit_code == 0, reload.err);
  CHECK(reload.out.find("policy " + policy + " reloaded: planner easy") == 0);
  CHECK_MESSAGE(WaitUntil([&] { return big_first(Ranked(cluster)); }, 20000), cluster.Logs());

  // A broken file is refused with where it is broken; the order stays.
  WriteFile(policy, "priority:\n  user: [1\n");
  RunResult broken = Run({Bin("qconf"), "-reload"}, env);
  CHECK(broken.exit_code == 1);
  CHECK_MESSAGE(broken.err.find("qconf: " + policy + ":3:1: not valid YAML") == 0, broken.err);
  CHECK(broken.err.find("the old policy stays in force") != std::string::npos);
  WriteFile(policy, kByPriority + std::string("surprise: 1\n"));
  RunResult unknown = Run({Bin("qconf"), "-reload"}, env);
  CHECK(unknown.exit_code == 1);
  CHECK_MESSAGE(unknown.err.find("unknown key 'surprise'") != std::string::npos, unknown.err);
  CHECK(big_first(Ranked(cluster)));

  // SIGHUP back to "-p first".
  WriteFile(policy, kByPriority);
  REQUIRE(kill(cluster.scheduler_pid(), SIGHUP) == 0);
  CHECK_MESSAGE(WaitUntil([&] { return small_first(Ranked(cluster)); }, 20000), cluster.Logs());
  stop = true;
  load.join();
  CHECK(acknowledged.size() > 0);

  // Nothing was lost or duplicated: every acknowledged job is there once, as submitted.
  auto all = client.Call(QueryRequest{{}, "", false}, Slack(10000));
  REQUIRE(all.has_value());
  std::multiset<JobId> seen;
  for (const Job& j : std::get<QueryReply>(*all).jobs) seen.insert(j.id);
  CHECK(seen.size() == 1 + 20 + acknowledged.size());
  for (JobId id : acknowledged) CHECK(seen.count(id) == 1);
  for (JobId id : small) CHECK(seen.count(id) == 1);
  for (JobId id : big) CHECK(seen.count(id) == 1);

  // The tools explain it: qstat -pri lists the ranking, qstat -j the priority and the
  // forecast, qshare the tree, and the audit log has the one successful qconf reload.
  RunResult pri = Run({Bin("qstat"), "-pri", "-u", "*", "--json"}, env);
  REQUIRE(pri.exit_code == 0);
  auto pri_json = nlohmann::json::parse(pri.out);
  CHECK(pri_json["policy"] == policy);
  REQUIRE(pri_json["jobs"].size() == 20);  // held jobs are not candidates
  CHECK(pri_json["jobs"][0]["factors"]["user"].get<double>() > 0.5);
  RunResult table = Run({Bin("qstat"), "-pri"}, env);
  CHECK(Lines(table.out).size() == 22);  // two header lines, 20 jobs
  RunResult detail = Run({Bin("qstat"), "-j", std::to_string(big.back())}, env);
  CHECK(detail.out.find("corral_priority:            priority ") != std::string::npos);
  CHECK_MESSAGE(detail.out.find("expected to start in") != std::string::npos, detail.out);
  RunResult share = Run({Bin("qshare"), "-l"}, env);
  CHECK(share.exit_code == 0);
  CHECK(share.out.find("usage half-life 7d") != std::string::npos);
  RunResult audit = Run({Bin("qconf"), "-audit", "--json"}, env);
  REQUIRE(audit.exit_code == 0);
  auto entries = nlohmann::json::parse(audit.out)["entries"];
  REQUIRE(entries.size() == 1);
  CHECK(entries[0]["action"] == "reload");
  CHECK(entries[0]["user"] == "root");

  RunResult del = Run({Bin("qdel"), "-u", "root"}, env);
  CHECK(del.exit_code == 0);
}
