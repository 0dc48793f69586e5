// SQLite persistence. A job is stored as its complete record (scheduler/stored_job.h, a
// compact binary form; JSON before schema 9) beside a few columns for queries; the record
// is the truth.
// Durability: WAL with synchronous=FULL, so a committed batch survives power loss,
// and one fsync is shared by every job in the batch.
#include "scheduler/store.h"

#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include <array>
#include <charconv>

#include "scheduler/stored_job.h"

namespace corral {
namespace {

// Migration N takes the schema from version N-1 to N. Never edit a released step;
// add a new one.
constexpr std::array<const char*, 9> kMigrations = {
    // 1: jobs and the next job id.
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE jobs(id INTEGER PRIMARY KEY, state TEXT NOT NULL, owner TEXT NOT NULL,"
    "                  submit_time INTEGER NOT NULL, end_time INTEGER NOT NULL DEFAULT 0,"
    "                  record TEXT NOT NULL);",
    // 2: nodes persist, so that a restarted scheduler still refuses requests no node can
    // ever hold; active jobs are found by state without a full scan.
    "CREATE TABLE nodes(name TEXT PRIMARY KEY, cores INTEGER NOT NULL,"
    "                   mem_mb INTEGER NOT NULL, state TEXT NOT NULL);"
    "CREATE INDEX jobs_by_state ON jobs(state);",
    // 3: an admin's `qmod -d` (drain) survives scheduler restarts.
    "ALTER TABLE nodes ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;",
    // 4: GPUs: the ids a node offers ("0,1,2,3"), so that submit checks and allocations
    // survive restarts.
    "ALTER TABLE nodes ADD COLUMN gpu_ids TEXT NOT NULL DEFAULT '';",
    // 5: features ("avx512,bigmem") and node-local consumables ('{"scratch_gb":800}'), so
    // that submit checks after a restart know them before the node registers again.
    "ALTER TABLE nodes ADD COLUMN features TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE nodes ADD COLUMN consumables TEXT NOT NULL DEFAULT '{}';",
    // 6: array tasks that have been dispatched, one row each (pending ones are ranges in
    // their array's record), so that a task's change rewrites one small row.
    "CREATE TABLE tasks(job_id INTEGER NOT NULL, task_id INTEGER NOT NULL,"
    "                   state TEXT NOT NULL, end_time INTEGER NOT NULL DEFAULT 0,"
    "                   record TEXT NOT NULL, PRIMARY KEY(job_id, task_id));",
    // 7: the audit log of admin and operator actions (qconf -reload, qmod -d/-e, acting
    // on other users' jobs), newest last.
    "CREATE TABLE audit(seq INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL,"
    "                   user TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL);",
    // 8: job and node events (corral events), kept for event_retention so that a
    // subscriber can resume from a sequence number; the record is EncodeEvent JSON.
    "CREATE TABLE events(seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, record TEXT NOT NULL);",
    // 9: job and task records in the compact binary form of stored_job.h instead of JSON:
    // decoding a million JSON records was most of a restart. corral_stored_job() is
    // registered by MigrateTo; a record it cannot decode is left as it is, for Load() to
    // report.
    "UPDATE jobs SET record = corral_stored_job(record) WHERE typeof(record) = 'text';"
    "UPDATE tasks SET record = corral_stored_job(record) WHERE typeof(record) = 'text';",
};

Error SqlError(sqlite3* db, const std::string& what) {
  return Error(Code::kInternal, what + ": " + sqlite3_errmsg(db));
}

Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Error(Code::kInternal, std::string("sqlite: ") + msg);
  }
  return OkStatus();
}

int UserVersion(sqlite3* db) {
  sqlite3_stmt* st = nullptr;
  int v = -1;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    v = sqlite3_column_int(st, 0);
  }
  sqlite3_finalize(st);
  return v;
}

// corral_stored_job(record): a JSON job record (schema < 9) in the stored form; a value
// that is no such record is returned unchanged.
void StoredJobFunction(sqlite3_context* ctx, int, sqlite3_value** args) {
  const auto* bytes = static_cast<const char*>(sqlite3_value_blob(args[0]));
  const std::string_view record(bytes ? bytes : "", sqlite3_value_bytes(args[0]));
  Result<Job> job = DecodeJobRecord(record);
  if (!job) return sqlite3_result_value(ctx, args[0]);
  const std::string stored = EncodeStoredJob(*job);
  sqlite3_result_blob(ctx, stored.data(), static_cast<int>(stored.size()), SQLITE_TRANSIENT);
}

