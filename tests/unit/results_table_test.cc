// The qresults table: columns and cells, --where and --sort semantics, the exact text,
// CSV and JSON output of a small sweep, and --sql (aggregates, typing, refusals, limits).
#include "qtools/results_table.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "temp_dir.h"

using namespace corral;
using corral::testing::TempDir;

namespace {

std::vector<TaskResult> Tasks() {
  return {
      {1,
       {{"filter", "gaussian"}, {"sigma", "0.50"}},
       "completed",
       0,
       12.5,
       "n1",
       R"({"components":42,"mean":0.25})",
       ""},
      {2,
       {{"filter", "median"}, {"sigma", "0.50"}},
       "completed",
       0,
       8.0,
       "n2",
       R"({"components":40,"mean":0.5,"notes":"ok, fine"})",
       ""},
      {3, {{"filter", "gaussian"}, {"sigma", "1"}}, "failed", 1, 3.25, "n1", "", ""},
      {4,
       {{"filter", "median"}, {"sigma", "1"}},
       "running",
       std::nullopt,
       std::nullopt,
       "n2",
       "",
       ""},
  };
}

Table Sample() { return BuildResultsTable(Tasks()); }

// The values of column `col`, "-" for missing.
std::vector<std::string> Column(const Table& t, const std::string& col) {
  size_t c = std::find(t.columns.begin(), t.columns.end(), col) - t.columns.begin();
  REQUIRE(c < t.columns.size());
  std::vector<std::string> out;
  for (const auto& row : t.rows)
    out.push_back(row[c].kind == Cell::Kind::kMissing ? "-" : row[c].text);
  return out;
}

std::vector<std::string> TaskIds(const Result<Table>& t) {
  REQUIRE_MESSAGE(t.has_value(), t.error().ToString());
  return Column(*t, "task");
}

std::vector<std::string> Where(std::vector<std::string> exprs) {
  return TaskIds(FilterRows(Sample(), exprs));
}

std::string WhereErr(std::vector<std::string> exprs) {
  Result<Table> t = FilterRows(Sample(), exprs);
  return t ? "OK" : t.error().message();
}

std::string SqlErr(const std::string& query, const SqlLimits& limits = {}) {
  Result<Table> t = RunSql(Sample(), query, limits);
  return t ? "OK" : t.error().message();
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("results table: columns in order, cells typed, missing values") {
  const Table t = Sample();
  CHECK(t.columns == Strings{"task", "filter", "sigma", "state", "exit", "runtime_s", "node",
                             "components", "mean", "notes"});
  REQUIRE(t.rows.size() == 4);
  CHECK(t.rows[0][2].kind == Cell::Kind::kNumber);
  CHECK(t.rows[0][2].text == "0.50");
  CHECK(t.rows[0][2].number == 0.5);
  CHECK(t.rows[0][1].kind == Cell::Kind::kText);
  CHECK(Column(t, "exit") == Strings{"0", "0", "1", "-"});
  CHECK(Column(t, "runtime_s") == Strings{"12.5", "8", "3.25", "-"});
  CHECK(Column(t, "notes") == Strings{"-", "ok, fine", "-", "-"});

  // Nested values as compact JSON, booleans as JSON, null as missing; NaN run time missing.
  TaskResult r{
      7, {}, "completed", 0, std::nan(""), "", R"({"stats": {"a": [1, 2]}, "ok": true, "z": null})",
      ""};
  const Table n = BuildResultsTable(std::vector<TaskResult>{r});
  CHECK(n.columns == Strings{"task", "state", "exit", "runtime_s", "node", "stats", "ok", "z"});
  CHECK(n.rows[0][5].kind == Cell::Kind::kJson);
  CHECK(n.rows[0][5].text == R"({"a":[1,2]})");
  CHECK(n.rows[0][6].text == "true");
  CHECK(n.rows[0][7].kind == Cell::Kind::kMissing);
  CHECK(n.rows[0][3].kind == Cell::Kind::kMissing);
}

TEST_CASE("results table: names that collide are prefixed; bad result JSON is reported") {
  std::vector<TaskResult> tasks = {
      {1,
       {{"state", "x"}, {"filter", "a"}},
       "completed",
       0,
       1.0,
       "n1",
       R"({"filter":1,"State":2,"node":3,"result_error":4})",
       ""},
      {2, {{"state", "y"}, {"filter", "b"}}, "completed", 0, 1.0, "n1", "{bad", ""},
      {3, {{"state", "z"}, {"filter", "c"}}, "failed", 1, 1.0, "n1", "[1,2]", ""},
      {4,
       {{"state", "w"}, {"filter", "d"}},
       "completed",
       0,
       1.0,
       "n1",
       "",
       "oversize (70000 bytes)"},
  };
  const Table t = BuildResultsTable(tasks);
  CHECK(t.columns == Strings{"task", "param_state", "filter", "state", "exit", "runtime_s", "node",
                             "result_filter", "result_State", "result_node", "result_result_error",
                             "result_error"});
  CHECK(Column(t, "result_error") ==
        Strings{"-", "invalid JSON", "invalid JSON: not an object", "oversize (70000 bytes)"});
  CHECK(Column(t, "result_filter") == Strings{"1", "-", "-", "-"});
}

TEST_CASE("results where: operators, numbers, missing values, AND") {
  CHECK(Where({"filter=median"}) == Strings{"2", "4"});
  CHECK(Where({" filter == median "}) == Strings{"2", "4"});
  CHECK(Where({"filter!=median"}) == Strings{"1", "3"});
  CHECK(Where({"sigma=0.5"}) == Strings{"1", "2"});  // numeric: 0.50 == 0.5
  CHECK(Where({"sigma>0.6"}) == Strings{"3", "4"});
  CHECK(Where({"sigma>=.5", "sigma<1"}) == Strings{"1", "2"});
  CHECK(Where({"components>=41"}) == Strings{"1"});
  CHECK(Where({"components<=41"}) == Strings{"2"});  // missing never orders
  CHECK(Where({"exit!=0"}) == Strings{"3", "4"});    // a missing exit is not 0
  CHECK(Where({"exit="}) == Strings{"4"});           // NAME= finds missing values
  CHECK(Where({"runtime_s<10"}) == Strings{"2", "3"});
  CHECK(Where({"state>d", "node=n1"}) == Strings{"3"});  // text compares bytewise
  CHECK(Where({"filter=median", "state=completed"}) == Strings{"2"});
  CHECK(Where({}) == Strings{"1", "2", "3", "4"});
  CHECK(WhereErr({"colour=red"}) ==
        "--where 'colour=red': unknown column 'colour' (known: task, filter, sigma, state, "
        "exit, runtime_s, node, components, mean, notes)");
  CHECK(WhereErr({"filter"}) ==
        "--where 'filter': expected NAME=VALUE, NAME!=VALUE, NAME<VALUE, NAME<=VALUE, "
        "NAME>VALUE or NAME>=VALUE");
  CHECK(WhereErr({"=median"}).starts_with("--where '=median': expected NAME=VALUE"));
  CHECK(WhereErr({"filter!median"}) == "--where 'filter!median': '!' must be followed by '='");
}

TEST_CASE("results sort: numeric-aware, descending, missing last, stable") {
  CHECK(TaskIds(SortRows(Sample(), "components")) == Strings{"2", "1", "3", "4"});
  CHECK(TaskIds(SortRows(Sample(), "-components")) == Strings{"1", "2", "3", "4"});
  CHECK(TaskIds(SortRows(Sample(), "filter,-sigma")) == Strings{"3", "1", "4", "2"});
  CHECK(TaskIds(SortRows(Sample(), "-runtime_s")) == Strings{"1", "2", "3", "4"});
  CHECK(TaskIds(SortRows(Sample(), "node")) == Strings{"1", "3", "2", "4"});  // stable
  CHECK(TaskIds(SortRows(Sample(), " -node , task")) == Strings{"2", "4", "1", "3"});

  // Numbers (by value, not text) before strings; descending reverses both.
  std::vector<TaskResult> mixed;
  int task = 1;
  for (const char* v : {"10", "b", "9", "a", "-1"})
    mixed.push_back({task++, {{"v", v}}, "completed"});
  CHECK(Column(*SortRows(BuildResultsTable(mixed), "v"), "v") ==
        Strings{"-1", "9", "10", "a", "b"});
  CHECK(Column(*SortRows(BuildResultsTable(mixed), "-v"), "v") ==
        Strings{"b", "a", "10", "9", "-1"});

  Result<Table> bad = SortRows(Sample(), "filter,colour");
  REQUIRE(!bad.has_value());
  CHECK(bad.error().message().starts_with(
      "--sort 'filter,colour': unknown column 'colour' (known: task,"));
  CHECK(SortRows(Sample(), "filter,").error().message() ==
        "--sort 'filter,': expected COL[,COL...], -COL for descending");
  CHECK(!SortRows(Sample(), "-").has_value());
}

TEST_CASE("results formats: text, CSV and JSON of a small table") {
  const Table t = Sample();
  CHECK(FormatText(t) ==
        "task  filter    sigma  state      exit  runtime_s  node  components  mean  notes\n"
        "   1  gaussian   0.50  completed     0       12.5  n1            42  0.25  -\n"
        "   2  median     0.50  completed     0          8  n2            40   0.5  ok, fine\n"
        "   3  gaussian      1  failed        1       3.25  n1             -     -  -\n"
        "   4  median        1  running       -          -  n2             -     -  -\n");
  CHECK(FormatCsv(t) ==
        "task,filter,sigma,state,exit,runtime_s,node,components,mean,notes\n"
        "1,gaussian,0.50,completed,0,12.5,n1,42,0.25,\n"
        "2,median,0.50,completed,0,8,n2,40,0.5,\"ok, fine\"\n"
        "3,gaussian,1,failed,1,3.25,n1,,,\n"
        "4,median,1,running,,,n2,,,\n");
  CHECK(FormatJson(t) ==
        R"({"columns":["task","filter","sigma","state","exit","runtime_s","node","components",)"
        R"("mean","notes"],"rows":[)"
        R"({"task":1,"filter":"gaussian","sigma":0.50,"state":"completed","exit":0,)"
        R"("runtime_s":12.5,"node":"n1","components":42,"mean":0.25,"notes":null},)"
        R"({"task":2,"filter":"median","sigma":0.50,"state":"completed","exit":0,)"
        R"("runtime_s":8,"node":"n2","components":40,"mean":0.5,"notes":"ok, fine"},)"
        R"({"task":3,"filter":"gaussian","sigma":1,"state":"failed","exit":1,)"
        R"("runtime_s":3.25,"node":"n1","components":null,"mean":null,"notes":null},)"
        R"({"task":4,"filter":"median","sigma":1,"state":"running","exit":null,)"
        R"("runtime_s":null,"node":"n2","components":null,"mean":null,"notes":null}]})"
        "\n");

  // Quoting and escaping: CSV doubles quotes, text escapes control characters, JSON
  // embeds nested values.
  TaskResult odd{9,  {{"s", "say \"hi\"\nbye"}}, "completed", 0, 1.0,
                 "", R"({"v":{"k":[true]}})",    ""};
  const Table o = BuildResultsTable(std::vector<TaskResult>{odd});
  CHECK(FormatCsv(o) ==
        "task,s,state,exit,runtime_s,node,v\n"
        "9,\"say \"\"hi\"\"\nbye\",completed,0,1,,\"{\"\"k\"\":[true]}\"\n");
  CHECK(FormatText(o) ==
        "task  s              state      exit  runtime_s  node  v\n"
        "   9  say \"hi\"\\nbye  completed     0          1  -     {\"k\":[true]}\n");
  CHECK(FormatJson(o) ==
        R"({"columns":["task","s","state","exit","runtime_s","node","v"],"rows":[{"task":9,)"
        R"("s":"say \"hi\"\nbye","state":"completed","exit":0,"runtime_s":1,"node":null,)"
        R"("v":{"k":[true]}}]})"
        "\n");
  // An empty table is its header.
  CHECK(FormatText(Table{{"task", "state"}, {}}) == "task  state\n");
  CHECK(FormatJson(Table{{"task"}, {}}) == "{\"columns\":[\"task\"],\"rows\":[]}\n");
}

TEST_CASE("results sql: aggregate over the results table") {
  Result<Table> t = RunSql(Sample(), "SELECT filter, AVG(components) FROM results GROUP BY filter");
  REQUIRE_MESSAGE(t.has_value(), t.error().ToString());
  CHECK(FormatText(*t) ==
        "filter    AVG(components)\n"
        "gaussian               42\n"
        "median                 40\n");
  CHECK(FormatCsv(*t) == "filter,AVG(components)\ngaussian,42\nmedian,40\n");
  CHECK(FormatJson(*t) == R"j({"columns":["filter","AVG(components)"],"rows":[)j"
                          R"j({"filter":"gaussian","AVG(components)":42},)j"
                          R"j({"filter":"median","AVG(components)":40}]})j"
                          "\n");

  // Values keep their types; missing values are NULL; booleans 1/0.
  Result<Table> types =
      RunSql(Sample(),
             "SELECT typeof(task), typeof(sigma), typeof(filter), typeof(exit), sigma * 2, "
             "count(*) FILTER (WHERE components IS NULL) AS no_result FROM results "
             "WHERE task = 4 -- trailing comment");
  REQUIRE_MESSAGE(types.has_value(), types.error().ToString());
  CHECK(FormatCsv(*types) ==
        "typeof(task),typeof(sigma),typeof(filter),typeof(exit),sigma * 2,no_result\n"
        "integer,integer,text,null,2,1\n");
  Result<Table> real = RunSql(Sample(),
                              "SELECT typeof(sigma), sigma, 1 AS a, 2 AS a, x'0aff', "
                              "NULL FROM results WHERE task = 1");
  REQUIRE(real.has_value());
  CHECK(FormatCsv(*real) == "typeof(sigma),sigma,a,a_2,x'0aff',NULL\nreal,0.5,1,2,x'0aff',\n");
  TaskResult b{1, {}, "completed", 0, 1.0, "", R"({"ok":true,"nested":[1]})", ""};
  Result<Table> bools = RunSql(BuildResultsTable(std::vector<TaskResult>{b}),
                               "SELECT ok, typeof(ok), nested FROM results WHERE ok");
  REQUIRE(bools.has_value());
  CHECK(FormatCsv(*bools) == "ok,typeof(ok),nested\n1,integer,[1]\n");
  Result<Table> cte = RunSql(Sample(),
                             "WITH m AS (SELECT max(components) AS top FROM results) "
                             "SELECT task FROM results, m WHERE components = top");
  REQUIRE(cte.has_value());
  CHECK(FormatCsv(*cte) == "task\n1\n");
}

TEST_CASE("results sql: only one read-only statement; never a file") {
  TempDir dir;
  const std::string f = dir.path() + "/x.db";
  const std::string refused =
      " is not allowed: --sql runs one read-only query (SELECT ...) over the table 'results'";
  CHECK(SqlErr("INSERT INTO results(task) VALUES (5)") == "--sql: INSERT" + refused);
  CHECK(SqlErr("UPDATE results SET state = 'x'") == "--sql: UPDATE" + refused);
  CHECK(SqlErr("DELETE FROM results") == "--sql: DELETE" + refused);
  CHECK(SqlErr("DROP TABLE results") == "--sql: changing the schema" + refused);
  CHECK(SqlErr("CREATE TABLE t(x)") == "--sql: changing the schema" + refused);
  CHECK(SqlErr("ATTACH '" + f + "' AS x") == "--sql: ATTACH" + refused);
  CHECK(SqlErr("ATTACH ':memory:' AS x") == "--sql: ATTACH" + refused);
  CHECK(SqlErr("DETACH main") == "--sql: DETACH" + refused);
  CHECK(SqlErr("PRAGMA temp_store = FILE") == "--sql: PRAGMA" + refused);
  CHECK(SqlErr("BEGIN") == "--sql: a transaction" + refused);
  CHECK(SqlErr("SELECT load_extension('/tmp/x.so')") == "--sql: load_extension()" + refused);
  CHECK(SqlErr("VACUUM INTO '" + f + "'").find(" is not allowed") != std::string::npos);
  CHECK(SqlErr("VACUUM") == "--sql: this statement" + refused);
  CHECK(SqlErr("REINDEX") == "--sql: this statement" + refused);
  CHECK(!std::filesystem::exists(f));

  CHECK(SqlErr("SELECT 1; SELECT 2") ==
        "--sql: only one statement is allowed (more follows 'SELECT 1;')");
  CHECK(SqlErr("SELECT 1; DROP TABLE results") ==
        "--sql: only one statement is allowed (more follows 'SELECT 1;')");
  CHECK(SqlErr("SELECT 1; nonsense") ==
        "--sql: only one statement is allowed (more follows 'SELECT 1;')");
  CHECK(SqlErr("SELECT 1;  -- fine\n") == "OK");
  CHECK(SqlErr("  ") == "--sql: the query is empty");
  CHECK(SqlErr("SELEC 1") == "--sql: near \"SELEC\": syntax error");
  CHECK(SqlErr("SELECT colour FROM results") == "--sql: no such column: colour");
  CHECK(SqlErr(std::string("SELECT 1\0; DROP TABLE results", 30)) ==
        "--sql: the query holds a NUL");
}

TEST_CASE("results sql: a runaway query is stopped; rows and values are bounded") {
  const std::string forever =
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
  CHECK(SqlErr(forever, {.max_steps = 100'000}) ==
        "--sql: the query was stopped after 100000 steps (a runaway query?)");
  CHECK(SqlErr("SELECT * FROM results", {.max_rows = 3}) ==
        "--sql: the query returns more than 3 rows");
  CHECK(SqlErr("SELECT * FROM results", {.max_rows = 4}) == "OK");
  CHECK(SqlErr("SELECT zeroblob(2000)", {.max_value_bytes = 1000}) ==
        "--sql: string or blob too big");
}
