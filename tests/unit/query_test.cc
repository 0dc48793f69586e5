// Job listings (scheduler/query.h): the owner index, and paged queries checked against a
// brute-force filter of the whole state, including while the state changes between pages.
#include <doctest/doctest.h>

#include <functional>
#include <set>

#include "builders.h"
#include "common/protocol.h"
#include "scheduler/core.h"
#include "scheduler/query.h"

namespace corral {
namespace {

using testing::Spec;
using testing::User;

Job Record(JobId id, std::string owner, JobState state, TaskId task = 0) {
  Job j;
  j.id = id;
  j.task = task;
  j.owner = std::move(owner);
  j.uid = 1000;
  j.state = state;
  if (task == 0) j.spec = Spec();
  if (state == JobState::kRunning) j.node = "n";
  j.submit_time = 1000 + id;
  return j;
}

// A mix: plain jobs of two owners in every state, and two arrays with dispatched tasks.
ClusterState Mixed() {
  ClusterState s;
  Actions a;
  const JobState states[] = {JobState::kQueued, JobState::kHeld, JobState::kRunning,
                             JobState::kCompleted, JobState::kFailed, JobState::kCancelled};
  JobId id = 1;
  for (int i = 0; i < 30; ++i, ++id) {
    a.put_jobs.push_back(Record(id, i % 3 == 0 ? "bob" : "alice", states[i % 6]));
  }
  for (JobState array_state : {JobState::kQueued, JobState::kCompleted}) {
    Job array = Record(id, "alice", array_state);
    array.spec.array = TaskRange{1, 20, 1};
    if (array_state == JobState::kQueued) array.pending = {TaskRange{15, 20, 1}};
    a.put_jobs.push_back(array);
    for (TaskId t = 1; t <= 14; ++t) {
      JobState ts = array_state == JobState::kCompleted ? JobState::kCompleted
                    : t % 3 == 0                       ? JobState::kRunning
                    : t == 7                           ? JobState::kQueued  // requeued
                                                       : JobState::kFailed;
      a.put_jobs.push_back(Record(id, "alice", ts, t));
    }
    ++id;
  }
  for (int i = 0; i < 5; ++i, ++id) a.put_jobs.push_back(Record(id, "carol", JobState::kQueued));
  a.next_job_id = id;
  Install(s, a);
  return s;
}

// What a query selects, by brute force over every record in key order.
std::vector<UnitKey> Expected(const ClusterState& s, const QueryRequest& q) {
  std::set<JobState> states;
  for (const std::string& n : q.states) states.insert(*StateFromName(n));
  auto matches = [&](const Job& u) {
    if (!q.include_finished && IsFinal(u.state)) return false;
    return states.empty() || states.contains(u.state);
  };
  std::set<JobId> ids(q.ids.begin(), q.ids.end());
  std::vector<UnitKey> out;
  for (const auto& [id, job] : s.jobs) {
    if (!ids.empty() && !ids.contains(id)) continue;
    if (!q.user.empty() && job.owner != q.user) continue;
    if (matches(job)) out.push_back(KeyOf(job));
    if (!job.IsArray() || q.without_tasks || (!q.include_finished && IsFinal(job.state))) continue;
    for (const auto& [key, task] : s.tasks) {
      if (key.job == id && matches(task)) out.push_back(key);
    }
  }
  return out;
}

// Every page of `q` with page size `limit`; `between` runs after each page.
std::vector<UnitKey> Paged(ClusterState& s, QueryRequest q, int64_t limit, int* pages = nullptr,
                           const std::function<void(int)>& between = {}) {
  q.limit = limit;
  std::vector<UnitKey> out;
  for (int page = 0;; ++page) {
    REQUIRE(page < 10000);
    Result<QueryReply> r = ListJobs(s, q, User(0, "root"), CoreConfig{}, 5000);
    REQUIRE(r.has_value());
    CHECK(static_cast<int64_t>(r->jobs.size()) <= limit);
    for (const Job& j : r->jobs) out.push_back(KeyOf(j));
    if (pages) *pages = page + 1;
    if (!r->next) break;
    CHECK((!q.after || *q.after < *r->next));  // the cursor only moves forward
    q.after = r->next;
    if (between) between(page);
  }
  return out;
}

std::vector<UnitKey> Unpaged(const ClusterState& s, const QueryRequest& q) {
  Result<QueryReply> r = ListJobs(s, q, User(0, "root"), CoreConfig{}, 5000);
  REQUIRE(r.has_value());
  CHECK(!r->next);
  std::vector<UnitKey> out;
  for (const Job& j : r->jobs) out.push_back(KeyOf(j));
  return out;
}

std::vector<QueryRequest> Forms() {
  std::vector<QueryRequest> forms;
  for (bool finished : {false, true}) {
    for (std::string user : {"", "alice", "bob", "nobody"}) {
      for (std::vector<std::string> states :
           {std::vector<std::string>{}, {"running"}, {"queued", "held"}, {"completed"}}) {
        QueryRequest q;
        q.user = user;
        q.include_finished = finished;
        q.states = states;
        forms.push_back(q);
      }
    }
  }
  QueryRequest ids;
  ids.ids = {31, 3, 500, 1, 32, 3};
  ids.include_finished = true;
  forms.push_back(ids);
  QueryRequest records = ids;
  records.without_tasks = true;
  forms.push_back(records);
  records.ids.clear();
  forms.push_back(records);
  return forms;
}

}  // namespace

TEST_CASE("query: the owner index holds each owner's job ids, in order, and Reindex rebuilds it") {
  ClusterState s = Mixed();
  REQUIRE(s.by_owner.size() == 3);
  const std::vector<JobId>& bob = s.by_owner.at("bob");
  CHECK(bob == std::vector<JobId>{1, 4, 7, 10, 13, 16, 19, 22, 25, 28});
  CHECK(s.by_owner.at("alice").size() == 22);  // 20 plain jobs and 2 arrays, not tasks
  CHECK(s.by_owner.at("carol") == std::vector<JobId>{33, 34, 35, 36, 37});
  // An update of an existing record does not add it again.
  Actions a;
  a.put_jobs.push_back(Record(1, "bob", JobState::kRunning));
  Install(s, a);
  CHECK(s.by_owner.at("bob").size() == 10);
  ClusterState copy = s;
  copy.by_owner.clear();
  Reindex(copy);
  CHECK(copy.by_owner == s.by_owner);
  // Records installed out of id order still land in order.
  ClusterState fresh;
  Actions late;
  for (JobId id : {5, 9, 3, 7}) late.put_jobs.push_back(Record(id, "carol", JobState::kQueued));
  Install(fresh, late);
  CHECK(fresh.by_owner.at("carol") == std::vector<JobId>{3, 5, 7, 9});
}

TEST_CASE("query: every form, unpaged and in pages of any size, lists what brute force selects") {
  ClusterState s = Mixed();
  for (const QueryRequest& q : Forms()) {
    const std::vector<UnitKey> want = Expected(s, q);
    INFO("user '", q.user, "' finished ", q.include_finished, " states ", q.states.size(),
         " ids ", q.ids.size());
    if (q.ids.empty()) CHECK(Unpaged(s, q) == want);
    for (int64_t limit : {1, 2, 3, 7, 1000}) {
      INFO("limit ", limit);
      CHECK(Paged(s, q, limit) == want);
    }
  }
}

TEST_CASE("query: asked-for ids that are missing are reported once, on their page") {
  ClusterState s = Mixed();
  QueryRequest q;
  q.ids = {2, 999, 31, 998, 3};  // 3 is running; 2 held; 31 the active array
  q.limit = 2;
  std::vector<JobId> missing;
  std::vector<UnitKey> listed;
  for (int page = 0; page < 100; ++page) {
    Result<QueryReply> r = ListJobs(s, q, User(0, "root"), CoreConfig{}, 5000);
    REQUIRE(r.has_value());
    missing.insert(missing.end(), r->missing.begin(), r->missing.end());
    for (const Job& j : r->jobs) listed.push_back(KeyOf(j));
    if (!r->next) break;
    q.after = r->next;
  }
  CHECK(missing == std::vector<JobId>{998, 999});
  CHECK(listed.front() == UnitKey{2, 0});
  CHECK(listed.size() == 2 + 1 + 5);  // 2, 3, the array and its 4 running + 1 requeued tasks
}

TEST_CASE("query: a job that exists throughout is listed once, however the state changes") {
  ClusterState s = Mixed();
  // Between pages: new jobs arrive, waiting jobs start, running jobs finish.
  JobId next = s.next_job_id;
  auto churn = [&](int page) {
    Actions a;
    a.put_jobs.push_back(Record(next++, page % 2 ? "alice" : "bob", JobState::kQueued));
    for (const auto& [id, job] : s.jobs) {
      if (job.IsArray()) continue;
      if (job.state == JobState::kQueued && id % 4 == page % 4) {
        a.put_jobs.push_back(Record(id, job.owner, JobState::kRunning));
      } else if (job.state == JobState::kRunning && id % 5 == page % 5) {
        a.put_jobs.push_back(Record(id, job.owner, JobState::kCompleted));
      }
    }
    a.next_job_id = next;
    Install(s, a);
  };
  QueryRequest everything;
  everything.include_finished = true;
  const std::vector<UnitKey> before = Expected(s, everything);
  const std::vector<UnitKey> listed = Paged(s, everything, 3, nullptr, churn);
  std::set<UnitKey> seen;
  for (const UnitKey& k : listed) CHECK_MESSAGE(seen.insert(k).second, "listed twice: ", k.job);
  for (const UnitKey& k : before) CHECK_MESSAGE(seen.contains(k), "skipped: ", k.job);
  CHECK(seen.size() > before.size());  // jobs submitted meanwhile come last
}

TEST_CASE("query: a page stops at its scan budget when few units match") {
  ClusterState s;
  Actions a;
  for (JobId id = 1; id <= 3000; ++id) a.put_jobs.push_back(Record(id, "bob", JobState::kQueued));
  a.put_jobs.push_back(Record(3001, "bob", JobState::kHeld));
  Install(s, a);
  QueryRequest q;
  q.states = {"held"};
  q.limit = 1;
  Result<QueryReply> first = ListJobs(s, q, User(0, "root"), CoreConfig{}, 5000);
  REQUIRE(first.has_value());
  CHECK(first->jobs.empty());
  REQUIRE(first->next);
  CHECK(first->next->job == QueryScanBudget(1));  // the last unit examined
  int pages = 0;
  CHECK(Paged(s, q, 1, &pages) == std::vector<UnitKey>{{3001, 0}});
  // 1000 + 1000 + 1000 examined, then the held job fills a page of 1, then an empty page.
  CHECK(pages == 5);
}

TEST_CASE("query: a page stops near kQueryPageBytes when records are large") {
  ClusterState s;
  Actions a;
  for (JobId id = 1; id <= 60; ++id) {
    Job j = Record(id, "bob", JobState::kQueued);
    j.spec.env["BIG"] = std::string(100000, 'x');
    a.put_jobs.push_back(j);
  }
  Install(s, a);
  QueryRequest q;
  q.limit = kMaxQueryPage;
  Result<QueryReply> r = ListJobs(s, q, User(0, "root"), CoreConfig{}, 5000);
  REQUIRE(r.has_value());
  CHECK(r->jobs.size() == 11);  // the 11th record takes the page past 1 MiB
  CHECK(Encode(*r).size() < kQueryPageBytes + 200000);
  CHECK(r->next);
}

TEST_CASE("query: the record size estimate is close to the encoded size") {
  Job j = Record(7, "alice", JobState::kRunning);
  j.spec.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/home/alice"}, {"LANG", "C.UTF-8"}};
  j.spec.args = {"a", "bb"};
  j.attempts.push_back({1, "node1", 5000, 0, ""});
  j.alloc_cores = {0, 1, 2, 3};
  const double encoded = static_cast<double>(JobToJson(j).size());
  CHECK(ApproxRecordBytes(j) > encoded * 0.8);
  CHECK(ApproxRecordBytes(j) < encoded * 1.5);
}

TEST_CASE("query: an unpaged answer that is too large is refused; unknown states are refused") {
  ClusterState s;
  Actions a;
  for (JobId id = 1; id <= static_cast<JobId>(kMaxUnpagedRecords) + 1; ++id) {
    a.put_jobs.push_back(Record(id, "bob", JobState::kQueued));
  }
  Install(s, a);
  Result<QueryReply> r = ListJobs(s, QueryRequest{}, User(0, "root"), CoreConfig{}, 5000);
  REQUIRE(!r.has_value());
  CHECK(r.error().code() == Code::kFailedPrecondition);
  CHECK(r.error().message().find("pages") != std::string::npos);
  QueryRequest paged;
  paged.limit = kMaxQueryPage;
  CHECK(ListJobs(s, paged, User(0, "root"), CoreConfig{}, 5000).has_value());
  QueryRequest bad;
  bad.states = {"runing"};
  Result<QueryReply> b = ListJobs(s, bad, User(0, "root"), CoreConfig{}, 5000);
  REQUIRE(!b.has_value());
  CHECK(b.error().code() == Code::kInvalidArgument);
  CHECK(b.error().message().find("'runing'") != std::string::npos);
}

}  // namespace corral
