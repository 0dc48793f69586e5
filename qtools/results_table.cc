// Building, filtering, sorting and printing the qresults table, and --sql over an
// in-memory SQLite copy of it. nlohmann/json is used without exceptions (parse with
// allow_exceptions = false); SQLite is confined by an authorizer, limits and a step budget.
#include "qtools/results_table.h"

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

namespace corral {
namespace {

Error Invalid(const std::string& message) { return Error(Code::kInvalidArgument, message); }

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The shortest text that reads back as `x`: 12.5, 3, 1e+300.
std::string FormatDouble(double x) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(x);
}

// A finite double as a number cell (to_chars' shortest form is a JSON number).
Cell NumberCell(double x) {
  if (!std::isfinite(x)) return Cell::Missing();
  return {Cell::Kind::kNumber, FormatDouble(x), x};
}

Cell IntCell(int64_t x) { return {Cell::Kind::kNumber, std::to_string(x), double(x)}; }

Cell JsonCell(const nlohmann::ordered_json& v) {
  if (v.is_null()) return Cell::Missing();
  if (v.is_string()) return Cell::Text(v.get<std::string>());
  if (v.is_number()) return {Cell::Kind::kNumber, v.dump(), v.get<double>()};
  return {Cell::Kind::kJson, v.dump(), 0};
}

// Names compared as SQL does (ASCII case-insensitive).
struct ColumnSet {
  std::vector<std::string> names;
  std::set<std::string> taken;  // lower-cased
  // Adds `name`, prefixed by `prefix` until unique; returns its index.
  size_t Add(std::string name, const std::string& prefix) {
    while (taken.contains(Lower(name))) name = prefix + name;
    taken.insert(Lower(name));
    names.push_back(std::move(name));
    return names.size() - 1;
  }
};

std::string KnownColumns(const Table& t) {
  std::string out;
  for (const std::string& c : t.columns) out += (out.empty() ? "" : ", ") + c;
  return out;
}

Result<size_t> FindColumn(const Table& t, std::string_view name, std::string_view context) {
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (t.columns[i] == name) return i;
  }
  return Invalid(std::string(context) + ": unknown column '" + std::string(name) +
                 "' (known: " + KnownColumns(t) + ")");
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::optional<double> ParseNumber(std::string_view s) {
  double x = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(x)) {
    return std::nullopt;
  }
  return x;
}

enum class Op { kEq, kNe, kLt, kLe, kGt, kGe };

struct Condition {
  size_t column;
  Op op;
  std::string value;
  std::optional<double> number;
};

bool Matches(const Cell& c, const Condition& cond) {
  if (c.kind == Cell::Kind::kMissing) {
    if (cond.op == Op::kEq) return cond.value.empty();
    if (cond.op == Op::kNe) return !cond.value.empty();
    return false;
  }
  int cmp;
  if (c.kind == Cell::Kind::kNumber && cond.number) {
    cmp = c.number < *cond.number ? -1 : (c.number > *cond.number ? 1 : 0);
  } else {
    cmp = c.text.compare(cond.value);
  }
  switch (cond.op) {
    case Op::kEq:
      return cmp == 0;
    case Op::kNe:
      return cmp != 0;
    case Op::kLt:
      return cmp < 0;
    case Op::kLe:
      return cmp <= 0;
    case Op::kGt:
      return cmp > 0;
    case Op::kGe:
      return cmp >= 0;
  }
  return false;
}

Result<Condition> ParseCondition(const Table& t, const std::string& expr) {
  const std::string context = "--where '" + expr + "'";
  const size_t pos = expr.find_first_of("=!<>");
  const std::string_view name = Trim(std::string_view(expr).substr(0, pos));
  if (pos == std::string::npos || name.empty()) {
    return Invalid(context +
                   ": expected NAME=VALUE, NAME!=VALUE, NAME<VALUE, NAME<=VALUE, "
                   "NAME>VALUE or NAME>=VALUE");
  }
  static const std::pair<const char*, Op> kOps[] = {
      {"==", Op::kEq}, {"!=", Op::kNe}, {"<=", Op::kLe}, {">=", Op::kGe},
      {"=", Op::kEq},  {"<", Op::kLt},  {">", Op::kGt}};
  std::string_view rest = std::string_view(expr).substr(pos);
  for (const auto& [text, op] : kOps) {
    if (!rest.starts_with(text)) continue;
    Result<size_t> column = FindColumn(t, name, context);
    if (!column) return std::unexpected(column.error());
    const std::string value(Trim(rest.substr(std::string_view(text).size())));
    return Condition{*column, op, value, ParseNumber(value)};
  }
  return Invalid(context + ": '!' must be followed by '='");
}

