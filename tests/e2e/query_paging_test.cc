// Listings of a few thousand jobs through the real scheduler and the real qstat: the
// answer comes in several pages, and what qstat prints page by page is byte for byte what
// the one-reply listing gave (table and --json); on a terminal it adds colour and a
// summary line, and CORRAL_QSTAT_FORMAT=sge or --sge gives the exact format there too.
#include <doctest/doctest.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <regex>
#include <set>
#include <zmq.hpp>

#include "common/clock.h"
#include "common/protocol.h"
#include "qtools/sge_format.h"
#include "tests/e2e/harness.h"

using namespace corral;
using namespace corral::e2e;

namespace {

// Submits `specs` pipelined on one socket, at most `window` in flight (the scheduler
// commits them in a few group commits); REQUIREs that every one is accepted.
void SubmitMany(const std::string& endpoint, const std::vector<JobSpec>& specs) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(endpoint);
  const size_t window = 500;
  size_t sent = 0, got = 0;
  const int64_t deadline = MonotonicNowMs() + 120000;
  while (got < specs.size()) {
    while (sent < specs.size() && sent - got < window) {
      const std::string bytes = Encode(SubmitRequest{specs[sent]}, std::to_string(sent));
      s.send(zmq::buffer(bytes), zmq::send_flags::none);
      ++sent;
    }
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    REQUIRE(MonotonicNowMs() < deadline);
    if (zmq::poll(&item, 1, std::chrono::milliseconds(1000)) == 0) continue;
    zmq::message_t reply;
    (void)s.recv(reply);
    Result<Envelope> env = Decode(reply.to_string_view());
    REQUIRE(env.has_value());
    REQUIRE_MESSAGE(std::holds_alternative<SubmitReply>(env->message), reply.to_string());
    ++got;
  }
}

// qstat's listing as it was computed before paging: every record in one reply, sorted
// running first, then pending, by id, filtered and formatted the same way.
std::string OneReplyListing(std::vector<Job> jobs, bool json) {
  FillTaskSpecs(jobs);
  std::vector<Job> shown;
  for (Job& job : jobs) {
    if (!json && job.task == 0 && job.IsArray() && job.pending.empty() && !IsFinal(job.state)) {
      continue;
    }
    if (!json && job.task != 0 && job.state == JobState::kQueued) continue;
    if (IsFinal(job.state)) continue;
    shown.push_back(std::move(job));
  }
  auto rank = [](const Job& j) { return j.state == JobState::kRunning ? 0 : 1; };
  std::stable_sort(shown.begin(), shown.end(), [&](const Job& a, const Job& b) {
    return std::tuple(rank(a), a.id, a.task) < std::tuple(rank(b), b.id, b.task);
  });
  return json ? JobsJson(shown) : QstatTable(shown);
}

// Runs `argv` with its stdout and stderr on a new pseudo-terminal; returns what it
// printed there ("\r\n" turned back into "\n"), or REQUIREs on a timeout.
std::string RunOnPty(const std::vector<std::string>& argv,
                     const std::map<std::string, std::string>& env) {
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  std::string out;
  const int64_t deadline = MonotonicNowMs() + 60000;
  while (true) {
    pollfd p{master, POLLIN, 0};
    const int64_t left = deadline - MonotonicNowMs();
    if (left <= 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      close(master);
      FAIL("qstat on a pty did not finish in 60 s");
    }
    if (poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000))) <= 0) continue;
    char buf[65536];
    const ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) break;  // EIO once the child has exited and closed the terminal
    out.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  close(master);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  out.erase(std::remove(out.begin(), out.end(), '\r'), out.end());
  return out;
}

}  // namespace

TEST_CASE("qstat_streams_pages") {
  TestCluster cluster({.nodes = 1, .cores = 2});
  cluster.WaitForNodes();
  // An array whose first two tasks occupy both cores (their rows need the array's spec),
  // then thousands of plain jobs, half of them held.
  JobSpec array;
  array.name = "sweep";
  array.script = "#!/bin/sh\nsleep 300\n";
  array.cwd = cluster.work();
  array.array = TaskRange{1, 50, 1};
  std::vector<JobSpec> specs = {array};
  for (int i = 0; i < 4500; ++i) {
    JobSpec s;
    s.name = "p" + std::to_string(i);
    s.script = "#!/bin/sh\ntrue\n";
    s.cwd = cluster.work();
    s.hold = i % 2 == 1;
    specs.push_back(s);
  }
  SubmitMany(cluster.ipc(), specs);
  Client client = cluster.Connect();
  REQUIRE(WaitUntil([&] {
    Result<Message> r = client.Call(QueryRequest{{}, "", false, {"running"}}, Slack(5000));
    return r && std::get<QueryReply>(*r).jobs.size() == 2;
  }, 30000));

  // The same listing in one reply (the old way; 4,551 records fit one message) and in
  // pages through the client library: several pages, the same records.
  // (Well under a second normally; minutes in the -O0 sanitized build, where encoding and
  // decoding 4,551 records in one message is slow on both sides.)
  Result<Message> whole = client.Call(QueryRequest{}, Slack(60000));
  REQUIRE(whole.has_value());
  const std::vector<Job>& all = std::get<QueryReply>(*whole).jobs;
  REQUIRE(all.size() == 1 + 2 + 4500);
  int pages = 0;
  std::vector<Job> paged;
  Status s = client.QueryPages(QueryRequest{}, 30000, [&](QueryReply& page) {
    ++pages;
    paged.insert(paged.end(), page.jobs.begin(), page.jobs.end());
    return Status();
  });
  REQUIRE(s.ok());
  CHECK(pages >= 3);
  CHECK(paged == all);

  // qstat, piped: byte for byte the one-reply listing, though it came in pages.
  const std::map<std::string, std::string> env = cluster.Env();
  RunResult table = Run({Bin("qstat")}, env);
  REQUIRE(table.exit_code == 0);
  CHECK(table.err.empty());
  const std::string want = OneReplyListing(all, false);
  CHECK(Lines(table.out).size() == 2 + 2 + 1 + 4500);  // header, 2 tasks, array, jobs
  CHECK(table.out == want);
  RunResult json = Run({Bin("qstat"), "--json"}, env);
  REQUIRE(json.exit_code == 0);
  CHECK(json.out == OneReplyListing(all, true));

  // On a terminal: colour and a summary line; the text under them is the same.
  std::map<std::string, std::string> tty_env = env;
  tty_env["TERM"] = "xterm";
  tty_env.erase("NO_COLOR");
  const std::string coloured = RunOnPty({Bin("qstat")}, tty_env);
  CHECK(coloured.find("\033[32mr\033[0m") != std::string::npos);    // running
  CHECK(coloured.find("\033[33mhqw\033[0m") != std::string::npos);  // held
  const std::string summary = "4550 jobs: 2 running, 2298 pending, 2250 held\n";
  CHECK(coloured.ends_with(summary));
  const std::string plain = std::regex_replace(coloured, std::regex("\033\\[[0-9;]*m"), "");
  CHECK(plain == want + summary);
  tty_env["NO_COLOR"] = "1";
  CHECK(RunOnPty({Bin("qstat")}, tty_env) == want + summary);
  tty_env["CORRAL_QSTAT_FORMAT"] = "sge";
  CHECK(RunOnPty({Bin("qstat")}, tty_env) == want);
  tty_env.erase("CORRAL_QSTAT_FORMAT");
  tty_env.erase("NO_COLOR");
  CHECK(RunOnPty({Bin("qstat"), "--sge"}, tty_env) == want);
}
