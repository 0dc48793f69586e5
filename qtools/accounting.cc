// Totals for qacct -o (accounting.h).
#include "qtools/accounting.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <tuple>

namespace corral {

std::vector<OwnerTotals> TotalsByOwner(std::span<const Job> jobs, std::string_view owner,
                                      TimeMs from, TimeMs to) {
  std::map<std::string, OwnerTotals> by_owner;
  for (const Job& job : jobs) {
    if (!IsFinal(job.state) || job.attempts.empty()) continue;
    if (!owner.empty() && job.owner != owner) continue;
    if ((from != 0 && job.end_time < from) || (to != 0 && job.end_time >= to)) continue;
    OwnerTotals& t = by_owner[job.owner];
    t.owner = job.owner;
    ++t.jobs;
    if (job.state != JobState::kCompleted) ++t.failed;
    for (const Attempt& a : job.attempts) {
      const TimeMs end = a.end_time != 0 ? a.end_time : job.end_time;
      const double wall_s = end > a.start_time ? static_cast<double>(end - a.start_time) / 1000.0 : 0;
      t.wallclock_s += wall_s;
      t.core_hours += wall_s * job.spec.request.cores / 3600.0;
      t.gpu_hours += wall_s * job.spec.request.gpus / 3600.0;
    }
    t.cpu_s += static_cast<double>(job.cpu_ms) / 1000.0;
    t.max_rss_kb = std::max(t.max_rss_kb, job.max_rss_kb);
  }
  std::vector<OwnerTotals> out;
  for (auto& [_, t] : by_owner) out.push_back(std::move(t));
  return out;
}

std::string OwnerTotalsTable(std::span<const OwnerTotals> totals) {
  constexpr const char* kFormat = "%-12s %8s %12s %12s %12s %12s %8s %12s\n";
  auto line = [&](auto... fields) {
    char buf[256];
    std::snprintf(buf, sizeof(buf), kFormat, fields...);
    return std::string(buf);
  };
  auto num = [](double v, const char* fmt) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), fmt, v);
    return std::string(buf);
  };
  std::string out = line("OWNER", "JOBS", "WALLCLOCK", "CPU", "CORE_HOURS", "GPU_HOURS",
                         "FAILED", "MAXRSS_KB");
  out += std::string(out.size() - 1, '=') + "\n";
  for (const OwnerTotals& t : totals) {
    out += line(t.owner.c_str(), std::to_string(t.jobs).c_str(),
                num(t.wallclock_s, "%.0f").c_str(), num(t.cpu_s, "%.3f").c_str(),
                num(t.core_hours, "%.3f").c_str(), num(t.gpu_hours, "%.3f").c_str(),
                std::to_string(t.failed).c_str(), std::to_string(t.max_rss_kb).c_str());
  }
  return out;
}

std::string OwnerTotalsJson(std::span<const OwnerTotals> totals, TimeMs from, TimeMs to) {
  using nlohmann::json;
  json owners = json::array();
  for (const OwnerTotals& t : totals) {
    owners.push_back({{"owner", t.owner},
                      {"jobs", t.jobs},
                      {"failed", t.failed},
                      {"wallclock_s", t.wallclock_s},
                      {"cpu_s", t.cpu_s},
                      {"core_hours", t.core_hours},
                      {"gpu_hours", t.gpu_hours},
                      {"max_rss_kb", t.max_rss_kb}});
  }
  auto secs = [](TimeMs t) { return t == 0 ? json(nullptr) : json(static_cast<double>(t) / 1000.0); };
  return json{{"owners", owners}, {"from", secs(from)}, {"to", secs(to)}}.dump(
             -1, ' ', false, json::error_handler_t::replace) +
         "\n";
}