// -1, 0, 1 for ascending order of two present cells: numbers first, then text.
int CompareCells(const Cell& a, const Cell& b) {
  const bool an = a.kind == Cell::Kind::kNumber, bn = b.kind == Cell::Kind::kNumber;
  if (an != bn) return an ? -1 : 1;
  if (an) return a.number < b.number ? -1 : (a.number > b.number ? 1 : 0);
  const int c = a.text.compare(b.text);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

// The cell as shown in the text table: one line, control characters escaped.
std::string Display(const Cell& c) {
  if (c.kind == Cell::Kind::kMissing) return "-";
  std::string out;
  for (unsigned char ch : c.text) {
    if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (ch < 0x20 || ch == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += std::string("\\x") + kHex[ch >> 4] + kHex[ch & 15];
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out;
}

size_t Width(const std::string& s) {  // code points, for UTF-8 text
  return std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; });
}

std::string CsvField(const Cell& c) {
  if (c.kind == Cell::Kind::kMissing) return "";
  if (c.text.find_first_of(",\"\r\n") == std::string::npos) return c.text;
  std::string out = "\"";
  for (char ch : c.text) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

std::string JsonValue(const Cell& c) {
  switch (c.kind) {
    case Cell::Kind::kMissing:
      return "null";
    case Cell::Kind::kNumber:
    case Cell::Kind::kJson:
      return c.text;
    case Cell::Kind::kText:
      return JsonQuote(c.text);
  }
  return "null";
}

}  // namespace

Cell Cell::FromString(std::string s) {
  if (!IsJsonNumber(s)) return Text(std::move(s));
  const double x = *ParseNumber(s);
  return {Kind::kNumber, std::move(s), x};
}

Table BuildResultsTable(std::span<const TaskResult> tasks) {
  static const char* kFixed[] = {"task", "state", "exit", "runtime_s", "node", "result_error"};
  ColumnSet cols;
  cols.taken.insert(std::begin(kFixed), std::end(kFixed));
  cols.names.push_back("task");
  std::map<std::string, size_t> param_col, result_col;
  for (const TaskResult& t : tasks) {
    for (const auto& [name, value] : t.params) {
      if (!param_col.contains(name)) param_col[name] = cols.Add(name, "param_");
    }
  }
  for (const char* fixed : {"state", "exit", "runtime_s", "node"}) cols.names.push_back(fixed);
  std::vector<nlohmann::ordered_json> results(tasks.size());  // keys in the task's order
  std::vector<std::string> errors(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    errors[i] = tasks[i].result_error;
    if (tasks[i].results_json.empty()) continue;
    auto j = nlohmann::ordered_json::parse(tasks[i].results_json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      if (errors[i].empty()) {
        errors[i] = j.is_discarded() ? "invalid JSON" : "invalid JSON: not an object";
      }
      continue;
    }
    for (const auto& [key, value] : j.items()) {
      if (!result_col.contains(key)) result_col[key] = cols.Add(key, "result_");
    }
    results[i] = std::move(j);
  }
  const bool any_error =
      std::any_of(errors.begin(), errors.end(), [](const std::string& e) { return !e.empty(); });
  if (any_error) cols.names.push_back("result_error");
  const size_t fixed_at = 1 + param_col.size();  // index of "state"

  Table table;
  table.columns = cols.names;
  for (size_t i = 0; i < tasks.size(); ++i) {
    const TaskResult& t = tasks[i];
    std::vector<Cell> row(table.columns.size());
    row[0] = IntCell(t.task);
    for (const auto& [name, value] : t.params) {
      Cell& cell = row[param_col[name]];
      if (cell.kind == Cell::Kind::kMissing) cell = Cell::FromString(value);
    }
    row[fixed_at] = t.state.empty() ? Cell::Missing() : Cell::Text(t.state);
    if (t.exit_code) row[fixed_at + 1] = IntCell(*t.exit_code);
    if (t.runtime_s) row[fixed_at + 2] = NumberCell(*t.runtime_s);
    if (!t.node.empty()) row[fixed_at + 3] = Cell::Text(t.node);
    if (results[i].is_object()) {
      for (const auto& [key, value] : results[i].items()) row[result_col[key]] = JsonCell(value);
    }
    if (any_error && !errors[i].empty()) row.back() = Cell::Text(errors[i]);
    table.rows.push_back(std::move(row));
  }
  return table;
}

Result<Table> FilterRows(Table table, std::span<const std::string> where) {
  std::vector<Condition> conditions;
  for (const std::string& expr : where) {
    Result<Condition> c = ParseCondition(table, expr);
    if (!c) return std::unexpected(c.error());
    conditions.push_back(std::move(*c));
  }
  std::erase_if(table.rows, [&](const std::vector<Cell>& row) {
    return !std::all_of(conditions.begin(), conditions.end(),
                        [&](const Condition& c) { return Matches(row[c.column], c); });
  });
  return table;
}

Result<Table> SortRows(Table table, std::string_view spec) {
  std::vector<std::pair<size_t, bool>> keys;  // column, descending
  const std::string context = "--sort '" + std::string(spec) + "'";
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t comma = std::min(spec.find(',', start), spec.size());
    std::string_view item = Trim(spec.substr(start, comma - start));
    const bool desc = item.starts_with('-');
    if (desc) item = Trim(item.substr(1));
    if (item.empty()) return Invalid(context + ": expected COL[,COL...], -COL for descending");
    Result<size_t> column = FindColumn(table, item, context);
    if (!column) return std::unexpected(column.error());
    keys.emplace_back(*column, desc);
    start = comma + 1;
  }
  std::stable_sort(table.rows.begin(), table.rows.end(),
                   [&](const std::vector<Cell>& a, const std::vector<Cell>& b) {
                     for (const auto& [col, desc] : keys) {
                       const bool am = a[col].kind == Cell::Kind::kMissing;
                       const bool bm = b[col].kind == Cell::Kind::kMissing;
                       if (am || bm) {
                         if (am != bm) return bm;  // missing last
                         continue;
                       }
                       const int c = CompareCells(a[col], b[col]);
                       if (c != 0) return desc ? c > 0 : c < 0;
                     }
                     return false;
                   });
  return table;
}

