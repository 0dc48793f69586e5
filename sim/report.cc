// Output formatting (report.h). nlohmann::json is used here only and does not throw on
// the values we give it (finite numbers, UTF-8 names built from digits).
#include "sim/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace corral::sim {
namespace {

using Json = nlohmann::ordered_json;

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// "114.2 min (6852 s)", "3.1 h (11160 s)", "12 s".
std::string Duration(double s) {
  if (s < 120) return Fmt("%.0f s", s);
  if (s < 2 * 3600) return Fmt("%.1f min", s / 60) + Fmt(" (%.0f s)", s);
  if (s < 2 * 86400) return Fmt("%.2f h", s / 3600) + Fmt(" (%.0f s)", s);
  return Fmt("%.2f days", s / 86400) + Fmt(" (%.0f s)", s);
}

std::string Pct(double x) { return Fmt("%.1f%%", 100 * x); }

std::string PlannerText(const Policy& p) {
  std::string s(PlannerKindName(p.planner.kind));
  if (p.planner.kind == PlannerKind::kEasy && p.planner.reservation_depth != 1) {
    s += " (reservation depth " + std::to_string(p.planner.reservation_depth) + ")";
  }
  s += p.planner.max_jobs_per_pass == std::numeric_limits<int>::max()
           ? ", examines every queued job each pass"
           : ", examines at most " + std::to_string(p.planner.max_jobs_per_pass) +
                 " queued jobs per pass (the policy's max_jobs_per_pass)";
  return s;
}

std::string PolicyText(const Report& r) {
  if (r.policy_file.empty()) return "none: arrival order, no fair-share, no limits";
  return r.policy_file;
}

std::string MachineText(const Report& r) {
  return std::to_string(r.machine.nodes) + (r.machine.nodes == 1 ? " node" : " nodes") + " x " +
         std::to_string(r.machine.cores_per_node) +
         " processors = " + std::to_string(r.machine.Procs()) + " (from " + r.notes.machine_from +
         ")";
}

std::string NotesText(const WorkloadNotes& n) {
  std::string s = std::to_string(n.records) + " job lines, " + std::to_string(n.jobs) +
                  " simulated, " + std::to_string(n.Skipped()) + " skipped (submit time missing " +
                  std::to_string(n.skipped_submit) + ", run time <= 0 " +
                  std::to_string(n.skipped_run) + ", size missing " +
                  std::to_string(n.skipped_size) + ", larger than a node " +
                  std::to_string(n.skipped_too_big) + ")\n";
  s += "              size from field 5 (field 8 missing) " + std::to_string(n.size_from_field5) +
       "; estimate = run time (field 9 missing) " + std::to_string(n.estimate_from_run) +
       "; run cut at its estimate " + std::to_string(n.cut_at_estimate) + "\n";
  return s;
}

std::string UsersText(const std::vector<UserShare>& users, size_t max_users, bool targets) {
  if (max_users == 0 || users.empty()) return "";
  const size_t n = std::min(max_users, users.size());
  std::string s = "users (" + std::to_string(n) + " of " + std::to_string(users.size()) +
                  ", most usage first" + (n < users.size() ? "; all in --json" : "") + ")\n";
  char line[160];
  std::snprintf(line, sizeof line, "  %-10s %-10s %8s %12s %8s %8s %12s\n", "user", "account",
                "jobs", "core-hours", "share", targets ? "target" : "", "mean wait");
  s += line;
  for (size_t i = 0; i < n; ++i) {
    const UserShare& u = users[i];
    std::snprintf(line, sizeof line, "  %-10s %-10s %8lld %12.1f %8s %8s %12s\n", u.user.c_str(),
                  u.group.c_str(), static_cast<long long>(u.jobs), u.core_seconds / 3600,
                  Pct(u.share).c_str(), targets ? Pct(u.target).c_str() : "",
                  Fmt("%.1f min", u.mean_wait_s / 60).c_str());
    s += line;
  }
  return s;
}

std::string MetricsText(const Metrics& m, const SimStats& st) {
  std::string s;
  auto row = [&s](const char* name, const std::string& value) {
    char line[200];
    std::snprintf(line, sizeof line, "  %-24s %s\n", name, value.c_str());
    s += line;
  };
  row("jobs simulated",
      std::to_string(m.jobs) + (m.averaged != m.jobs
                                    ? " (" + std::to_string(m.averaged) + " in the means)"
                                    : std::string()));
  row("mean wait", Duration(m.mean_wait_s));
  row("mean bounded slowdown", Fmt("%.2f", m.mean_bsld) + " (tau = 10 s)");
  row("mean response", Duration(m.mean_response_s));
  row("max wait", Duration(static_cast<double>(m.max_wait_s)));
  row("utilization", Pct(m.utilization));
  row("makespan", Duration(static_cast<double>(m.makespan_s)));
  if (st.refused > 0) row("refused (max_queued_jobs)", std::to_string(st.refused));
  if (st.never_started > 0) row("never started", std::to_string(st.never_started));
  return s;
}

std::string StatsText(const SimStats& st) {
  return "engine        " + std::to_string(st.events) + " event times, " +
         std::to_string(st.passes) + " planner passes (" + std::to_string(st.passes_skipped) +
         " more skipped: nothing fits), " + std::to_string(st.examined) +
         " jobs examined; longest queue " + std::to_string(st.max_queued) + "\n";
}

Json MetricsJson(const Metrics& m) {
  return Json{{"jobs", m.jobs},
              {"averaged", m.averaged},
              {"mean_wait_s", m.mean_wait_s},
              {"mean_bsld", m.mean_bsld},
              {"mean_response_s", m.mean_response_s},
              {"max_wait_s", m.max_wait_s},
              {"utilization", m.utilization},
              {"makespan_s", m.makespan_s},
              {"first_submit_s", m.first_submit_s},
              {"last_end_s", m.last_end_s},
              {"core_seconds", m.core_seconds}};
}

Json RunJson(const RunReport& r, bool targets) {
  Json j = Json::object();
  if (!r.label.empty()) j["window"] = r.label;
  j["metrics"] = MetricsJson(r.metrics);
  j["engine"] = Json{{"event_times", r.stats.events},
                     {"passes", r.stats.passes},
                     {"passes_skipped", r.stats.passes_skipped},
                     {"jobs_examined", r.stats.examined},
                     {"max_queued", r.stats.max_queued},
                     {"refused", r.stats.refused},
                     {"never_started", r.stats.never_started}};
  Json users = Json::array();
  for (const UserShare& u : r.users) {
    Json x{{"user", u.user},
           {"group", u.group},
           {"jobs", u.jobs},
           {"core_seconds", u.core_seconds},
           {"share", u.share}};
    if (targets) x["target"] = u.target;
    x["mean_wait_s"] = u.mean_wait_s;
    users.push_back(std::move(x));
  }
  j["users"] = std::move(users);
  if (!r.stuck.empty()) {
    Json stuck = Json::object();
    for (const auto& [id, why] : r.stuck) stuck[std::to_string(id)] = why;
    j["never_started_examples"] = std::move(stuck);
  }
  return j;
}

double MeanOver(const std::vector<RunReport>& runs, double Metrics::*field) {
  double sum = 0;
  for (const RunReport& r : runs) sum += r.metrics.*field;
  return runs.empty() ? 0 : sum / static_cast<double>(runs.size());
}

Json ReportJsonValue(const Report& r) {
  const bool targets = !r.policy_file.empty();
  Json j;
  j["trace"] = r.trace;
  j["machine"] = Json{{"nodes", r.machine.nodes},
                      {"cores_per_node", r.machine.cores_per_node},
                      {"procs", r.machine.Procs()},
                      {"from", r.notes.machine_from}};
  const WorkloadNotes& n = r.notes;
  j["conventions"] = Json{{"job_lines", n.records},
                          {"jobs", n.jobs},
                          {"skipped", n.Skipped()},
                          {"skipped_submit_missing", n.skipped_submit},
                          {"skipped_run_time_le_0", n.skipped_run},
                          {"skipped_size_missing", n.skipped_size},
                          {"skipped_larger_than_node", n.skipped_too_big},
                          {"size_from_field5", n.size_from_field5},
                          {"estimate_from_run_time", n.estimate_from_run},
                          {"run_cut_at_estimate", n.cut_at_estimate},
                          {"arrivals_first", r.arrivals_first},
                          {"bsld_tau_s", kBsldTauS},
                          {"warmup_percent", r.warmup_percent}};
  j["policy"] = r.policy_file.empty() ? Json(nullptr) : Json(r.policy_file);
  j["planner"] = Json{{"algorithm", std::string(PlannerKindName(r.policy.planner.kind))},
                      {"reservation_depth", r.policy.planner.reservation_depth},
                      {"max_jobs_per_pass", r.policy.planner.max_jobs_per_pass}};
  if (r.runs.size() == 1 && r.runs[0].label.empty()) {
    j.update(RunJson(r.runs[0], targets));
  } else {
    Json windows = Json::array();
    for (const RunReport& run : r.runs) windows.push_back(RunJson(run, targets));
    j["windows"] = std::move(windows);
    j["mean_over_windows"] = Json{{"mean_wait_s", MeanOver(r.runs, &Metrics::mean_wait_s)},
                                  {"mean_bsld", MeanOver(r.runs, &Metrics::mean_bsld)},
                                  {"utilization", MeanOver(r.runs, &Metrics::utilization)}};
  }
  return j;
}

}  // namespace

