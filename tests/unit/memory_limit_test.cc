// Memory limits with real processes: a job over its mem_mb is killed with reason "memory
// exceeded" (in a cgroup when this machine has a usable one, and by RSS sampling, forced),
// a job within it runs normally, and nothing of the job survives. Waits are poll() timeouts
// bounded by deadlines; no test sleeps.
#include <doctest/doctest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "temp_dir.h"
#include "test_files.h"
#include "common/clock.h"
#include "execd/launcher.h"
#include "tests/unit/launcher_wait.h"

namespace corral {
using corral::testing::PauseMs;
using corral::testing::ReadFile;
using corral::testing::TempDir;

namespace {

namespace fs = std::filesystem;

constexpr int64_t kDeadlineMs = 15000;  // far above what any of these jobs needs

bool ProcessDead(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  const size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() &&
         (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X');
}

// Touches every page of 300 MB, then holds it (a sampler needs to see it).
constexpr char kHog[] =
    "/usr/bin/python3 -c \"import time; b = bytearray(300*1024*1024); "
    "b[::4096] = b'x'*len(b[::4096]); time.sleep(30)\"\n";

Job MakeJob(JobId id, const std::string& script, const std::string& cwd, int64_t mem_mb) {
  Job job;
  job.id = id;
  job.attempt = 1;
  job.uid = getuid();
  job.gid = getgid();
  job.spec.name = "mem";
  job.spec.script = script;
  job.spec.cwd = cwd;
  job.spec.request.mem_mb = mem_mb;
  return job;
}

// Runs a job over its limit that also leaves a grandchild behind; checks the reason, that the
// grandchild is gone and (cgroups) that the attempt's cgroup was removed.
void CheckOverLimitIsKilled(const MemoryEnforcement& memory, JobId id) {
  TempDir dir;
  Result<std::unique_ptr<PosixLauncher>> launcher = PosixLauncher::Create(
      {.spool_dir = dir.path() + "/spool", .host = JobHost{"memnode", "memhost"},
       .memory = memory});
  REQUIRE(launcher.has_value());
  const std::string pid_file = dir.path() + "/grandchild.pid";
  Job job = MakeJob(id,
                    "#!/bin/sh\nsleep 100 &\necho $! > " + pid_file + "\n" + std::string(kHog),
                    dir.path(), 64);
  REQUIRE((*launcher)->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(**launcher, {id, 1});
  REQUIRE(end.has_value());
  CHECK(end->failure == "");
  CHECK(end->reason == "memory exceeded");
  CHECK(end->exit_code != 0);
  REQUIRE(fs::exists(pid_file));
  const pid_t grandchild = std::stoi(ReadFile(pid_file));
  const int64_t deadline = MonotonicNowMs() + kDeadlineMs;
  while (!ProcessDead(grandchild) && MonotonicNowMs() < deadline) PauseMs(5);
  CHECK(ProcessDead(grandchild));
  if (!memory.cgroup_parent.empty()) {
    CHECK_FALSE(fs::exists(memory.cgroup_parent + "/" + std::to_string(id) + ".1"));
  }
}

void CheckWithinLimitRuns(const MemoryEnforcement& memory, JobId id) {
  TempDir dir;
  Result<std::unique_ptr<PosixLauncher>> launcher = PosixLauncher::Create(
      {.spool_dir = dir.path() + "/spool", .host = JobHost{"memnode", "memhost"},
       .memory = memory});
  REQUIRE(launcher.has_value());
  Job job = MakeJob(id,
                    "#!/bin/sh\n/usr/bin/python3 -c \"b = bytearray(8*1024*1024); "
                    "b[::4096] = b'x'*len(b[::4096])\"\necho done\nexit 3\n",
                    dir.path(), 256);
  REQUIRE((*launcher)->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(**launcher, {id, 1});
  REQUIRE(end.has_value());
  CHECK(end->failure == "");
  CHECK(end->reason == "");
  CHECK(end->exit_code == 3);
  CHECK(ReadFile(dir.path() + "/mem.o" + std::to_string(id)) == "done\n");
  if (!memory.cgroup_parent.empty()) {
    CHECK_FALSE(fs::exists(memory.cgroup_parent + "/" + std::to_string(id) + ".1"));
  }
}

const std::string& TestNode() {
  static const std::string node = "memtest-" + std::to_string(getpid());
  return node;
}

TEST_CASE("memory: enforcement is chosen by name; an unknown name is an error") {
  Result<MemoryEnforcement> none = DetectMemoryEnforcement("none", TestNode());
  REQUIRE(none.has_value());
  CHECK(none->mechanism == MemoryMechanism::kNone);
  Result<MemoryEnforcement> sample = DetectMemoryEnforcement("sample", TestNode());
  REQUIRE(sample.has_value());
  CHECK(sample->mechanism == MemoryMechanism::kSample);
  CHECK(sample->description == "sampling process RSS");
  CHECK_FALSE(DetectMemoryEnforcement("bogus", TestNode()).has_value());
  Result<MemoryEnforcement> automatic = DetectMemoryEnforcement("auto", TestNode());
  REQUIRE(automatic.has_value());
  MESSAGE("memory limits here: " << automatic->description);
}

TEST_CASE("memory: sampling kills a job over its limit, with its grandchildren") {
  CheckOverLimitIsKilled({MemoryMechanism::kSample, "", "sampling"}, 501);
}

TEST_CASE("memory: sampling leaves a job within its limit alone") {
  CheckWithinLimitRuns({MemoryMechanism::kSample, "", "sampling"}, 502);
}

TEST_CASE("memory: with enforcement off, a request changes nothing") {
  CheckWithinLimitRuns({MemoryMechanism::kNone, "", "none"}, 503);
}

TEST_CASE("memory: a cgroup (when this machine has one) kills a job over its limit") {
  Result<MemoryEnforcement> cgroup = DetectMemoryEnforcement("cgroup", TestNode());
  if (!cgroup) {
    MESSAGE("no usable memory cgroup here: " << cgroup.error().message());
    return;
  }
  MESSAGE("testing " << cgroup->description);
  CheckOverLimitIsKilled(*cgroup, 505);
  CheckWithinLimitRuns(*cgroup, 506);
  // The test's own parent goes too (the execd's stays for its lifetime).
  CHECK(rmdir(cgroup->cgroup_parent.c_str()) == 0);
  rmdir(fs::path(cgroup->cgroup_parent).parent_path().c_str());  // "corral", unless in use
}

}  // namespace
}  // namespace corral
