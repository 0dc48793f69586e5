// Job records as JSON text, written directly. Building a nlohmann value per record cost
// about 45 us a job (a map node and an allocation per field, then the dump); this writes
// the same bytes in a few microseconds. Keys are written in nlohmann's (sorted) order, so
// the text is identical and every existing decoder reads it (tests/unit/protocol_test.cc
// compares the two on varied jobs).
#include "common/job_text.h"

#include <nlohmann/json.hpp>

#include <charconv>

namespace corral {
namespace {

void Int(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void Key(std::string& out, std::string_view key) {
  out += '"';
  out += key;
  out += "\":";
}

// Seconds since the epoch as nlohmann prints the double t / 1000.0 (shortest text that
// reads back to it; ".0" when integral), or null for 0. Within the fast range the
// double's spacing is far below 1 ms, so the shortest text is the exact decimal.
void Time(std::string& out, TimeMs t) {
  if (t == 0) {
    out += "null";
    return;
  }
  constexpr TimeMs kFastLimit = 4'000'000'000'000;  // year 2096
  if (t < 0 || t >= kFastLimit) {
    out += nlohmann::json(static_cast<double>(t) / 1000.0).dump();
    return;
  }
  Int(out, t / 1000);
  out += '.';
  int ms = static_cast<int>(t % 1000);
  if (ms == 0) {
    out += '0';
    return;
  }
  char digits[3] = {static_cast<char>('0' + ms / 100), static_cast<char>('0' + ms / 10 % 10),
                    static_cast<char>('0' + ms % 10)};
  int n = 3;
  while (digits[n - 1] == '0') --n;
  out.append(digits, n);
}

void Bool(std::string& out, bool b) { out += b ? "true" : "false"; }

void StringOrNull(std::string& out, const std::string& s) {
  if (s.empty()) {
    out += "null";
  } else {
    AppendJsonString(out, s);
  }
}

template <typename Vec>
void Ints(std::string& out, const Vec& v) {
  out += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    Int(out, v[i]);
  }
  out += ']';
}

void Strings(std::string& out, const std::vector<std::string>& v) {
  out += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    AppendJsonString(out, v[i]);
  }
  out += ']';
}

template <typename Map, typename Fn>
void Object(std::string& out, const Map& m, Fn value) {
  out += '{';
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out += ',';
    first = false;
    AppendJsonString(out, k);
    out += ':';
    value(v);
  }
  out += '}';
}

void StringMap(std::string& out, const std::map<std::string, std::string>& m) {
  Object(out, m, [&](const std::string& v) { AppendJsonString(out, v); });
}

void Resources(std::string& out, const corral::Resources& r) {
  out += '{';
  if (!r.consumables.empty()) {
    Key(out, "consumables");
    Object(out, r.consumables, [&](int64_t v) { Int(out, v); });
    out += ',';
  }
  Key(out, "cores");
  Int(out, r.cores);
  out += ',';
  Key(out, "gpus");
  Int(out, r.gpus);
  out += ',';
  Key(out, "mem_mb");
  Int(out, r.mem_mb);
  out += '}';
}