std::string SwfExport(std::span<const Job> jobs, TimeMs from, TimeMs to, int max_procs) {
  std::vector<const Job*> runs;
  for (const Job& job : jobs) {
    if (!IsFinal(job.state) || job.attempts.empty() || (job.task == 0 && job.IsArray())) continue;
    if ((from != 0 && job.end_time < from) || (to != 0 && job.end_time >= to)) continue;
    runs.push_back(&job);
  }
  std::stable_sort(runs.begin(), runs.end(), [](const Job* a, const Job* b) {
    return std::tuple(a->submit_time, a->id, a->task) < std::tuple(b->submit_time, b->id, b->task);
  });
  const TimeMs origin = runs.empty() ? 0 : runs.front()->submit_time;
  std::string out = "; Version: 2.2\n; Computer: Corral cluster\n; Installation: qacct --swf\n";
  out += "; UnixStartTime: " + std::to_string(origin / 1000) + "\n";
  out += "; MaxProcs: " + std::to_string(max_procs) + "\n; MaxJobs: " +
         std::to_string(runs.size()) + "\n; Note: user and group fields are uid and gid\n";
  int64_t number = 0;
  for (const Job* job : runs) {
    const Attempt& last = job->attempts.back();
    const TimeMs start = last.start_time;
    const TimeMs end = last.end_time != 0 ? last.end_time : job->end_time;
    const int cores = std::max(1, job->spec.request.cores);
    const int64_t run_s = std::max<int64_t>(0, (end - start) / 1000);
    const int status = job->state == JobState::kCompleted ? 1
                       : job->state == JobState::kCancelled ? 5
                                                            : 0;
    char line[512];
    std::snprintf(line, sizeof(line),
                  "%lld %lld %lld %lld %d %.2f %lld %d %lld %lld %d %u %u -1 -1 -1 -1 -1\n",
                  static_cast<long long>(++number),
                  static_cast<long long>((job->submit_time - origin) / 1000),
                  static_cast<long long>(std::max<int64_t>(0, (start - job->submit_time) / 1000)),
                  static_cast<long long>(run_s), cores,
                  static_cast<double>(job->cpu_ms) / 1000.0 / cores,
                  static_cast<long long>(job->max_rss_kb), cores,
                  static_cast<long long>(job->spec.h_rt_s > 0 ? job->spec.h_rt_s : -1),
                  static_cast<long long>(job->spec.request.mem_mb > 0 ? job->spec.request.mem_mb * 1024 : -1),
                  status, job->uid, job->gid);
    out += line;
  }
  return out;
}

Result<TimeMs> ParseQacctTime(std::string_view text, TimeMs now) {
  auto bad = [&] {
    return Error(Code::kInvalidArgument,
                 "'" + std::string(text) + "' is not a time of the form [[CC]YY]MMDDhhmm[.SS]");
  };
  std::string_view digits = text;
  int seconds = 0;
  if (const size_t dot = text.find('.'); dot != std::string_view::npos) {
    digits = text.substr(0, dot);
    std::string_view ss = text.substr(dot + 1);
    if (ss.size() != 2 || !std::isdigit(static_cast<unsigned char>(ss[0])) ||
        !std::isdigit(static_cast<unsigned char>(ss[1]))) {
      return bad();
    }
    seconds = (ss[0] - '0') * 10 + (ss[1] - '0');
  }
  if (digits.size() != 8 && digits.size() != 10 && digits.size() != 12) return bad();
  for (char c : digits) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return bad();
  }
  auto field = [&](size_t at, size_t n) { return std::stoi(std::string(digits.substr(at, n))); };
  std::tm tm{};
  const time_t now_s = static_cast<time_t>(now / 1000);
  localtime_r(&now_s, &tm);
  size_t at = 0;
  if (digits.size() == 12) {
    tm.tm_year = field(0, 4) - 1900;
    at = 4;
  } else if (digits.size() == 10) {
    const int yy = field(0, 2);
    tm.tm_year = (yy < 70 ? 2000 + yy : 1900 + yy) - 1900;  // POSIX touch's rule
    at = 2;
  }
  tm.tm_mon = field(at, 2) - 1;
  tm.tm_mday = field(at + 2, 2);
  tm.tm_hour = field(at + 4, 2);
  tm.tm_min = field(at + 6, 2);
  tm.tm_sec = seconds;
  tm.tm_isdst = -1;
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    return bad();
  }
  const time_t t = mktime(&tm);
  if (t == static_cast<time_t>(-1)) return bad();
  return static_cast<TimeMs>(t) * 1000;
}

}  // namespace corral
