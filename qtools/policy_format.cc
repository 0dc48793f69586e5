#include "qtools/policy_format.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

namespace corral {
namespace {

std::string Fixed(double x, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
  return buf;
}

std::string Pad(std::string s, size_t width, bool right = false) {
  if (s.size() >= width) return s;
  return right ? std::string(width - s.size(), ' ') + s : s + std::string(width - s.size(), ' ');
}

std::string Level(double x) { return std::isinf(x) ? "inf" : Fixed(x, 2); }

std::string Percent(double fraction) { return Fixed(100 * fraction, 1) + "%"; }

}  // namespace

std::string DurationText(int64_t s) {
  if (s > 0 && s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s > 0 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s > 0 && s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

std::string PriorityTable(const PriorityReply& reply) {
  if (reply.jobs.empty()) return "";
  std::string out =
      "job-ID     rank   priority fshare    age   size     -p  queue name       owner\n"
      "------------------------------------------------------------------------------------\n";
  for (const JobPriority& p : reply.jobs) {
    std::string id = std::to_string(p.id);
    if (p.task != 0) id += "." + std::to_string(p.task);
    out += Pad(id, 10) + " " + Pad(std::to_string(p.rank), 5, true) + " " +
           Pad(Fixed(p.priority, 2), 10, true) + " " + Pad(Fixed(p.fairshare, 3), 6, true) + " " +
           Pad(Fixed(p.age, 3), 6, true) + " " + Pad(Fixed(p.job_size, 3), 6, true) + " " +
           Pad(Fixed(p.user, 3), 6, true) + " " + Pad(Fixed(p.queue, 3), 6, true) + " " +
           Pad(p.name.substr(0, 10), 10) + " " + p.owner + "\n";
  }
  return out;
}

std::string ShareTable(const ShareReply& reply, bool explain) {
  if (reply.rows.empty()) return "";
  std::string out =
      "group        user         shares  usage(core-h) group:share usage  level  user:share "
      "usage  level  rank  factor\n";
  out += std::string(out.size() - 1, '-') + "\n";
  for (const ShareRow& r : reply.rows) {
    out += Pad(r.group.substr(0, 12), 12) + " " + Pad(r.user.substr(0, 12), 12) + " " +
           Pad(Fixed(r.shares, 0), 6, true) + " " + Pad(Fixed(r.usage / 3600.0, 2), 14, true) +
           " " + Pad(Percent(r.group_share), 11, true) + " " + Pad(Percent(r.group_usage), 6, true) +
           " " + Pad(Level(r.group_level), 6, true) + " " + Pad(Percent(r.user_share), 11, true) +
           " " + Pad(Percent(r.user_usage), 6, true) + " " + Pad(Level(r.user_level), 6, true) +
           " " + Pad(std::to_string(r.rank) + "/" + std::to_string(r.user_count), 5, true) + " " +
           Pad(Fixed(r.factor, 3), 7, true) + "\n";
  }
  if (explain) {
    out += "\n";
    for (const ShareRow& r : reply.rows) out += r.user + ": " + r.explanation + "\n";
  }
  return out;
}

std::string AuditTable(const AuditReply& reply) {
  std::string out;
  for (const AuditEntry& e : reply.entries) {
    const std::time_t secs = static_cast<std::time_t>(e.time / 1000);
    std::tm tm{};
    localtime_r(&secs, &tm);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    out += std::string(when) + "  " + Pad(e.user, 10) + " " + Pad(e.action, 13) + " " + e.detail +
           "\n";
  }
  return out;
}

std::string ReplyJson(const Message& reply) {
  nlohmann::json j = nlohmann::json::parse(Encode(reply));
  j.erase("v");
  j.erase("type");
  j.erase("req");
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace corral