// The spec without script and sweep (query replies never carry them).
void Spec(std::string& out, const JobSpec& s) {
  out += "{\"after_any\":";
  Ints(out, s.after_any);
  out += ",\"after_notok\":";
  Ints(out, s.after_notok);
  out += ",\"after_ok\":";
  Ints(out, s.after_ok);
  out += ",\"after_tasks\":";
  Ints(out, s.after_tasks);
  out += ",\"args\":";
  Strings(out, s.args);
  out += ",\"array\":";
  if (s.array) {
    out += "{\"first\":";
    Int(out, s.array->first);
    out += ",\"last\":";
    Int(out, s.array->last);
    out += ",\"step\":";
    Int(out, s.array->step);
    out += '}';
  } else {
    out += "null";
  }
  out += ",\"binary\":";
  Bool(out, s.binary);
  out += ",\"cwd\":";
  AppendJsonString(out, s.cwd);
  out += ",\"env\":";
  StringMap(out, s.env);
  out += ",\"features\":";
  Strings(out, s.features);
  out += ",\"h_rt_s\":";
  Int(out, s.h_rt_s);
  out += ",\"hold\":";
  Bool(out, s.hold);
  out += ",\"join\":";
  Bool(out, s.join);
  out += ",\"max_attempts\":";
  Int(out, s.max_attempts);
  out += ",\"max_running_tasks\":";
  Int(out, s.max_running_tasks);
  out += ",\"name\":";
  AppendJsonString(out, s.name);
  out += ",\"other_resources\":";
  StringMap(out, s.other_resources);
  out += ",\"priority\":";
  Int(out, s.priority);
  out += ",\"project\":";
  AppendJsonString(out, s.project);
  out += ",\"queue\":";
  AppendJsonString(out, s.queue);
  out += ",\"request\":";
  Resources(out, s.request);
  out += ",\"rerunnable\":";
  Bool(out, s.rerunnable);
  out += ",\"shell\":";
  AppendJsonString(out, s.shell);
  out += ",\"stderr_path\":";
  AppendJsonString(out, s.stderr_path);
  out += ",\"stdout_path\":";
  AppendJsonString(out, s.stdout_path);
  out += ",\"sweep_points\":";
  Int(out, static_cast<int64_t>(s.sweep.size()));
  out += '}';
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) {  // UTF-8, possibly invalid: nlohmann's checks and replacement
      out += nlohmann::json(std::string(s))
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return;
    }
  }
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void AppendJobJson(std::string& out, const Job& job) {
  out += "{\"alloc_cores\":";
  Ints(out, job.alloc_cores);
  out += ",\"alloc_gpus\":";
  Ints(out, job.alloc_gpus);
  out += ",\"attempt\":";
  Int(out, job.attempt);
  out += ",\"attempts\":[";
  for (size_t i = 0; i < job.attempts.size(); ++i) {
    const Attempt& a = job.attempts[i];
    if (i) out += ',';
    out += "{\"attempt\":";
    Int(out, a.number);
    out += ",\"end_time\":";
    Time(out, a.end_time);
    out += ",\"exit_reason\":";
    AppendJsonString(out, a.exit_reason);
    out += ",\"node\":";
    AppendJsonString(out, a.node);
    out += ",\"start_time\":";
    Time(out, a.start_time);
    out += '}';
  }
  out += "],\"cancel_requested\":";
  Bool(out, job.cancel_requested);
  out += ",\"cpu_ms\":";
  Int(out, job.cpu_ms);
  out += ",\"end_time\":";
  Time(out, job.end_time);
  out += ",\"exit_code\":";
  if (job.exit_code) {
    Int(out, *job.exit_code);
  } else {
    out += "null";
  }
  // exit_reason of a finished job: why it ended; null while it is not finished.
  out += ",\"exit_reason\":";
  if (!IsFinal(job.state)) {
    out += "null";
  } else if (!job.reason.empty()) {
    AppendJsonString(out, job.reason);
  } else if (!job.attempts.empty()) {
    AppendJsonString(out, job.attempts.back().exit_reason);
  } else {
    out += "\"\"";
  }
  out += ",\"exit_signal\":";
  Int(out, job.exit_signal);
  out += ",\"gid\":";
  Int(out, job.gid);
  out += ",\"id\":";
  Int(out, job.id);
  out += ",\"max_rss_kb\":";
  Int(out, job.max_rss_kb);
  out += ",\"name\":";
  AppendJsonString(out, job.spec.name);
  out += ",\"node\":";
  StringOrNull(out, job.node);
  out += ",\"owner\":";
  AppendJsonString(out, job.owner);
  out += ",\"params\":";
  StringOrNull(out, job.params);
  out += ",\"pending_tasks\":";
  if (job.IsArray()) {
    AppendJsonString(out, FormatTaskRanges(job.pending));
  } else {
    out += "null";
  }
  out += ",\"reason\":";
  AppendJsonString(out, job.reason);
  out += ",\"result\":";
  StringOrNull(out, job.result);
  out += ",\"result_error\":";
  AppendJsonString(out, job.result_error);
  out += ",\"spec\":";
  Spec(out, job.spec);
  out += ",\"start_time\":";
  Time(out, job.start_time);
  out += ",\"state\":";
  AppendJsonString(out, StateName(job.state));
  out += ",\"submit_time\":";
  Time(out, job.submit_time);
  out += ",\"task\":";
  if (job.task == 0) {
    out += "null";
  } else {
    Int(out, job.task);
  }
  out += ",\"uid\":";
  Int(out, job.uid);
  out += '}';
}

}  // namespace corral