std::string FormatText(const Table& table) {
  const size_t n = table.columns.size();
  std::vector<size_t> width(n);
  std::vector<bool> numeric(n);
  for (size_t c = 0; c < n; ++c) {
    width[c] = Width(table.columns[c]);
    bool any = false, all = true;
    for (const auto& row : table.rows) {
      width[c] = std::max(width[c], Width(Display(row[c])));
      if (row[c].kind == Cell::Kind::kMissing) continue;
      any = true;
      all = all && row[c].kind == Cell::Kind::kNumber;
    }
    numeric[c] = any && all;
  }
  auto line = [&](auto text_of) {
    std::string out;
    for (size_t c = 0; c < n; ++c) {
      const std::string s = text_of(c);
      const std::string pad(width[c] - Width(s), ' ');
      out += (c ? "  " : "") + (numeric[c] ? pad + s : s + pad);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line([&](size_t c) { return table.columns[c]; });
  for (const auto& row : table.rows) out += line([&](size_t c) { return Display(row[c]); });
  return out;
}

std::string FormatCsv(const Table& table) {
  std::string out;
  for (size_t c = 0; c < table.columns.size(); ++c) {
    out += (c ? "," : "") + CsvField(Cell::Text(table.columns[c]));
  }
  out += "\n";
  for (const auto& row : table.rows) {
    for (size_t c = 0; c < row.size(); ++c) out += (c ? "," : "") + CsvField(row[c]);
    out += "\n";
  }
  return out;
}

std::string FormatJson(const Table& table) {
  std::string out = "{\"columns\":[";
  for (size_t c = 0; c < table.columns.size(); ++c) {
    out += (c ? "," : "") + JsonQuote(table.columns[c]);
  }
  out += "],\"rows\":[";
  for (size_t r = 0; r < table.rows.size(); ++r) {
    out += r ? ",{" : "{";
    for (size_t c = 0; c < table.columns.size(); ++c) {
      out += (c ? "," : "") + JsonQuote(table.columns[c]) + ":" + JsonValue(table.rows[r][c]);
    }
    out += "}";
  }
  return out + "]}\n";
}

namespace {

// State the SQLite callbacks share with RunSql.
struct SqlGuard {
  int64_t max_calls = 0;  // progress callbacks (every kStepsPerCall steps) before stopping
  int64_t calls = 0;
  bool stopped = false;
  int denied = 0;  // the first action the authorizer refused
};
constexpr int kStepsPerCall = 1000;

int Progress(void* arg) {
  auto* g = static_cast<SqlGuard*>(arg);
  g->stopped = ++g->calls > g->max_calls;
  return g->stopped ? 1 : 0;
}

// Only reading: the user's query may select, read columns and call functions (not
// load_extension), nothing else; ATTACH passes sqlite3_stmt_readonly() so it is refused here.
constexpr int kSchemaChange = -1;  // a write to sqlite_schema: CREATE, DROP, ALTER

int Authorize(void* arg, int action, const char* a, const char* b, const char*, const char*) {
  if (action == SQLITE_SELECT || action == SQLITE_READ || action == SQLITE_RECURSIVE ||
      (action == SQLITE_FUNCTION && b != nullptr && std::string_view(b) != "load_extension")) {
    return SQLITE_OK;
  }
  auto* g = static_cast<SqlGuard*>(arg);
  const bool schema =
      (action == SQLITE_INSERT || action == SQLITE_UPDATE || action == SQLITE_DELETE) &&
      a != nullptr && std::string_view(a).starts_with("sqlite_");
  if (g->denied == 0) g->denied = schema ? kSchemaChange : action;
  return SQLITE_DENY;
}

std::string ActionName(int action) {
  switch (action) {
    case SQLITE_INSERT:
      return "INSERT";
    case SQLITE_UPDATE:
      return "UPDATE";
    case SQLITE_DELETE:
      return "DELETE";
    case SQLITE_ATTACH:
      return "ATTACH";
    case SQLITE_DETACH:
      return "DETACH";
    case SQLITE_PRAGMA:
      return "PRAGMA";
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
      return "a transaction";
    case SQLITE_FUNCTION:
      return "load_extension()";
    default:
      return "changing the schema";
  }
}

std::string QuoteIdent(const std::string& name) {
  std::string out = "\"";
  for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

int Bind(sqlite3_stmt* stmt, int i, const Cell& c) {
  int64_t n = 0;
  switch (c.kind) {
    case Cell::Kind::kMissing:
      return sqlite3_bind_null(stmt, i);
    case Cell::Kind::kNumber:
      if (c.text.find_first_of(".eE") == std::string::npos &&
          std::from_chars(c.text.data(), c.text.data() + c.text.size(), n).ec == std::errc()) {
        return sqlite3_bind_int64(stmt, i, n);
      }
      return sqlite3_bind_double(stmt, i, c.number);
    case Cell::Kind::kJson:
      if (c.text == "true" || c.text == "false") return sqlite3_bind_int(stmt, i, c.text == "true");
      [[fallthrough]];
    case Cell::Kind::kText:
      return sqlite3_bind_text(stmt, i, c.text.data(), static_cast<int>(c.text.size()),
                               SQLITE_TRANSIENT);
  }
  return SQLITE_MISUSE;
}

Cell ColumnCell(sqlite3_stmt* stmt, int i) {
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER:
      return IntCell(sqlite3_column_int64(stmt, i));
    case SQLITE_FLOAT: {
      const double x = sqlite3_column_double(stmt, i);
      return std::isfinite(x) ? NumberCell(x) : Cell::Text(x > 0 ? "Inf" : "-Inf");
    }
    case SQLITE_TEXT:
      return Cell::Text(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, i)),
                                    sqlite3_column_bytes(stmt, i)));
    case SQLITE_BLOB: {
      const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(stmt, i));
      std::string hex = "x'";
      for (int k = 0; k < sqlite3_column_bytes(stmt, i); ++k) {
        hex += "0123456789abcdef"[p[k] >> 4];
        hex += "0123456789abcdef"[p[k] & 15];
      }
      return Cell::Text(hex + "'");
    }
    default:
      return Cell::Missing();
  }
}