// A job or task record in either form: stored (schema 9) or JSON (rows written before the
// migration, or by hand).
Result<Job> DecodeRecord(sqlite3_stmt* st, int col) {
  const auto* bytes = static_cast<const char*>(sqlite3_column_blob(st, col));
  const std::string_view record(bytes ? bytes : "", sqlite3_column_bytes(st, col));
  return IsStoredJob(record) ? DecodeStoredJob(record) : DecodeJobRecord(record);
}

std::string Text(sqlite3_stmt* st, int col) {
  const unsigned char* t = sqlite3_column_text(st, col);
  return t ? reinterpret_cast<const char*>(t) : "";
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  for (size_t at = 0; at < text.size();) {
    size_t comma = text.find(',', at);
    if (comma == std::string::npos) comma = text.size();
    if (comma > at) out.push_back(text.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

Result<std::map<std::string, int64_t>> ParseCounts(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return Error(Code::kInternal, "not a JSON object: '" + text + "'");
  std::map<std::string, int64_t> out;
  for (const auto& [name, v] : j.items()) {
    if (!v.is_number_integer()) return Error(Code::kInternal, "count of " + name + " not an integer");
    out[name] = v.get<int64_t>();
  }
  return out;
}

}  // namespace

Status Store::MigrateTo(sqlite3* db, int version) {
  int current = UserVersion(db);
  if (current < 0) return SqlError(db, "cannot read schema version");
  if (current > static_cast<int>(kMigrations.size())) {
    return Error(Code::kFailedPrecondition,
                 "database schema version " + std::to_string(current) +
                     " is newer than this Corral understands (" +
                     std::to_string(kMigrations.size()) + ")");
  }
  if (sqlite3_create_function(db, "corral_stored_job", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                              nullptr, StoredJobFunction, nullptr, nullptr) != SQLITE_OK) {
    return SqlError(db, "cannot register corral_stored_job").status;
  }
  for (int v = current + 1; v <= version; ++v) {
    // Each step and its version bump commit together: a crash leaves a whole step or none.
    std::string sql = std::string("BEGIN IMMEDIATE;") + kMigrations[v - 1] +
                      "PRAGMA user_version=" + std::to_string(v) + ";COMMIT;";
    if (Status s = Exec(db, sql.c_str()); !s.ok()) {
      (void)Exec(db, "ROLLBACK");
      return Error(Code::kInternal,
                   "migration to schema version " + std::to_string(v) + " failed: " + s.message());
    }
  }
  return OkStatus();
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    Status s = Error(Code::kInternal, path + ": cannot open database: " +
                                          (db ? sqlite3_errmsg(db) : "out of memory"));
    sqlite3_close(db);
    return std::unexpected(s);
  }
  std::unique_ptr<Store> store(new Store(db));
  sqlite3_busy_timeout(db, 5000);
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    if (Status s = Exec(db, pragma); !s.ok()) {
      return Error(Code::kInternal, path + ": " + s.message());
    }
  }
  if (Status s = MigrateTo(db, kSchemaVersion); !s.ok()) {
    return Error(s.code(), path + ": " + s.message());
  }
  store->version_ = UserVersion(db);
  if (Status s = store->Prepare(); !s.ok()) return std::unexpected(s);
  return store;
}

Store::~Store() {
  sqlite3_finalize(put_job_);
  sqlite3_finalize(put_node_);
  sqlite3_finalize(put_task_);
  sqlite3_finalize(put_meta_);
  sqlite3_finalize(put_audit_);
  sqlite3_finalize(put_event_);
  sqlite3_close(db_);
}