std::string ReportText(const Report& r, size_t max_users) {
  std::string s = "corral-sim   " + r.trace + "\n";
  s += "machine       " + MachineText(r) + "\n";
  s += "trace         " + NotesText(r.notes);
  s += "policy        " + PolicyText(r) + "\n";
  s += "planner       " + PlannerText(r.policy) + "\n";
  if (!r.arrivals_first) s += "events        arrivals and completions at one time: one pass\n";
  if (r.warmup_percent > 0) {
    s += "warm-up       the first " + Fmt("%g", r.warmup_percent) +
         "% of jobs to terminate are left out of the means\n";
  }
  const bool targets = !r.policy_file.empty();
  if (r.runs.size() == 1 && r.runs[0].label.empty()) {
    const RunReport& run = r.runs[0];
    s += "metrics\n" + MetricsText(run.metrics, run.stats);
    s += StatsText(run.stats);
    for (const auto& [id, why] : run.stuck) {
      s += "  never started: job " + std::to_string(id) + ": " + why + "\n";
    }
    s += UsersText(run.users, max_users, targets);
    return s;
  }
  char line[200];
  std::snprintf(line, sizeof line, "%-20s %6s %14s %12s %10s\n", "window", "jobs", "mean wait (s)",
                "mean bsld", "util");
  s += line;
  for (const RunReport& run : r.runs) {
    std::snprintf(line, sizeof line, "%-20s %6lld %14.1f %12.2f %10s\n", run.label.c_str(),
                  static_cast<long long>(run.metrics.jobs), run.metrics.mean_wait_s,
                  run.metrics.mean_bsld, Pct(run.metrics.utilization).c_str());
    s += line;
  }
  std::snprintf(line, sizeof line, "%-20s %6s %14.1f %12.2f %10s\n", "mean over windows", "",
                MeanOver(r.runs, &Metrics::mean_wait_s), MeanOver(r.runs, &Metrics::mean_bsld),
                Pct(MeanOver(r.runs, &Metrics::utilization)).c_str());
  s += line;
  return s;
}