using Db = std::unique_ptr<sqlite3, decltype(&sqlite3_close)>;
using Stmt = std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)>;

// The table as `results` in a fresh in-memory database that keeps temporary data in memory.
Result<Db> LoadTable(const Table& table) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(":memory:", &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  Db db(raw, sqlite3_close);
  auto fail = [&](const std::string& what) {
    return Error(Code::kInternal,
                 "--sql: " + what + ": " + (db ? sqlite3_errmsg(db.get()) : "out of memory"));
  };
  if (rc != SQLITE_OK) return fail("cannot open an in-memory database");
  sqlite3_db_config(db.get(), SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  sqlite3_db_config(db.get(), SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db.get(), SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  std::string create = "PRAGMA temp_store = MEMORY; CREATE TABLE results(";
  std::string insert = "INSERT INTO results VALUES(";
  for (size_t c = 0; c < table.columns.size(); ++c) {
    create += (c ? "," : "") + QuoteIdent(table.columns[c]);  // no type: values keep theirs
    insert += c ? ",?" : "?";
  }
  if (sqlite3_exec(db.get(), (create + "); BEGIN").c_str(), nullptr, nullptr, nullptr) != 0) {
    return fail("cannot create the results table");
  }
  sqlite3_stmt* raw_stmt = nullptr;
  if (sqlite3_prepare_v2(db.get(), (insert + ")").c_str(), -1, &raw_stmt, nullptr) != 0) {
    return fail("cannot load the results table");
  }
  Stmt stmt(raw_stmt, sqlite3_finalize);
  for (const auto& row : table.rows) {
    for (size_t c = 0; c < row.size(); ++c) Bind(stmt.get(), static_cast<int>(c) + 1, row[c]);
    if (sqlite3_step(stmt.get()) != SQLITE_DONE) return fail("cannot load the results table");
    sqlite3_reset(stmt.get());
  }
  if (sqlite3_exec(db.get(), "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail("cannot load the results table");
  }
  return db;
}

}  // namespace

Result<Table> RunSql(const Table& table, const std::string& query, const SqlLimits& limits) {
  if (query.find('\0') != std::string::npos) return Invalid("--sql: the query holds a NUL");
  Result<Db> loaded = LoadTable(table);
  if (!loaded) return std::unexpected(loaded.error());
  sqlite3* db = loaded->get();
  sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, limits.max_value_bytes);
  SqlGuard guard{std::max<int64_t>(1, limits.max_steps / kStepsPerCall)};
  sqlite3_set_authorizer(db, Authorize, &guard);
  sqlite3_progress_handler(db, kStepsPerCall, Progress, &guard);
  const std::string refused =
      " is not allowed: --sql runs one read-only query (SELECT ...) "
      "over the table 'results'";

  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  if (sqlite3_prepare_v2(db, query.c_str(), -1, &raw, &tail) != SQLITE_OK) {
    if (guard.denied) return Invalid("--sql: " + ActionName(guard.denied) + refused);
    return Invalid(std::string("--sql: ") + sqlite3_errmsg(db));
  }
  Stmt stmt(raw, sqlite3_finalize);
  if (!stmt) return Invalid("--sql: the query is empty");
  sqlite3_stmt* next = nullptr;
  const int rc_next = sqlite3_prepare_v2(db, tail, -1, &next, nullptr);
  sqlite3_finalize(next);
  if (rc_next != SQLITE_OK || next != nullptr) {
    return Invalid("--sql: only one statement is allowed (more follows '" +
                   std::string(query.c_str(), tail) + "')");
  }
  // Defence in depth: VACUUM passes the authorizer, REINDEX may return no rows and no error.
  if (!sqlite3_stmt_readonly(stmt.get()) || sqlite3_column_count(stmt.get()) == 0) {
    return Invalid("--sql: this statement" + refused);
  }

  Table out;
  for (int i = 0; i < sqlite3_column_count(stmt.get()); ++i) {
    const char* name = sqlite3_column_name(stmt.get(), i);
    std::string unique = name ? name : "?";
    for (int k = 2; std::find(out.columns.begin(), out.columns.end(), unique) != out.columns.end();
         ++k) {
      unique = std::string(name ? name : "?") + "_" + std::to_string(k);
    }
    out.columns.push_back(std::move(unique));
  }
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    if (static_cast<int64_t>(out.rows.size()) >= limits.max_rows) {
      return Invalid("--sql: the query returns more than " + std::to_string(limits.max_rows) +
                     " rows");
    }
    std::vector<Cell> row;
    for (int i = 0; i < static_cast<int>(out.columns.size()); ++i) {
      row.push_back(ColumnCell(stmt.get(), i));
    }
    out.rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) {
    if (guard.stopped) {
      return Invalid("--sql: the query was stopped after " + std::to_string(limits.max_steps) +
                     " steps (a runaway query?)");
    }
    return Invalid(std::string("--sql: ") + sqlite3_errmsg(db));
  }
  return out;
}

}  // namespace corral