Status Store::Prepare() {
  struct {
    sqlite3_stmt** stmt;
    const char* sql;
  } statements[] = {
      {&put_job_,
       "INSERT INTO jobs(id, state, owner, submit_time, end_time, record) VALUES(?,?,?,?,?,?) "
       "ON CONFLICT(id) DO UPDATE SET state=excluded.state, end_time=excluded.end_time, "
       "record=excluded.record"},
      {&put_node_,
       "INSERT INTO nodes(name, cores, mem_mb, state, enabled, gpu_ids, features, consumables) "
       "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET cores=excluded.cores, "
       "mem_mb=excluded.mem_mb, state=excluded.state, enabled=excluded.enabled, "
       "gpu_ids=excluded.gpu_ids, features=excluded.features, "
       "consumables=excluded.consumables"},
      {&put_task_,
       "INSERT INTO tasks(job_id, task_id, state, end_time, record) VALUES(?,?,?,?,?) "
       "ON CONFLICT(job_id, task_id) DO UPDATE SET state=excluded.state, "
       "end_time=excluded.end_time, record=excluded.record"},
      {&put_meta_,
       "INSERT INTO meta(key, value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET "
       "value=excluded.value"},
      {&put_audit_, "INSERT INTO audit(time, user, action, detail) VALUES(?,?,?,?)"},
      {&put_event_, "INSERT INTO events(seq, time, record) VALUES(?,?,?)"},
  };
  for (auto& s : statements) {
    if (sqlite3_prepare_v3(db_, s.sql, -1, SQLITE_PREPARE_PERSISTENT, s.stmt, nullptr) !=
        SQLITE_OK) {
      return SqlError(db_, "prepare");
    }
  }
  return OkStatus();
}

Result<ClusterState> Store::Load() {
  ClusterState state;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT record FROM jobs ORDER BY id", -1, &st, nullptr) !=
      SQLITE_OK) {
    return SqlError(db_, "load jobs");
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    Result<Job> job = DecodeRecord(st, 0);
    if (!job) {
      sqlite3_finalize(st);
      return Error(Code::kInternal, "corrupt job record in database: " + job.error().message());
    }
    state.next_job_id = std::max(state.next_job_id, job->id + 1);
    const JobId id = job->id;
    state.jobs.emplace_hint(state.jobs.end(), id, std::move(*job));  // rows come in id order
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return SqlError(db_, "load jobs");

  if (sqlite3_prepare_v2(db_, "SELECT record FROM tasks ORDER BY job_id, task_id", -1, &st,
                         nullptr) != SQLITE_OK) {
    return SqlError(db_, "load tasks");
  }
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    Result<Job> task = DecodeRecord(st, 0);
    if (!task || task->task == 0) {
      sqlite3_finalize(st);
      return Error(Code::kInternal, "corrupt task record in database: " +
                                        (task ? "task 0" : task.error().message()));
    }
    const UnitKey key = KeyOf(*task);
    state.tasks.emplace_hint(state.tasks.end(), key, std::move(*task));
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return SqlError(db_, "load tasks");

  if (sqlite3_prepare_v2(db_, "SELECT name, cores, mem_mb, state, enabled, gpu_ids, features, consumables FROM nodes "
                         "ORDER BY name", -1,
                         &st, nullptr) != SQLITE_OK) {
    return SqlError(db_, "load nodes");
  }
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    Node node;
    node.name = Text(st, 0);
    node.total.cores = sqlite3_column_int(st, 1);
    node.total.mem_mb = sqlite3_column_int64(st, 2);
    node.state = NodeStateFromName(Text(st, 3)).value_or(NodeState::kUnreachable);
    node.enabled = sqlite3_column_int(st, 4) != 0;
    const std::string gpus = Text(st, 5);
    for (size_t at = 0; at < gpus.size();) {
      size_t comma = gpus.find(',', at);
      if (comma == std::string::npos) comma = gpus.size();
      int id = 0;
      auto [end, ec] = std::from_chars(gpus.data() + at, gpus.data() + comma, id);
      if (ec != std::errc() || end != gpus.data() + comma) {
        sqlite3_finalize(st);
        return Error(Code::kInternal, "corrupt gpu_ids '" + gpus + "' of node " + node.name);
      }
      node.gpu_ids.push_back(id);
      at = comma + 1;
    }
    node.total.gpus = static_cast<int>(node.gpu_ids.size());
    node.features = SplitList(Text(st, 6));
    Result<std::map<std::string, int64_t>> counts = ParseCounts(Text(st, 7));
    if (!counts) {
      sqlite3_finalize(st);
      return Error(Code::kInternal, "corrupt consumables of node " + node.name + ": " +
                                        counts.error().message());
    }
    node.total.consumables = std::move(*counts);
    state.nodes.emplace(node.name, std::move(node));
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return SqlError(db_, "load nodes");

  if (sqlite3_prepare_v2(db_, "SELECT value FROM meta WHERE key='next_job_id'", -1, &st,
                         nullptr) != SQLITE_OK) {
    return SqlError(db_, "load meta");
  }
  if (sqlite3_step(st) == SQLITE_ROW) {
    // Ids are never reused, even those of jobs whose rows were removed.
    state.next_job_id = std::max<JobId>(state.next_job_id, sqlite3_column_int64(st, 0));
  }
  sqlite3_finalize(st);
  Reindex(state);
  return state;
}