std::string ReportJson(const Report& r) { return ReportJsonValue(r).dump(2) + "\n"; }

std::string CompareText(const Report& a, const Report& b, size_t max_users) {
  std::string s = "corral-sim   " + a.trace + "\n";
  s += "machine       " + MachineText(a) + "\n";
  s += "trace         " + NotesText(a.notes);
  s += "A             " + PolicyText(a) + "; planner " + PlannerText(a.policy) + "\n";
  s += "B             " + PolicyText(b) + "; planner " + PlannerText(b.policy) + "\n";
  if (a.runs.empty() || b.runs.empty()) return s;
  const Metrics& ma = a.runs[0].metrics;
  const Metrics& mb = b.runs[0].metrics;
  char line[200];
  std::snprintf(line, sizeof line, "%-24s %20s %20s\n", "", "A", "B");
  s += line;
  auto row = [&](const char* name, const std::string& x, const std::string& y) {
    std::snprintf(line, sizeof line, "%-24s %20s %20s\n", name, x.c_str(), y.c_str());
    s += line;
  };
  row("jobs simulated", std::to_string(ma.jobs), std::to_string(mb.jobs));
  row("mean wait (min)", Fmt("%.1f", ma.mean_wait_s / 60), Fmt("%.1f", mb.mean_wait_s / 60));
  row("mean bounded slowdown", Fmt("%.2f", ma.mean_bsld), Fmt("%.2f", mb.mean_bsld));
  row("max wait (h)", Fmt("%.1f", static_cast<double>(ma.max_wait_s) / 3600),
      Fmt("%.1f", static_cast<double>(mb.max_wait_s) / 3600));
  row("utilization", Pct(ma.utilization), Pct(mb.utilization));
  row("makespan (days)", Fmt("%.2f", static_cast<double>(ma.makespan_s) / 86400),
      Fmt("%.2f", static_cast<double>(mb.makespan_s) / 86400));
  row("refused", std::to_string(a.runs[0].stats.refused), std::to_string(b.runs[0].stats.refused));
  row("never started", std::to_string(a.runs[0].stats.never_started),
      std::to_string(b.runs[0].stats.never_started));

  const std::vector<UserShare>& ua = a.runs[0].users;
  std::map<std::string, const UserShare*> ub;
  for (const UserShare& u : b.runs[0].users) ub[u.user] = &u;
  const size_t n = std::min(max_users, ua.size());
  if (n == 0) return s;
  s += "users (" + std::to_string(n) + " of " + std::to_string(ua.size()) +
       ", most usage under A first)\n";
  std::snprintf(line, sizeof line, "  %-10s %9s %9s %9s %9s %13s %13s\n", "user", "target A",
                "share A", "target B", "share B", "mean wait A", "mean wait B");
  s += line;
  for (size_t i = 0; i < n; ++i) {
    const UserShare& x = ua[i];
    auto it = ub.find(x.user);
    const UserShare* y = it == ub.end() ? nullptr : it->second;
    std::snprintf(line, sizeof line, "  %-10s %9s %9s %9s %9s %13s %13s\n", x.user.c_str(),
                  a.policy_file.empty() ? "-" : Pct(x.target).c_str(), Pct(x.share).c_str(),
                  (!y || b.policy_file.empty()) ? "-" : Pct(y->target).c_str(),
                  y ? Pct(y->share).c_str() : "-", Fmt("%.1f min", x.mean_wait_s / 60).c_str(),
                  y ? Fmt("%.1f min", y->mean_wait_s / 60).c_str() : "-");
    s += line;
  }
  return s;
}

