// The scheduler's durable state in SQLite: jobs, nodes and the next job id. Load() at
// start-up; Apply() persists one batch of Actions in one transaction (group commit).
// The schema is versioned (PRAGMA user_version) and migrated forward on open.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "scheduler/core.h"

struct sqlite3;
struct sqlite3_stmt;

namespace corral {

class Store {
 public:
  // Opens or creates the database at `path` (":memory:" for tests), sets WAL and full
  // synchronous mode, and migrates the schema to kSchemaVersion. Refuses a database
  // written by a newer Corral.
  static Result<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  static constexpr int kSchemaVersion = 9;
  int schema_version() const { return version_; }

  // The whole state, indexes rebuilt.
  Result<ClusterState> Load();

  // Persists every record in `actions` in one transaction; nothing on failure.
  Status Apply(const Actions& actions);

  // The latest `limit` audit entries, oldest first.
  Result<std::vector<AuditEntry>> ReadAudit(int64_t limit);

  // Events after `after`, oldest first, at most `limit`.
  Result<std::vector<Event>> ReadEvents(int64_t after, int64_t limit);
  // The oldest and newest event kept ({0, 0} when there is none).
  Result<std::pair<int64_t, int64_t>> EventBounds();
  // Forgets the events older than `before` that come before every newer one in seq order
  // (all of them unless the clock stepped back), always keeping the newest (its seq numbers
  // on). Reads the rows it deletes, not the whole table.
  Status PruneEvents(TimeMs before);

  // Applies migrations 1..`version` only: for tests of migration from older schemas.
  static Status MigrateTo(sqlite3* db, int version);

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status Prepare();

  sqlite3* db_;
  int version_ = 0;
  sqlite3_stmt* put_job_ = nullptr;
  sqlite3_stmt* put_node_ = nullptr;
  sqlite3_stmt* put_task_ = nullptr;
  sqlite3_stmt* put_meta_ = nullptr;
  sqlite3_stmt* put_audit_ = nullptr;
  sqlite3_stmt* put_event_ = nullptr;
};

}  // namespace corral
