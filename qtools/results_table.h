// The qresults table of a sweep: one row per task with its parameters, state, exit,
// run time, node and the key/value results it wrote; --where filters, --sort, text/CSV/JSON
// output, and --sql over a private in-memory SQLite copy. Pure: no sockets, no clock, and
// user SQL never opens a file. docs/sweeps.md describes the options.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "qtools/sweep.h"

namespace corral {

// One task of a sweep, as the scheduler returns it.
struct TaskResult {
  int64_t task = 0;
  ParamPoint params;
  std::string state;                // "queued", "running", "completed", "failed", ...
  std::optional<int> exit_code;     // absent until it exited
  std::optional<double> runtime_s;  // absent (or NaN) until it ran
  std::string node;                 // empty if it never started
  std::string results_json;         // the flat JSON object the task wrote, or empty
  std::string result_error;         // why the result was not kept ("invalid JSON"), or empty
};

// One value of the table.
struct Cell {
  enum class Kind {
    kMissing,  // no value: "-" in text, empty in CSV, null in JSON and SQL
    kNumber,   // `text` is a JSON number literal, `number` its value
    kText,     // a string
    kJson,     // `text` is compact JSON: true, false, or a nested object or array
  };
  Kind kind = Kind::kMissing;
  std::string text;
  double number = 0;

  static Cell Missing() { return {}; }
  static Cell Text(std::string s) { return {Kind::kText, std::move(s), 0}; }
  // A number if IsJsonNumber(s), else text.
  static Cell FromString(std::string s);
};

// A table: column names (unique, ignoring ASCII case, as SQL requires) and rows of
// columns.size() cells each.
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<Cell>> rows;
};

// The qresults table of `tasks`, in their order. Columns: task, the parameter names
// (first-seen order), state, exit, runtime_s, node, the result keys (union, first-seen
// order), then result_error if any task has one. A parameter named like a fixed column
// becomes param_NAME; a result key named like an earlier column becomes result_KEY.
// results_json that is not a JSON object leaves the task's results missing and sets its
// result_error ("invalid JSON: ...") unless one was given. Nested values become compact
// JSON text (kJson), booleans kJson true/false, JSON null a missing value.
Table BuildResultsTable(std::span<const TaskResult> tasks);

// The rows matching every expression of `where` (AND), each NAME OP VALUE with OP one of
// = (or ==), !=, <, <=, >, >= and spaces around NAME and VALUE ignored. The comparison is
// numeric when the cell is a number and VALUE parses as one, else bytewise on the text.
// A missing value matches only NAME= (empty VALUE) and NAME!=VALUE (non-empty VALUE).
// InvalidArgument for a malformed expression or an unknown column (the message lists the
// known columns).
Result<Table> FilterRows(Table table, std::span<const std::string> where);

// The rows stably sorted by `spec`: "col[,col...]", "-col" for descending. Ascending puts
// numbers first (by value), then text (bytewise); descending reverses that; missing
// values are last either way. InvalidArgument for an unknown column or an empty name.
Result<Table> SortRows(Table table, std::string_view spec);

// Aligned text: a header line, then one line per row; columns two spaces apart, number
// columns right-aligned, missing values "-", control characters escaped (\n, \t, ...).
std::string FormatText(const Table& table);
// CSV: a header row then the rows, RFC 4180 quoting (fields holding , " CR or LF are
// quoted, quotes doubled), LF line ends, missing values empty.
std::string FormatCsv(const Table& table);
// {"columns":[...],"rows":[{"col":value,...},...]} on one line plus LF; numbers as
// numbers, missing as null, kJson values embedded as JSON.
std::string FormatJson(const Table& table);

struct SqlLimits {
  int64_t max_steps = 200'000'000;  // SQLite VM steps before the query is stopped
  int64_t max_rows = 1'000'000;     // rows in the result set
  int max_value_bytes = 64 << 20;   // largest string or blob a query may build
};

// Runs `query` over `table` loaded as the table `results` of a private in-memory SQLite
// database (numbers as INTEGER or REAL, booleans 1/0, other values TEXT, missing NULL)
// and returns its result set. Exactly one read-only statement (SELECT, VALUES, WITH ...)
// is allowed: writes, ATTACH, PRAGMA, transactions and trailing statements are refused,
// temporary storage stays in memory, and a query running past `limits` is stopped.
// InvalidArgument with SQLite's message on any error.
Result<Table> RunSql(const Table& table, const std::string& query, const SqlLimits& limits = {});

}  // namespace corral