std::string CompareJson(const Report& a, const Report& b) {
  return Json{{"a", ReportJsonValue(a)}, {"b", ReportJsonValue(b)}}.dump(2) + "\n";
}

std::string CsvHeader() {
  return "window,job,user,group,account,submit,start,end,wait,run,estimate,size,bsld,node,status\n";
}

void AppendJobsCsv(const std::vector<SimJob>& jobs, const SimResult& result,
                   const std::string& window, std::string& out) {
  char buf[256];
  for (size_t i = 0; i < jobs.size() && i < result.jobs.size(); ++i) {
    const SimJob& j = jobs[i];
    const JobOutcome& o = result.jobs[i];
    out += window;
    std::snprintf(buf, sizeof buf, ",%lld,%s,%s,%s,%lld,", static_cast<long long>(j.swf_id),
                  j.user.c_str(), j.group.c_str(), result.accounts[i].c_str(),
                  static_cast<long long>(j.submit_s));
    out += buf;
    if (o.Ran()) {
      const int64_t wait = o.start_s - j.submit_s;
      std::snprintf(buf, sizeof buf, "%lld,%lld,%lld,%lld,%lld,%d,%.4f,%d,ran\n",
                    static_cast<long long>(o.start_s), static_cast<long long>(o.end_s),
                    static_cast<long long>(wait), static_cast<long long>(j.run_s),
                    static_cast<long long>(j.estimate_s), j.size, BoundedSlowdown(wait, j.run_s),
                    o.node + 1);
    } else {
      std::snprintf(buf, sizeof buf, ",,,%lld,%lld,%d,,,%s\n", static_cast<long long>(j.run_s),
                    static_cast<long long>(j.estimate_s), j.size,
                    o.refused ? "refused" : "never_started");
    }
    out += buf;
  }
}

}  // namespace corral::sim
