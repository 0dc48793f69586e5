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

  static constexpr int kSchemaVersion = 6;
  int schema_version() const { return version_; }

  // The whole state, indexes rebuilt.
  Result<ClusterState> Load();

  // Persists every record in `actions` in one transaction; nothing on failure.
  Status Apply(const Actions& actions);

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
};

}  // namespace corral
