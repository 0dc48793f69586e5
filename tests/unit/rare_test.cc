// Rare<T> (common/rare.h), the 8-byte holder of a job's rarely set fields: it reads, compares,
// copies and changes as the T it holds, and allocates nothing while empty.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/rare.h"
#include "common/types.h"
#include "scheduler/stored_job.h"

using namespace corral;

TEST_CASE("rare: reads as its T, an empty one while unset") {
  Rare<std::string> s;
  CHECK(s.empty());
  CHECK(s.size() == 0);
  CHECK(s.get() == "");
  CHECK(s == "");
  CHECK(s == std::string());
  const std::string& ref = s;
  CHECK(ref.empty());
  s = "/bin/bash";
  CHECK(s == "/bin/bash");
  CHECK("/bin/bash" == s);
  CHECK(s != "/bin/sh");
  CHECK(s.size() == 9);
  CHECK(s.starts_with("/bin"));
  CHECK(s.substr(5) == "bash");
  CHECK(s + "!" == "/bin/bash!");
  CHECK("#!" + s == "#!/bin/bash");
  std::string_view view = s;
  CHECK(view == "/bin/bash");
  std::ostringstream out;
  out << s;
  CHECK(out.str() == "/bin/bash");

  Rare<std::vector<JobId>> ids = {3, 1, 2};
  CHECK(ids.size() == 3);
  CHECK(ids[1] == 1);
  CHECK(std::find(ids.begin(), ids.end(), 2) != ids.end());
  ids.push_back(7);
  CHECK(ids == std::vector<JobId>{3, 1, 2, 7});
  std::sort(ids.mut().begin(), ids.mut().end());
  CHECK(ids.get() == std::vector<JobId>{1, 2, 3, 7});

  Rare<std::map<std::string, std::string>> env;
  CHECK(env.find("HOME") == env.end());
  CHECK(env.count("HOME") == 0);
  env["HOME"] = "/home/alice";
  env.emplace("SHELL", "/bin/sh");
  CHECK(env.at("HOME") == "/home/alice");
  int n = 0;
  for (const auto& [k, v] : env) n += static_cast<int>(k.size() + v.size());
  CHECK(n == 4 + 11 + 5 + 7);
}

TEST_CASE("rare: equality is by value; copies are deep; empty values are not kept") {
  Rare<std::string> unset;
  Rare<std::string> set_empty = std::string();
  CHECK(unset == set_empty);
  Rare<std::vector<std::string>> a = std::vector<std::string>{"x", "y"};
  Rare<std::vector<std::string>> b = a;
  CHECK(a == b);
  b.push_back("z");
  CHECK(a != b);
  CHECK(a.size() == 2);  // b's change did not reach a
  Rare<std::vector<std::string>> c = std::move(b);
  CHECK(c.size() == 3);
  c = std::vector<std::string>{};
  CHECK(c.empty());
  c = a;
  CHECK(c == a);
  c.clear();
  CHECK(c.empty());
  CHECK(c != a);

  // Jobs that differ only in a Rare field differ; equal ones compare equal after a copy.
  Job j1;
  j1.id = 1;
  j1.spec.env["A"] = "1";
  Job j2 = j1;
  CHECK(j1 == j2);
  j2.spec.env["A"] = "2";
  CHECK(j1 != j2);
  j2 = j1;
  j2.reason = "cancelled by alice";
  CHECK(j1 != j2);
}

TEST_CASE("rare: a job's rarely set fields survive the store's record, set or not") {
  Job job;
  job.id = 42;
  job.owner = "alice";
  job.spec.name = "x";
  job.spec.script = "#!/bin/sh\ntrue\n";
  Result<Job> plain = DecodeStoredJob(EncodeStoredJob(job));
  REQUIRE(plain.has_value());
  CHECK(*plain == job);
  CHECK(plain->spec.env.empty());
  job.spec.args = {"a", "b"};
  job.spec.shell = "/bin/bash";
  job.spec.stdout_path = "/tmp/o";
  job.spec.stderr_path = "/tmp/e";
  job.spec.env = {{"K", "V"}};
  job.spec.queue = "long";
  job.spec.project = "p";
  job.spec.other_resources = {{"licence", "x"}};
  job.spec.after_any = {1};
  job.spec.after_ok = {2};
  job.spec.after_notok = {3};
  job.spec.after_tasks = {4};
  job.reason = "why";
  job.params = "{\"a\":1}";
  job.result = "{\"r\":2}";
  job.result_error = "too large";
  Result<Job> full = DecodeStoredJob(EncodeStoredJob(job));
  REQUIRE(full.has_value());
  CHECK(*full == job);
  CHECK(full->spec.env.at("K") == "V");
  CHECK(full->spec.after_tasks == std::vector<JobId>{4});
}

TEST_CASE("rare: the job record is smaller than with the fields inline") {
  // The reason for Rare: a million Jobs live in ClusterState. 13 fields of JobSpec and 4
  // of Job take 8 bytes each instead of 24-48 (1,064 bytes before, on x86-64 libstdc++).
  static_assert(sizeof(Rare<std::map<std::string, std::string>>) == sizeof(void*));
  CHECK(sizeof(Job) < 700);
}
