// The store on real SQLite files: round trip, migration from schema 1, reopen after an
// unclean close (a child process that dies mid-life without closing the database).
#include <doctest/doctest.h>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>

#include "builders.h"
#include "temp_dir.h"
#include "scheduler/store.h"

using namespace corral;
using namespace corral::testing;

namespace {

Job SubmittedJob(JobId id, JobState state = JobState::kQueued) {
  Job j;
  j.id = id;
  j.spec = Spec(2, 512, "j" + std::to_string(id));
  j.uid = 1000;
  j.owner = "alice";
  j.state = state;
  j.submit_time = 1000 * id;
  return j;
}

}  // namespace

TEST_CASE("store: a batch round-trips through a reopened database") {
  TempDir dir;
  const std::string db = dir.path() + "/corral.db";
  {
    auto store = Store::Open(db);
    REQUIRE(store.has_value());
    CHECK((*store)->schema_version() == Store::kSchemaVersion);
    Actions a;
    a.put_jobs = {SubmittedJob(1), SubmittedJob(2, JobState::kHeld)};
    a.put_nodes = {MakeNode("node1", 4, 8192), MakeNode("node2", 2, 1024)};
    a.put_nodes[1].enabled = false;
    a.put_nodes[0].gpu_ids = {0, 1, 3};
    a.put_nodes[0].total.gpus = 3;
    a.put_nodes[0].features = {"avx512", "bigmem"};
    a.put_nodes[0].total.consumables = {{"scratch_gb", 800}};
    a.next_job_id = 3;
    REQUIRE((*store)->Apply(a).ok());
    Actions b;  // an update of job 1 in a later batch
    Job running = SubmittedJob(1, JobState::kRunning);
    running.node = "node1";
    running.attempt = 1;
    running.attempts = {{1, "node1", 5000, 0, ""}};
    b.put_jobs = {running};
    REQUIRE((*store)->Apply(b).ok());
  }
  auto store = Store::Open(db);
  REQUIRE(store.has_value());
  auto state = (*store)->Load();
  REQUIRE(state.has_value());
  CHECK(state->jobs.size() == 2);
  CHECK(state->jobs.at(1).state == JobState::kRunning);
  CHECK(state->jobs.at(1).node == "node1");
  CHECK(state->jobs.at(2) == SubmittedJob(2, JobState::kHeld));
  CHECK(state->running == std::set<UnitKey>{{1, 0}});
  CHECK(state->held == std::set<JobId>{2});
  CHECK(state->next_job_id == 3);
  Resources node1{4, 8192, 3};
  node1.consumables = {{"scratch_gb", 800}};
  CHECK(state->nodes.at("node1").total == node1);
  CHECK(state->nodes.at("node1").features == std::vector<std::string>{"avx512", "bigmem"});
  CHECK(state->nodes.at("node2").features.empty());
  CHECK(state->nodes.at("node1").enabled);
  CHECK(state->nodes.at("node1").gpu_ids == std::vector<int>{0, 1, 3});
  CHECK(state->nodes.at("node1").total.gpus == 3);
  CHECK_FALSE(state->nodes.at("node2").enabled);
  CHECK(state->jobs.at(1).attempts == std::vector<Attempt>{{1, "node1", 5000, 0, ""}});
}

TEST_CASE("store: ids are never reused even when the last job row is gone") {
  auto store = Store::Open(":memory:");
  REQUIRE(store.has_value());
  Actions a;
  a.next_job_id = 100;
  REQUIRE((*store)->Apply(a).ok());
  CHECK((*store)->Load()->next_job_id == 100);
}