Status Store::Apply(const Actions& actions) {
  if (!actions.Persistent()) return OkStatus();
  if (Status s = Exec(db_, "BEGIN IMMEDIATE"); !s.ok()) return s;
  auto fail = [&](const std::string& what) {
    Status s = SqlError(db_, what).status;
    (void)Exec(db_, "ROLLBACK");
    return s;
  };
  for (const Job& job : actions.put_jobs) {
    const std::string record = EncodeStoredJob(job);
    if (job.task != 0) {
      sqlite3_reset(put_task_);
      sqlite3_bind_int64(put_task_, 1, job.id);
      sqlite3_bind_int64(put_task_, 2, job.task);
      sqlite3_bind_text(put_task_, 3, StateName(job.state).data(),
                        static_cast<int>(StateName(job.state).size()), SQLITE_STATIC);
      sqlite3_bind_int64(put_task_, 4, job.end_time);
      sqlite3_bind_blob(put_task_, 5, record.data(), static_cast<int>(record.size()),
                        SQLITE_TRANSIENT);
      if (sqlite3_step(put_task_) != SQLITE_DONE) {
        return fail("store task " + UnitName(KeyOf(job)));
      }
      continue;
    }
    sqlite3_reset(put_job_);
    sqlite3_bind_int64(put_job_, 1, job.id);
    sqlite3_bind_text(put_job_, 2, StateName(job.state).data(),
                      static_cast<int>(StateName(job.state).size()), SQLITE_STATIC);
    sqlite3_bind_text(put_job_, 3, job.owner.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(put_job_, 4, job.submit_time);
    sqlite3_bind_int64(put_job_, 5, job.end_time);
    sqlite3_bind_blob(put_job_, 6, record.data(), static_cast<int>(record.size()),
                      SQLITE_TRANSIENT);
    if (sqlite3_step(put_job_) != SQLITE_DONE) return fail("store job " + std::to_string(job.id));
  }
  for (const Node& node : actions.put_nodes) {
    sqlite3_reset(put_node_);
    sqlite3_bind_text(put_node_, 1, node.name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(put_node_, 2, node.total.cores);
    sqlite3_bind_int64(put_node_, 3, node.total.mem_mb);
    sqlite3_bind_text(put_node_, 4, NodeStateName(node.state).data(), -1, SQLITE_STATIC);
    sqlite3_bind_int(put_node_, 5, node.enabled ? 1 : 0);
    std::string gpus;
    for (int g : node.gpu_ids) gpus += (gpus.empty() ? "" : ",") + std::to_string(g);
    sqlite3_bind_text(put_node_, 6, gpus.c_str(), -1, SQLITE_TRANSIENT);
    std::string features;
    for (const std::string& f : node.features) features += (features.empty() ? "" : ",") + f;
    sqlite3_bind_text(put_node_, 7, features.c_str(), -1, SQLITE_TRANSIENT);
    const std::string counts = nlohmann::json(node.total.consumables).dump();
    sqlite3_bind_text(put_node_, 8, counts.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(put_node_) != SQLITE_DONE) return fail("store node " + node.name);
  }
  for (const AuditEntry& e : actions.audit) {
    sqlite3_reset(put_audit_);
    sqlite3_bind_int64(put_audit_, 1, e.time);
    sqlite3_bind_text(put_audit_, 2, e.user.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(put_audit_, 3, e.action.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(put_audit_, 4, e.detail.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(put_audit_) != SQLITE_DONE) return fail("store audit entry");
  }
  for (const Event& e : actions.events) {
    const std::string record = EncodeEvent(e);
    sqlite3_reset(put_event_);
    sqlite3_bind_int64(put_event_, 1, e.seq);
    sqlite3_bind_int64(put_event_, 2, e.time);
    sqlite3_bind_text(put_event_, 3, record.c_str(), static_cast<int>(record.size()),
                      SQLITE_TRANSIENT);
    if (sqlite3_step(put_event_) != SQLITE_DONE) return fail("store event");
  }
  if (actions.next_job_id) {
    sqlite3_reset(put_meta_);
    sqlite3_bind_text(put_meta_, 1, "next_job_id", -1, SQLITE_STATIC);
    const std::string v = std::to_string(*actions.next_job_id);
    sqlite3_bind_text(put_meta_, 2, v.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(put_meta_) != SQLITE_DONE) return fail("store next job id");
  }
  if (Status s = Exec(db_, "COMMIT"); !s.ok()) {
    (void)Exec(db_, "ROLLBACK");
    return s;
  }
  return OkStatus();
}

Result<std::vector<AuditEntry>> Store::ReadAudit(int64_t limit) {
  sqlite3_stmt* st = nullptr;
  const char* sql =
      "SELECT time, user, action, detail FROM (SELECT * FROM audit ORDER BY seq DESC LIMIT ?) "
      "ORDER BY seq";
  if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) {
    return SqlError(db_, "read the audit log");
  }
  sqlite3_bind_int64(st, 1, limit);
  std::vector<AuditEntry> out;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    auto text = [&](int col) {
      const unsigned char* t = sqlite3_column_text(st, col);
      return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
    };
    out.push_back({sqlite3_column_int64(st, 0), text(1), text(2), text(3)});
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return SqlError(db_, "read the audit log");
  return out;
}

Result<std::vector<Event>> Store::ReadEvents(int64_t after, int64_t limit) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT record FROM events WHERE seq > ? ORDER BY seq LIMIT ?", -1,
                         &st, nullptr) != SQLITE_OK) {
    return SqlError(db_, "read events");
  }
  sqlite3_bind_int64(st, 1, after);
  sqlite3_bind_int64(st, 2, limit);
  std::vector<Event> out;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    Result<Event> e = DecodeEvent(text ? text : "");
    if (!e) {
      sqlite3_finalize(st);
      return Error(Code::kInternal, "stored " + e.error().message());
    }
    out.push_back(std::move(*e));
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return SqlError(db_, "read events");
  return out;
}

