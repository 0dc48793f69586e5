// qresults: a sweep's (or any array's) tasks as one table: parameters, state, exit, run
// time, node and the results each task wrote to $CORRAL_RESULT; filtered, sorted, as
// text, CSV or JSON, or queried with read-only SQL. The table logic is results_table.h.
#include <nlohmann/json.hpp>

#include "qtools/cli.h"
#include "qtools/client.h"
#include "qtools/results_table.h"

namespace corral {
namespace {

constexpr std::string_view kUsage = R"(usage: qresults job_id [--csv|--json] [--where EXPR]... [--sort COLS]
       qresults job_id --sql QUERY [--csv|--json]

Show the tasks of an array job (qsub -t or --sweep) as one table, one row per task:
  task, the sweep's parameters, state, exit, runtime_s, node, then every key the
  tasks wrote as a JSON object to $CORRAL_RESULT (and result_error when one was refused).
Tasks that have not started yet are listed as "pending".

options:
  --csv             comma-separated values (RFC 4180) instead of the aligned table
  --json            {"columns":[...],"rows":[{...}]}
  --where EXPR      keep rows where EXPR holds: NAME=VALUE, NAME!=VALUE, NAME<VALUE,
                    NAME<=VALUE, NAME>VALUE, NAME>=VALUE (numbers compare as numbers);
                    repeat for AND
  --sort COLS       sort by columns, e.g. --sort filter,-components (- = descending)
  --sql QUERY       run one read-only SQL statement over the table "results" (a private
                    in-memory SQLite copy; your SQL never touches the scheduler's
                    database), e.g. --sql "SELECT filter, AVG(components) FROM results
                    GROUP BY filter"
  -help, --help     this text

exit status: 0 success; 1 unknown job, bad option, bad expression or SQL error, or an
unreachable scheduler.

environment: CORRAL_SCHEDULER  endpoint of the scheduler (set by "corral local env")
)";

ParamPoint PointOf(const std::string& params_json) {
  ParamPoint point;
  if (params_json.empty()) return point;
  const auto j = nlohmann::ordered_json::parse(params_json, nullptr, false);
  if (!j.is_object()) return point;
  for (const auto& [name, value] : j.items()) {
    point.emplace_back(name, value.is_string() ? value.get<std::string>() : value.dump());
  }
  return point;
}

TaskResult RowOf(const Job& task) {
  TaskResult row;
  row.task = task.task;
  row.params = PointOf(task.params);
  row.state = std::string(StateName(task.state));
  if (task.exit_code && IsFinal(task.state)) row.exit_code = *task.exit_code;
  if (task.start_time != 0 && task.end_time > task.start_time && IsFinal(task.state)) {
    row.runtime_s = static_cast<double>(task.end_time - task.start_time) / 1000.0;
  }
  row.node = task.node;
  row.results_json = task.result;
  row.result_error = task.result_error;
  return row;
}

int Run(const std::vector<std::string>& args) {
  std::vector<std::string> where, ids;
  std::string sort, sql;
  bool csv = false, json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= args.size()) return Error(Code::kInvalidArgument, "option '" + a + "' needs a value");
      return args[++i];
    };
    if (cli::IsHelp(a)) {
      cli::Out(kUsage);
      return 0;
    } else if (a == "--csv") {
      csv = true;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--where" || a == "--sort" || a == "--sql") {
      Result<std::string> v = value();
      if (!v) return cli::Fail("qresults", v.error());
      if (a == "--where") {
        where.push_back(*v);
      } else if (a == "--sort") {
        sort = *v;
      } else {
        sql = *v;
      }
    } else if (a.starts_with("-")) {
      return cli::Fail("qresults", Status(Code::kInvalidArgument, "unknown option '" + a + "'"));
    } else {
      ids.push_back(a);
    }
  }
  if (csv && json) return cli::Fail("qresults", Status(Code::kInvalidArgument, "give --csv or --json, not both"));
  Result<std::vector<JobId>> parsed = cli::ParseJobIds(ids);
  if (!parsed) return cli::Fail("qresults", parsed.error());
  if (parsed->size() != 1) {
    return cli::Fail("qresults", Status(Code::kInvalidArgument, "give exactly one job id (see qresults -help)"));
  }
  const JobId id = parsed->front();
  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return cli::Fail("qresults", client.error());
  QueryRequest query;
  query.ids = {id};
  query.include_finished = true;
  Result<QueryReply> jobs = client->Query(query, cli::kCallTimeoutMs);
  if (!jobs) return cli::Fail("qresults", jobs.error());
  const Job* array = nullptr;
  std::vector<TaskResult> rows;
  for (const Job& job : jobs->jobs) {
    if (job.task == 0) array = &job;
    if (job.task != 0 && job.state != JobState::kQueued) rows.push_back(RowOf(job));
  }
  if (array == nullptr) {
    cli::Err("error: job id " + std::to_string(id) + " not found\n");
    return 1;
  }
  if (!array->IsArray()) {
    return cli::Fail("qresults", Status(Code::kInvalidArgument,
                                        "job " + std::to_string(id) + " is not an array job (qsub -t or --sweep)"));
  }
  // Tasks not dispatched yet: their ids are pending (their points are not sent to clients).
  for (const TaskRange& r : array->pending) {
    for (TaskId t = r.first; t <= r.last && rows.size() < 10'000'000; t += r.step) {
      TaskResult row;
      row.task = t;
      row.state = "pending";
      rows.push_back(std::move(row));
    }
  }
  std::sort(rows.begin(), rows.end(), [](const TaskResult& a, const TaskResult& b) { return a.task < b.task; });
  Table table = BuildResultsTable(rows);
  Result<Table> shaped = FilterRows(std::move(table), where);
  if (shaped && !sort.empty()) shaped = SortRows(std::move(*shaped), sort);
  if (shaped && !sql.empty()) shaped = RunSql(*shaped, sql);
  if (!shaped) return cli::Fail("qresults", shaped.error());
  cli::Out(json ? FormatJson(*shaped) : csv ? FormatCsv(*shaped) : FormatText(*shaped));
  return 0;
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) { return corral::cli::Main("qresults", argc, argv, corral::Run); }