TEST_CASE("store: a schema-1 database is migrated and keeps its jobs") {
  TempDir dir;
  const std::string db = dir.path() + "/old.db";
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  REQUIRE(Store::MigrateTo(raw, 1).ok());
  const Job job = SubmittedJob(7);
  const std::string insert = "INSERT INTO jobs(id, state, owner, submit_time, record) VALUES(7, "
                             "'queued', 'alice', 7000, '" + EncodeJobRecord(job) + "')";
  REQUIRE(sqlite3_exec(raw, insert.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(raw, "SELECT count(*) FROM sqlite_master WHERE name='nodes'", -1, &st,
                     nullptr);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(sqlite3_column_int(st, 0) == 0);  // really the old schema
  sqlite3_finalize(st);
  sqlite3_close(raw);

  auto store = Store::Open(db);
  REQUIRE(store.has_value());
  CHECK((*store)->schema_version() == Store::kSchemaVersion);
  auto state = (*store)->Load();
  REQUIRE(state.has_value());
  CHECK(state->jobs.at(7) == job);
  CHECK(state->next_job_id == 8);
  Actions a;
  a.put_nodes = {MakeNode("n", 1, 1)};
  CHECK((*store)->Apply(a).ok());  // the new table works
}

TEST_CASE("store: a database from a newer Corral is refused") {
  TempDir dir;
  const std::string db = dir.path() + "/new.db";
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  sqlite3_exec(raw, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  auto store = Store::Open(db);
  REQUIRE_FALSE(store.has_value());
  CHECK(store.error().message().find("newer") != std::string::npos);
}

TEST_CASE("store: reopen after an unclean close keeps every committed batch") {
  TempDir dir;
  const std::string db = dir.path() + "/crash.db";
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child commits 50 batches and dies without closing anything.
    auto store = Store::Open(db);
    if (!store) _exit(3);
    for (JobId id = 1; id <= 50; ++id) {
      Actions a;
      a.put_jobs = {SubmittedJob(id)};
      a.next_job_id = id + 1;
      if (!(*store)->Apply(a).ok()) _exit(4);
    }
    kill(getpid(), SIGKILL);  // uncatchable, like a crash: no close, no WAL checkpoint
    _exit(5);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFSIGNALED(status));
  CHECK(std::filesystem::exists(db + "-wal"));  // the WAL was left behind, unmerged
  auto store = Store::Open(db);
  REQUIRE(store.has_value());
  auto state = (*store)->Load();
  REQUIRE(state.has_value());
  CHECK(state->jobs.size() == 50);
  CHECK(state->next_job_id == 51);
  CHECK(state->queued.size() == 50);
}

TEST_CASE("store: a corrupt record is reported, not loaded as garbage") {
  TempDir dir;
  const std::string db = dir.path() + "/bad.db";
  {
    auto s2 = Store::Open(db);
    REQUIRE(s2.has_value());
  }
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  sqlite3_exec(raw,
               "INSERT INTO jobs(id, state, owner, submit_time, record) "
               "VALUES(1, 'queued', 'x', 0, '{\"id\": \"one\"}')",
               nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  auto s3 = Store::Open(db);
  REQUIRE(s3.has_value());
  auto state = (*s3)->Load();
  REQUIRE_FALSE(state.has_value());
  CHECK(state.error().message().find("corrupt job record") != std::string::npos);
}

namespace {

// The SQLite type of each job's and task's record column, in id order.
std::vector<std::string> RecordTypes(const std::string& db) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  std::vector<std::string> out;
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(raw,
                             "SELECT typeof(record) FROM jobs UNION ALL "
                             "SELECT typeof(record) FROM tasks",
                             -1, &st, nullptr) == SQLITE_OK);
  while (sqlite3_step(st) == SQLITE_ROW) {
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  }
  sqlite3_finalize(st);
  sqlite3_close(raw);
  return out;
}

}  // namespace

TEST_CASE("store: migration 9 turns schema-8 JSON records into stored ones, exactly") {
  TempDir dir;
  const std::string db = dir.path() + "/v8.db";
  Job job = SubmittedJob(7);
  job.spec.env = {{"HOME", "/home/alice"}};
  Job array = SubmittedJob(8);
  array.spec.array = TaskRange{1, 4, 1};
  array.pending = {{3, 4, 1}};
  Job task = SubmittedJob(8, JobState::kCompleted);
  task.task = 2;
  task.spec = JobSpec();
  task.exit_code = 0;
  task.attempts = {{1, "node1", 5000, 6000, "exited with code 0"}};
  {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
    REQUIRE(Store::MigrateTo(raw, 8).ok());
    const std::string insert =
        "INSERT INTO jobs(id, state, owner, submit_time, record) VALUES"
        "(7, 'queued', 'alice', 7000, '" + EncodeJobRecord(job) + "'),"
        "(8, 'queued', 'alice', 8000, '" + EncodeJobRecord(array) + "');"
        "INSERT INTO tasks(job_id, task_id, state, record) VALUES"
        "(8, 2, 'completed', '" + EncodeJobRecord(task) + "');";
    REQUIRE(sqlite3_exec(raw, insert.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(raw);
  }
  CHECK(RecordTypes(db) == std::vector<std::string>{"text", "text", "text"});
  auto store = Store::Open(db);
  REQUIRE(store.has_value());
  CHECK((*store)->schema_version() == 9);
  CHECK(RecordTypes(db) == std::vector<std::string>{"blob", "blob", "blob"});
  auto state = (*store)->Load();
  REQUIRE(state.has_value());
  CHECK(state->jobs.at(7) == job);
  CHECK(state->jobs.at(8) == array);
  CHECK(state->tasks.at({8, 2}) == task);
  CHECK(state->task_counts.at(8).completed == 1);
}

TEST_CASE("store: a record migration 9 cannot read stays as it was, for Load to report") {
  TempDir dir;
  const std::string db = dir.path() + "/v8bad.db";
  {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
    REQUIRE(Store::MigrateTo(raw, 8).ok());
    REQUIRE(sqlite3_exec(raw,
                         "INSERT INTO jobs(id, state, owner, submit_time, record) "
                         "VALUES(1, 'queued', 'x', 0, '{\"id\": \"one\"}')",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(raw);
  }
  auto store = Store::Open(db);
  REQUIRE(store.has_value());
  CHECK(RecordTypes(db) == std::vector<std::string>{"text"});
  auto state = (*store)->Load();
  REQUIRE_FALSE(state.has_value());
  CHECK(state.error().message().find("corrupt job record") != std::string::npos);
}

TEST_CASE("store: a corrupt stored record is reported with the field it breaks") {
  TempDir dir;
  const std::string db = dir.path() + "/badblob.db";
  {
    auto store = Store::Open(db);
    REQUIRE(store.has_value());
    Actions a;
    a.put_jobs = {SubmittedJob(1)};
    REQUIRE((*store)->Apply(a).ok());
  }
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  // Cut the record short: the spec's last fields are gone.
  REQUIRE(sqlite3_exec(raw, "UPDATE jobs SET record = substr(record, 1, length(record) - 3)",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(raw);
  auto store = Store::Open(db);
  REQUIRE(store.has_value());
  auto state = (*store)->Load();
  REQUIRE_FALSE(state.has_value());
  CHECK(state.error().message().find("corrupt job record in database: stored job 1: spec.") !=
        std::string::npos);
}