Result<std::pair<int64_t, int64_t>> Store::EventBounds() {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT IFNULL(MIN(seq), 0), IFNULL(MAX(seq), 0) FROM events", -1,
                         &st, nullptr) != SQLITE_OK) {
    return SqlError(db_, "read event bounds");
  }
  std::pair<int64_t, int64_t> out{0, 0};
  if (sqlite3_step(st) == SQLITE_ROW) {
    out = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)};
  }
  sqlite3_finalize(st);
  return out;
}

Status Store::PruneEvents(TimeMs before) {
  sqlite3_stmt* st = nullptr;
  // `time` has no index (one per event would slow every commit): the oldest events are a
  // prefix in seq order, found by walking from the first until one is recent. So a prune
  // reads the rows it deletes and one more, not the whole table (a restart with a million
  // events used to scan them all before answering).
  if (sqlite3_prepare_v2(db_,
                         "DELETE FROM events WHERE seq < IFNULL((SELECT seq FROM events WHERE "
                         "time >= ?1 ORDER BY seq LIMIT 1), (SELECT MAX(seq) FROM events))",
                         -1, &st, nullptr) != SQLITE_OK) {
    return SqlError(db_, "prune events").status;
  }
  sqlite3_bind_int64(st, 1, before);
  const int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return SqlError(db_, "prune events").status;
  return OkStatus();
}

}  // namespace corral
