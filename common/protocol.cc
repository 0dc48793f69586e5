// Encode/decode of every message in protocol.h, over nlohmann/json. All exceptions
// from the JSON library stop here. Decoding is strict: a missing field, a field of the
// wrong type or a value out of range is an InvalidArgument naming the field.
#include "common/protocol.h"

#include "common/job_text.h"
#include "common/json_depth.h"
#include "common/rare_json.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

namespace corral {
namespace {

using nlohmann::json;

// ---- encoding ------------------------------------------------------------------------

json TimeJson(TimeMs t) {
  if (t == 0) return nullptr;
  return static_cast<double>(t) / 1000.0;
}

json ResourcesJson(const Resources& r) {
  json j = {{"cores", r.cores}, {"mem_mb", r.mem_mb}, {"gpus", r.gpus}};
  if (!r.consumables.empty()) j["consumables"] = r.consumables;
  return j;
}

json SpecJson(const JobSpec& s, bool with_script) {
  json j = {{"name", s.name},
            {"binary", s.binary},
            {"args", s.args},
            {"shell", s.shell},
            {"cwd", s.cwd},
            {"stdout_path", s.stdout_path},
            {"stderr_path", s.stderr_path},
            {"join", s.join},
            {"env", s.env},
            {"request", ResourcesJson(s.request)},
            {"h_rt_s", s.h_rt_s},
            {"hold", s.hold},
            {"queue", s.queue},
            {"project", s.project},
            {"other_resources", s.other_resources},
            {"rerunnable", s.rerunnable},
            {"max_attempts", s.max_attempts},
            {"priority", s.priority},
            {"features", s.features},
            {"array", s.array ? json{{"first", s.array->first}, {"last", s.array->last},
                                     {"step", s.array->step}}
                              : json(nullptr)},
            {"max_running_tasks", s.max_running_tasks},
            {"after_any", s.after_any},
            {"after_ok", s.after_ok},
            {"after_notok", s.after_notok},
            {"after_tasks", s.after_tasks},
            {"sweep_points", s.sweep.size()}};
  if (with_script) {
    j["script"] = s.script;
    j["sweep"] = s.sweep;
  }
  return j;
}

json AttemptsJson(const std::vector<Attempt>& attempts) {
  json a = json::array();
  for (const Attempt& at : attempts) {
    a.push_back({{"attempt", at.number},
                 {"node", at.node},
                 {"start_time", TimeJson(at.start_time)},
                 {"end_time", TimeJson(at.end_time)},
                 {"exit_reason", at.exit_reason}});
  }
  return a;
}

// exit_reason of a finished job: why it ended; null while it is not finished.
json FinalReason(const Job& job) {
  if (!IsFinal(job.state)) return nullptr;
  if (!job.reason.empty()) return job.reason;
  if (!job.attempts.empty()) return job.attempts.back().exit_reason;
  return "";
}

// The documented job object (docs/json.md). Times in seconds since the epoch.
// A JSON object kept as text (params, result): sent as that text, so that the order of
// its keys (a sweep's parameter order) survives; null when there is none.
json Embedded(const std::string& text) {
  if (text.empty()) return nullptr;
  return text;
}

json JobJson(const Job& job, bool with_script) {
  json j = {{"id", job.id},
            {"task", job.task == 0 ? json(nullptr) : json(job.task)},
            {"pending_tasks", job.IsArray() ? json(FormatTaskRanges(job.pending)) : json(nullptr)},
            {"params", Embedded(job.params)},
            {"result", Embedded(job.result)},
            {"result_error", job.result_error},
            {"name", job.spec.name},
            {"owner", job.owner},
            {"uid", job.uid},
            {"gid", job.gid},
            {"state", StateName(job.state)},
            {"attempt", job.attempt},
            {"node", job.node.empty() ? json(nullptr) : json(job.node)},
            {"submit_time", TimeJson(job.submit_time)},
            {"start_time", TimeJson(job.start_time)},
            {"end_time", TimeJson(job.end_time)},
            {"exit_code", job.exit_code ? json(*job.exit_code) : json(nullptr)},
            {"exit_signal", job.exit_signal},
            {"cpu_ms", job.cpu_ms},
            {"max_rss_kb", job.max_rss_kb},
            {"reason", job.reason},
            {"cancel_requested", job.cancel_requested},
            {"exit_reason", FinalReason(job)},
            {"alloc_cores", job.alloc_cores},
            {"alloc_gpus", job.alloc_gpus},
            {"attempts", AttemptsJson(job.attempts)},
            {"spec", SpecJson(job.spec, with_script)}};
  return j;
}

json NodeJson(const Node& n) {
  return {{"name", n.name},
          {"total", ResourcesJson(n.total)},
          {"gpu_ids", n.gpu_ids},
          {"state", NodeStateName(n.state)},
          {"enabled", n.enabled},
          {"features", n.features},
          {"load", n.load},
          {"last_seen", TimeJson(n.last_seen)}};
}

json AttemptsJson(const std::vector<RunningAttempt>& running) {
  json a = json::array();
  for (const RunningAttempt& r : running) {
    a.push_back({{"job_id", r.job_id}, {"attempt", r.attempt}, {"task", r.task}});
  }
  return a;
}

json JobsJson(const std::vector<Job>& jobs) {
  json a = json::array();
  for (const Job& job : jobs) a.push_back(JobJson(job, false));
  return a;
}

json Body(const SubmitRequest& m) { return {{"spec", SpecJson(m.spec, true)}}; }
json Body(const SubmitReply& m) {
  return {{"id", m.id}, {"name", m.name}, {"warnings", m.warnings}, {"tasks", m.tasks}};
}
json KeyJson(const UnitKey& k) { return {{"job", k.job}, {"task", k.task}}; }
// Paging fields are written only when used, so that a request of a client that does not
// page reads exactly as before.
json Body(const QueryRequest& m) {
  json j = {{"ids", m.ids}, {"user", m.user}, {"include_finished", m.include_finished}};
  if (!m.states.empty()) j["states"] = m.states;
  if (m.without_tasks) j["without_tasks"] = true;
  if (m.limit > 0) j["limit"] = m.limit;
  if (m.after) j["after"] = KeyJson(*m.after);
  return j;
}
json Body(const QueryReply& m) {
  json j = {{"jobs", JobsJson(m.jobs)}, {"missing", m.missing}};
  if (m.next) j["next"] = KeyJson(*m.next);
  return j;
}
json Body(const CancelRequest& m) {
  json j = {{"ids", m.ids}, {"user", m.user}};
  if (m.tasks) j["tasks"] = FormatTaskRange(*m.tasks);
  return j;
}
json Body(const HoldRequest& m) { return {{"ids", m.ids}, {"hold", m.hold}}; }
json Body(const OutcomeReply& m) {
  json a = json::array();
  for (const JobOutcome& o : m.outcomes) {
    a.push_back({{"id", o.id}, {"outcome", o.outcome}, {"owner", o.owner}});
  }
  return {{"outcomes", a}};
}
json Body(const WaitRequest& m) { return {{"ids", m.ids}, {"timeout_ms", m.timeout_ms}}; }
json Body(const WaitReply& m) { return {{"done", m.done}, {"jobs", JobsJson(m.jobs)}}; }
json Body(const NodesRequest&) { return json::object(); }
json Body(const NodesReply& m) {
  json nodes = json::array();
  for (const Node& n : m.nodes) nodes.push_back(NodeJson(n));
  json used = json::array();
  for (const Resources& r : m.used) used.push_back(ResourcesJson(r));
  return {{"nodes", nodes}, {"used", used}};
}
json Body(const NodeAdminRequest& m) { return {{"node", m.node}, {"enable", m.enable}}; }
json Body(const ResubmitRequest& m) { return {{"id", m.id}, {"failed_only", m.failed_only}}; }
json Body(const PriorityRequest& m) { return {{"user", m.user}}; }
json Body(const PriorityReply& m) {
  json a = json::array();
  for (const JobPriority& p : m.jobs) {
    a.push_back({{"id", p.id},
                 {"task", p.task == 0 ? json(nullptr) : json(p.task)},
                 {"owner", p.owner},
                 {"name", p.name},
                 {"rank", p.rank},
                 {"priority", p.priority},
                 {"factors", {{"fairshare", p.fairshare},
                              {"age", p.age},
                              {"job_size", p.job_size},
                              {"user", p.user},
                              {"queue", p.queue}}},
                 {"explanation", p.explanation}});
  }
  return {{"policy", m.policy}, {"ranked_at", TimeJson(m.ranked_at)}, {"jobs", a}};
}
json Body(const ShareRequest&) { return json::object(); }
// A Fair Tree level: +infinity (nothing used yet) travels as null.
json Level(double x) { return std::isinf(x) ? json(nullptr) : json(x); }
json Body(const ShareReply& m) {
  json a = json::array();
  for (const ShareRow& s : m.rows) {
    a.push_back({{"group", s.group},           {"user", s.user},
                 {"shares", s.shares},         {"usage", s.usage},
                 {"group_share", s.group_share}, {"group_usage", s.group_usage},
                 {"group_level", Level(s.group_level)}, {"user_share", s.user_share},
                 {"user_usage", s.user_usage}, {"user_level", Level(s.user_level)},
                 {"rank", s.rank},             {"user_count", s.user_count},
                 {"factor", s.factor},         {"explanation", s.explanation}});
  }
  return {{"policy", m.policy}, {"half_life_s", m.half_life_s}, {"rows", a}};
}
json Body(const ReloadRequest&) { return json::object(); }
json Body(const ReloadReply& m) { return {{"policy", m.policy}, {"summary", m.summary}}; }
json Body(const AuditRequest& m) { return {{"limit", m.limit}}; }
json Body(const AuditReply& m) {
  json a = json::array();
  for (const AuditEntry& e : m.entries) {
    a.push_back({{"time", TimeJson(e.time)}, {"user", e.user}, {"action", e.action},
                 {"detail", e.detail}});
  }
  return {{"entries", a}};
}
json EventJson(const Event& e) {
  json j = {{"seq", e.seq}, {"time", TimeJson(e.time)}, {"kind", e.kind}};
  if (e.kind == "job") {
    j["job"] = e.job;
    j["task"] = e.task == 0 ? json(nullptr) : json(e.task);
    j["attempt"] = e.attempt;
    j["owner"] = e.owner;
    j["name"] = e.name;
  }
  j["node"] = e.node.empty() ? json(nullptr) : json(e.node);
  j["from"] = e.from.empty() ? json(nullptr) : json(e.from);
  j["to"] = e.to;
  j["reason"] = e.reason;
  j["exit_code"] = e.exit_code ? json(*e.exit_code) : json(nullptr);
  return j;
}
json Body(const EventsRequest& m) { return {{"after", m.after}, {"limit", m.limit}}; }
json Body(const EventsReply& m) {
  json a = json::array();
  for (const Event& e : m.events) a.push_back(EventJson(e));
  return {{"events", a}, {"first_kept", m.first_kept}, {"last", m.last}, {"publish", m.publish}};
}
json Body(const ErrorReply& m) { return {{"code", CodeName(m.code)}, {"message", m.message}}; }
json Body(const RegisterNode& m) {
  return {{"node", m.node},
          {"total", ResourcesJson(m.total)},
          {"running", AttemptsJson(m.running)},
          {"gpu_ids", m.gpu_ids},
          {"features", m.features}};
}
json Body(const NodeRegistered& m) { return {{"heartbeat_interval_ms", m.heartbeat_interval_ms}}; }
json Body(const Heartbeat& m) {
  return {{"node", m.node}, {"running", AttemptsJson(m.running)}, {"load", m.load}};
}
json Body(const JobExit& m) {
  return {{"node", m.node},         {"job_id", m.job_id},         {"attempt", m.attempt},
          {"exit_code", m.exit_code}, {"signal", m.signal},       {"start_time", m.start_time},
          {"end_time", m.end_time}, {"cpu_ms", m.cpu_ms},         {"max_rss_kb", m.max_rss_kb},
          {"failure", m.failure},       {"reason", m.reason},         {"task", m.task},
          {"result", m.result},         {"result_error", m.result_error}};
}
json Body(const ExitAck& m) {
  return {{"job_id", m.job_id}, {"attempt", m.attempt}, {"task", m.task}};
}
// The complete record: script included and times kept as integer milliseconds, so that
// a round trip through the store or the execd link is exact.
json RecordJson(const Job& job) {
  json j = JobJson(job, true);
  j["submit_time"] = job.submit_time;
  j["start_time"] = job.start_time;
  j["end_time"] = job.end_time;
  for (size_t i = 0; i < job.attempts.size(); ++i) {
    j["attempts"][i]["start_time"] = job.attempts[i].start_time;
    j["attempts"][i]["end_time"] = job.attempts[i].end_time;
  }
  return j;
}

json Body(const StartJob& m) { return {{"job", RecordJson(m.job)}}; }
json Body(const KillJob& m) {
  return {{"job_id", m.job_id}, {"attempt", m.attempt}, {"task", m.task}};
}

// ---- decoding ------------------------------------------------------------------------

// Reads typed fields out of a JSON object; the first problem is kept with its path.
class Reader {
 public:
  Reader(const json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) Fail(path_.empty() ? "message" : path_, "must be an object");
  }

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  void Fail(const std::string& where, const std::string& what) {
    if (error_.empty()) error_ = "field '" + where + "' " + what;
  }

  const json* Get(const char* key, bool required) {
    if (!j_.is_object()) return nullptr;
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) {
      if (required) Fail(Path(key), "is missing");
      return nullptr;
    }
    return &*it;
  }

  std::string Path(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

  // A Rare<T> field (common/rare.h) reads as its T.
  template <typename T, typename... A>
  void Str(const char* key, Rare<T>& out, A... a) { ReadInto(out, [&](T& v) { Str(key, v, a...); }); }
  template <typename T, typename... A>
  void Strings(const char* key, Rare<T>& out, A... a) { ReadInto(out, [&](T& v) { Strings(key, v, a...); }); }
  template <typename T, typename... A>
  void StringMap(const char* key, Rare<T>& out, A... a) { ReadInto(out, [&](T& v) { StringMap(key, v, a...); }); }
  template <typename T, typename... A>
  void Ids(const char* key, Rare<T>& out, A... a) { ReadInto(out, [&](T& v) { Ids(key, v, a...); }); }
  template <typename T>
  void EmbeddedObject(const char* key, Rare<T>& out) { ReadInto(out, [&](T& v) { EmbeddedObject(key, v); }); }
  template <typename T, typename Fn>
  static void ReadInto(Rare<T>& out, Fn read) {
    T v = out.get();
    read(v);
    out = std::move(v);
  }

  template <typename Int>
  void Int64(const char* key, Int& out, bool required = true, int64_t min = 0,
             int64_t max = std::numeric_limits<int64_t>::max()) {
    const json* v = Get(key, required);
    if (v == nullptr) return;
    if (!v->is_number_integer()) return Fail(Path(key), "must be an integer");
    int64_t x = v->get<int64_t>();
    if (x < min || x > max) {
      return Fail(Path(key), "is out of range [" + std::to_string(min) + ", " +
                                 std::to_string(max) + "]");
    }
    out = static_cast<Int>(x);
  }
  void Str(const char* key, std::string& out, bool required = true) {
    const json* v = Get(key, required);
    if (v == nullptr) return;
    if (!v->is_string()) return Fail(Path(key), "must be a string");
    out = v->get<std::string>();
  }
  void Bool(const char* key, bool& out, bool required = true) {
    const json* v = Get(key, required);
    if (v == nullptr) return;
    if (!v->is_boolean()) return Fail(Path(key), "must be true or false");
    out = v->get<bool>();
  }
  void Strings(const char* key, std::vector<std::string>& out, bool required = true) {
    const json* v = Get(key, required);
    if (v == nullptr) return;
    if (!v->is_array()) return Fail(Path(key), "must be an array of strings");
    for (const json& e : *v) {
      if (!e.is_string()) return Fail(Path(key), "must be an array of strings");
      out.push_back(e.get<std::string>());
    }
  }
  void StringMap(const char* key, std::map<std::string, std::string>& out, bool required = true) {
    const json* v = Get(key, required);
    if (v == nullptr) return;
    if (!v->is_object()) return Fail(Path(key), "must be an object of strings");
    for (const auto& [k, e] : v->items()) {
      if (!e.is_string()) return Fail(Path(key) + "." + k, "must be a string");
      out[k] = e.get<std::string>();
    }
  }
  // An object of names to non-negative counts (consumables); optional.
  void Counts(const char* key, std::map<std::string, int64_t>& out) {
    const json* v = Get(key, false);
    if (v == nullptr) return;
    if (!v->is_object()) return Fail(Path(key), "must be an object of counts");
    for (const auto& [k, e] : v->items()) {
      if (k.empty() || k.size() > 64) return Fail(Path(key), "has an empty or over-long name");
      if (!e.is_number_integer() || e.get<int64_t>() < 0) {
        return Fail(Path(key) + "." + k, "must be a non-negative integer");
      }
      out[k] = e.get<int64_t>();
    }
  }
  // A JSON object kept as its text (params, result); optional.
  void EmbeddedObject(const char* key, std::string& out) {
    const json* v = Get(key, false);
    if (v == nullptr) return;
    if (v->is_string()) {
      out = v->get<std::string>();
    } else if (v->is_object()) {
      out = v->dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
      Fail(Path(key), "must be a JSON object");
    }
  }
  // Task ranges as text ("1-1000:1,1005"); optional.
  void Ranges(const char* key, TaskRanges& out) {
    const json* v = Get(key, false);
    if (v == nullptr) return;
    if (!v->is_string()) return Fail(Path(key), "must be task ranges such as \"1-10:1,12\"");
    const std::string text = v->get<std::string>();
    for (size_t at = 0; at < text.size();) {
      size_t comma = text.find(',', at);
      if (comma == std::string::npos) comma = text.size();
      Result<TaskRange> range = ParseTaskRange(std::string_view(text).substr(at, comma - at));
      if (!range) return Fail(Path(key), range.error().message());
      out.push_back(*range);
      at = comma + 1;
    }
  }
  void Range(const char* key, std::optional<TaskRange>& out) {
    const json* v = Get(key, false);
    if (v == nullptr) return;
    if (v->is_string()) {
      Result<TaskRange> range = ParseTaskRange(v->get<std::string>());
      if (!range) return Fail(Path(key), range.error().message());
      out = *range;
      return;
    }
    Reader sub(*v, Path(key));
    TaskRange r;
    sub.Int64("first", r.first, true, 1, kMaxTaskId);
    sub.Int64("last", r.last, true, 1, kMaxTaskId);
    sub.Int64("step", r.step, true, 1, kMaxTaskId);
    if (sub.ok() && r.last < r.first) sub.Fail(Path(key), "has last < first");
    if (!sub.ok()) {
      if (error_.empty()) error_ = sub.error();
      return;
    }
    out = r;
  }
  // A number (load average); optional.
  void Number(const char* key, double& out) {
    const json* v = Get(key, false);
    if (v == nullptr) return;
    if (!v->is_number()) return Fail(Path(key), "must be a number");
    out = v->get<double>();
  }
  // A list of small non-negative integers (core indices, GPU ids).
  void Indices(const char* key, std::vector<int>& out, bool required = true) {
    const json* v = Get(key, required);
    if (v == nullptr) return;
    if (!v->is_array()) return Fail(Path(key), "must be an array of indices");
    for (const json& e : *v) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > (1 << 20)) {
        return Fail(Path(key), "must be an array of indices (0 to 1048576)");
      }
      out.push_back(static_cast<int>(e.get<int64_t>()));
    }
  }
  void Ids(const char* key, std::vector<JobId>& out, bool required = true) {
    const json* v = Get(key, required);
    if (v == nullptr) return;
    if (!v->is_array()) return Fail(Path(key), "must be an array of job ids");
    for (const json& e : *v) {
      if (!e.is_number_integer() || e.get<int64_t>() <= 0) {
        return Fail(Path(key), "must be an array of positive job ids");
      }
      out.push_back(e.get<int64_t>());
    }
  }
  // A nested object, read by `fn(Reader&)`; errors carry the nested path.
  template <typename Fn>
  void Object(const char* key, Fn fn, bool required = true) {
    const json* v = Get(key, required);
    if (v == nullptr) return;
    Reader sub(*v, Path(key));
    if (sub.ok()) fn(sub);
    if (!sub.ok() && error_.empty()) error_ = sub.error();
  }
  template <typename Fn>
  void Array(const char* key, Fn fn, bool required = true) {
    const json* v = Get(key, required);
    if (v == nullptr) return;
    if (!v->is_array()) return Fail(Path(key), "must be an array");
    size_t i = 0;
    for (const json& e : *v) {
      Reader sub(e, Path(key) + "[" + std::to_string(i++) + "]");
      if (sub.ok()) fn(sub);
      if (!sub.ok()) {
        if (error_.empty()) error_ = sub.error();
        return;
      }
    }
  }
  // Seconds-since-epoch number or null (display form) back to milliseconds.
  void Seconds(const char* key, TimeMs& out) {
    const json* v = Get(key, false);
    if (v == nullptr) return;
    if (!v->is_number()) return Fail(Path(key), "must be a number of seconds");
    out = static_cast<TimeMs>(std::llround(v->get<double>() * 1000.0));
  }

 private:
  const json& j_;
  std::string path_;
  std::string error_;
};

void ReadResources(Reader& r, Resources& out) {
  r.Int64("cores", out.cores, true, 0, 1 << 20);
  r.Int64("mem_mb", out.mem_mb, true, 0, int64_t{1} << 40);
  r.Int64("gpus", out.gpus, false, 0, 1 << 16);
  r.Counts("consumables", out.consumables);
}

void ReadSpec(Reader& r, JobSpec& s, bool with_script) {
  r.Str("name", s.name);
  if (with_script) r.Str("script", s.script);
  r.Bool("binary", s.binary);
  r.Strings("args", s.args);
  r.Str("shell", s.shell);
  r.Str("cwd", s.cwd);
  r.Str("stdout_path", s.stdout_path);
  r.Str("stderr_path", s.stderr_path);
  r.Bool("join", s.join);
  r.StringMap("env", s.env);
  r.Object("request", [&](Reader& rr) { ReadResources(rr, s.request); });
  r.Int64("h_rt_s", s.h_rt_s);
  r.Bool("hold", s.hold);
  r.Str("queue", s.queue, false);
  r.Str("project", s.project, false);
  r.StringMap("other_resources", s.other_resources, false);
  r.Bool("rerunnable", s.rerunnable, false);
  r.Int64("max_attempts", s.max_attempts, false, 0, 1000);
  r.Int64("priority", s.priority, false, -1023, 1024);
  r.Strings("features", s.features, false);
  r.Range("array", s.array);
  r.Int64("max_running_tasks", s.max_running_tasks, false, 0, 1 << 30);
  if (with_script) r.Strings("sweep", s.sweep, false);
  for (const std::string& point : s.sweep) {  // the execd parses each point as JSON
    if (JsonNestsTooDeep(point)) r.Fail("spec.sweep", "has a point nested deeper than 64 levels");
  }
  r.Ids("after_any", s.after_any, false);
  r.Ids("after_ok", s.after_ok, false);
  r.Ids("after_notok", s.after_notok, false);
  r.Ids("after_tasks", s.after_tasks, false);
  if (r.ok() && !s.sweep.empty() && (!s.array || s.array->Count() != static_cast<int64_t>(s.sweep.size()))) {
    r.Fail("spec.sweep", "must have one point per task of spec.array");
  }
  if (s.script.size() > kMaxScriptBytes) r.Fail("spec.script", "is larger than 4 MiB");
}

// `millis`: times as integer milliseconds (execd link) instead of display seconds.
void ReadJob(Reader& r, Job& job, bool with_script, bool millis) {
  r.Int64("id", job.id, true, 1);
  r.Int64("task", job.task, false, 0, kMaxTaskId);
  r.Ranges("pending_tasks", job.pending);
  r.EmbeddedObject("params", job.params);
  r.EmbeddedObject("result", job.result);
  r.Str("result_error", job.result_error, false);
  r.Str("owner", job.owner);
  r.Int64("uid", job.uid, true, 0, 0xffffffffLL);
  r.Int64("gid", job.gid, true, 0, 0xffffffffLL);
  std::string state;
  r.Str("state", state);
  if (r.ok()) {
    auto s = StateFromName(state);
    if (!s) return r.Fail("state", "is not a job state: '" + state + "'");
    job.state = *s;
  }
  r.Int64("attempt", job.attempt, true, 0, 1 << 30);
  r.Str("node", job.node, false);
  if (millis) {
    r.Int64("submit_time", job.submit_time);
    r.Int64("start_time", job.start_time);
    r.Int64("end_time", job.end_time);
  } else {
    r.Seconds("submit_time", job.submit_time);
    r.Seconds("start_time", job.start_time);
    r.Seconds("end_time", job.end_time);
  }
  if (r.Get("exit_code", false) != nullptr) {
    int code = 0;
    r.Int64("exit_code", code, true, -1, 1 << 16);
    job.exit_code = code;
  }
  r.Int64("exit_signal", job.exit_signal, false, 0, 1024);
  r.Int64("cpu_ms", job.cpu_ms, false);
  r.Int64("max_rss_kb", job.max_rss_kb, false);
  r.Str("reason", job.reason, false);
  r.Bool("cancel_requested", job.cancel_requested, false);
  r.Indices("alloc_cores", job.alloc_cores, false);
  r.Indices("alloc_gpus", job.alloc_gpus, false);
  r.Array("attempts", [&](Reader& ra) {
    Attempt at;
    ra.Int64("attempt", at.number, true, 1, 1 << 30);
    ra.Str("node", at.node);
    if (millis) {
      ra.Int64("start_time", at.start_time);
      ra.Int64("end_time", at.end_time);
    } else {
      ra.Seconds("start_time", at.start_time);
      ra.Seconds("end_time", at.end_time);
    }
    ra.Str("exit_reason", at.exit_reason);
    job.attempts.push_back(std::move(at));
  }, false);
  r.Object("spec", [&](Reader& rs) { ReadSpec(rs, job.spec, with_script); });
  // The job name lives at the top level of the documented object as well as in spec.
}

void ReadAttempts(Reader& r, const char* key, std::vector<RunningAttempt>& out) {
  r.Array(key, [&](Reader& ra) {
    RunningAttempt a;
    ra.Int64("job_id", a.job_id, true, 1);
    ra.Int64("attempt", a.attempt, true, 1, 1 << 30);
    ra.Int64("task", a.task, false, 0, kMaxTaskId);
    out.push_back(a);
  });
}

void ReadJobs(Reader& r, std::vector<Job>& out) {
  r.Array("jobs", [&](Reader& rj) {
    Job job;
    ReadJob(rj, job, false, false);
    out.push_back(std::move(job));
  });
}

void ReadBody(Reader& r, SubmitRequest& m) {
  r.Object("spec", [&](Reader& rs) { ReadSpec(rs, m.spec, true); });
}
void ReadBody(Reader& r, SubmitReply& m) {
  r.Int64("id", m.id, true, 1);
  r.Str("name", m.name);
  r.Strings("warnings", m.warnings, false);
  r.Str("tasks", m.tasks, false);
}
void ReadKey(Reader& r, const char* key, std::optional<UnitKey>& out) {
  r.Object(key, [&](Reader& rk) {
    UnitKey k;
    rk.Int64("job", k.job, true, 0);
    rk.Int64("task", k.task, true, 0, kMaxTaskId);
    if (rk.ok()) out = k;
  }, false);
}
void ReadBody(Reader& r, QueryRequest& m) {
  r.Ids("ids", m.ids);
  r.Str("user", m.user);
  r.Bool("include_finished", m.include_finished);
  r.Strings("states", m.states, false);
  if (m.states.size() > 16) r.Fail("states", "names more than 16 states");
  r.Bool("without_tasks", m.without_tasks, false);
  r.Int64("limit", m.limit, false, 0, kMaxQueryPage);
  ReadKey(r, "after", m.after);
}
void ReadBody(Reader& r, QueryReply& m) {
  ReadJobs(r, m.jobs);
  r.Ids("missing", m.missing);
  ReadKey(r, "next", m.next);
}
void ReadBody(Reader& r, CancelRequest& m) {
  r.Ids("ids", m.ids);
  r.Str("user", m.user);
  r.Range("tasks", m.tasks);
}
void ReadBody(Reader& r, HoldRequest& m) {
  r.Ids("ids", m.ids);
  r.Bool("hold", m.hold);
}
void ReadBody(Reader& r, OutcomeReply& m) {
  r.Array("outcomes", [&](Reader& ro) {
    JobOutcome o;
    ro.Int64("id", o.id, true, 1);
    ro.Str("outcome", o.outcome);
    ro.Str("owner", o.owner);
    m.outcomes.push_back(std::move(o));
  });
}
void ReadBody(Reader& r, WaitRequest& m) {
  r.Ids("ids", m.ids);
  r.Int64("timeout_ms", m.timeout_ms, true, 0, 3600 * 1000);
}
void ReadBody(Reader& r, WaitReply& m) {
  r.Bool("done", m.done);
  ReadJobs(r, m.jobs);
}
void ReadBody(Reader&, NodesRequest&) {}
void ReadBody(Reader& r, NodesReply& m) {
  r.Array("nodes", [&](Reader& rn) {
    Node n;
    rn.Str("name", n.name);
    rn.Object("total", [&](Reader& rt) { ReadResources(rt, n.total); });
    std::string state;
    rn.Str("state", state);
    if (auto s = NodeStateFromName(state)) {
      n.state = *s;
    } else if (rn.ok()) {
      rn.Fail("state", "is not a node state: '" + state + "'");
    }
    rn.Seconds("last_seen", n.last_seen);
    rn.Bool("enabled", n.enabled, false);
    rn.Indices("gpu_ids", n.gpu_ids, false);
    rn.Strings("features", n.features, false);
    rn.Number("load", n.load);
    m.nodes.push_back(std::move(n));
  });
  r.Array("used", [&](Reader& ru) {
    Resources res;
    ReadResources(ru, res);
    m.used.push_back(res);
  });
}
void ReadBody(Reader& r, ResubmitRequest& m) {
  r.Int64("id", m.id, true, 1);
  r.Bool("failed_only", m.failed_only);
}
void ReadBody(Reader& r, NodeAdminRequest& m) {
  r.Str("node", m.node);
  r.Bool("enable", m.enable);
  if (r.ok() && m.node.empty()) r.Fail("node", "must not be empty");
}
void ReadBody(Reader& r, PriorityRequest& m) { r.Str("user", m.user, false); }
void ReadBody(Reader& r, PriorityReply& m) {
  r.Str("policy", m.policy);
  r.Seconds("ranked_at", m.ranked_at);
  r.Array("jobs", [&](Reader& rj) {
    JobPriority p;
    rj.Int64("id", p.id, true, 1);
    rj.Int64("task", p.task, false, 0, kMaxTaskId);
    rj.Str("owner", p.owner);
    rj.Str("name", p.name);
    rj.Int64("rank", p.rank, true, 1);
    rj.Number("priority", p.priority);
    rj.Object("factors", [&](Reader& rf) {
      rf.Number("fairshare", p.fairshare);
      rf.Number("age", p.age);
      rf.Number("job_size", p.job_size);
      rf.Number("user", p.user);
      rf.Number("queue", p.queue);
    });
    rj.Str("explanation", p.explanation, false);
    m.jobs.push_back(std::move(p));
  });
}
void ReadBody(Reader&, ShareRequest&) {}
void ReadBody(Reader& r, ShareReply& m) {
  r.Str("policy", m.policy);
  r.Int64("half_life_s", m.half_life_s, true, 0);
  r.Array("rows", [&](Reader& rs) {
    ShareRow s;
    rs.Str("group", s.group);
    rs.Str("user", s.user);
    rs.Number("shares", s.shares);
    rs.Number("usage", s.usage);
    rs.Number("group_share", s.group_share);
    rs.Number("group_usage", s.group_usage);
    s.group_level = std::numeric_limits<double>::infinity();
    rs.Number("group_level", s.group_level);
    rs.Number("user_share", s.user_share);
    rs.Number("user_usage", s.user_usage);
    s.user_level = std::numeric_limits<double>::infinity();
    rs.Number("user_level", s.user_level);
    rs.Int64("rank", s.rank, true, 0);
    rs.Int64("user_count", s.user_count, true, 0);
    rs.Number("factor", s.factor);
    rs.Str("explanation", s.explanation, false);
    m.rows.push_back(std::move(s));
  });
}
void ReadBody(Reader&, ReloadRequest&) {}
void ReadBody(Reader& r, ReloadReply& m) {
  r.Str("policy", m.policy);
  r.Str("summary", m.summary);
}
void ReadBody(Reader& r, AuditRequest& m) { r.Int64("limit", m.limit, false, 1, 100000); }
void ReadBody(Reader& r, AuditReply& m) {
  r.Array("entries", [&](Reader& re) {
    AuditEntry e;
    re.Seconds("time", e.time);
    re.Str("user", e.user);
    re.Str("action", e.action);
    re.Str("detail", e.detail);
    m.entries.push_back(std::move(e));
  });
}
void ReadEvent(Reader& r, Event& e) {
  r.Int64("seq", e.seq, true, 1);
  r.Seconds("time", e.time);
  r.Str("kind", e.kind);
  if (r.ok() && e.kind != "job" && e.kind != "node") r.Fail("kind", "must be \"job\" or \"node\"");
  r.Int64("job", e.job, false, 0);
  r.Int64("task", e.task, false, 0, kMaxTaskId);
  r.Int64("attempt", e.attempt, false, 0, 1 << 30);
  r.Str("owner", e.owner, false);
  r.Str("name", e.name, false);
  r.Str("node", e.node, false);
  r.Str("from", e.from, false);
  r.Str("to", e.to);
  r.Str("reason", e.reason, false);
  if (r.Get("exit_code", false) != nullptr) {
    int code = 0;
    r.Int64("exit_code", code, true, -1, 1 << 16);
    e.exit_code = code;
  }
}
void ReadBody(Reader& r, EventsRequest& m) {
  r.Int64("after", m.after, false, 0);
  r.Int64("limit", m.limit, false, 1, 100000);
}
void ReadBody(Reader& r, EventsReply& m) {
  r.Array("events", [&](Reader& re) {
    Event e;
    ReadEvent(re, e);
    m.events.push_back(std::move(e));
  });
  r.Int64("first_kept", m.first_kept, true, 0);
  r.Int64("last", m.last, true, 0);
  r.Str("publish", m.publish);
}
void ReadBody(Reader& r, ErrorReply& m) {
  std::string code;
  r.Str("code", code);
  m.code = CodeFromName(code);
  r.Str("message", m.message);
}
void ReadBody(Reader& r, RegisterNode& m) {
  r.Str("node", m.node);
  r.Object("total", [&](Reader& rt) { ReadResources(rt, m.total); });
  ReadAttempts(r, "running", m.running);
  r.Indices("gpu_ids", m.gpu_ids, false);
  r.Strings("features", m.features, false);
  if (r.ok() && m.node.empty()) r.Fail("node", "must not be empty");
  if (r.ok() && static_cast<size_t>(m.total.gpus) != m.gpu_ids.size()) {
    r.Fail("total.gpus", "must equal the number of gpu_ids");
  }
}
void ReadBody(Reader& r, NodeRegistered& m) {
  r.Int64("heartbeat_interval_ms", m.heartbeat_interval_ms, true, 1);
}
void ReadBody(Reader& r, Heartbeat& m) {
  r.Str("node", m.node);
  ReadAttempts(r, "running", m.running);
  r.Number("load", m.load);
}
void ReadBody(Reader& r, JobExit& m) {
  r.Str("node", m.node);
  r.Int64("job_id", m.job_id, true, 1);
  r.Int64("attempt", m.attempt, true, 1, 1 << 30);
  r.Int64("exit_code", m.exit_code, true, 0, 1 << 16);
  r.Int64("signal", m.signal, true, 0, 1024);
  r.Int64("start_time", m.start_time);
  r.Int64("end_time", m.end_time);
  r.Int64("cpu_ms", m.cpu_ms);
  r.Int64("max_rss_kb", m.max_rss_kb);
  r.Str("failure", m.failure);
  r.Str("reason", m.reason, false);
  r.Int64("task", m.task, false, 0, kMaxTaskId);
  r.Str("result", m.result, false);
  r.Str("result_error", m.result_error, false);
  if (m.result.size() > kMaxResultBytes) r.Fail("result", "is larger than 64 KiB");
}
void ReadBody(Reader& r, ExitAck& m) {
  r.Int64("job_id", m.job_id, true, 1);
  r.Int64("attempt", m.attempt, true, 1, 1 << 30);
  r.Int64("task", m.task, false, 0, kMaxTaskId);
}
void ReadBody(Reader& r, StartJob& m) {
  r.Object("job", [&](Reader& rj) { ReadJob(rj, m.job, true, true); });
}
void ReadBody(Reader& r, KillJob& m) {
  r.Int64("job_id", m.job_id, true, 1);
  r.Int64("attempt", m.attempt, true, 1, 1 << 30);
  r.Int64("task", m.task, false, 0, kMaxTaskId);
}

// Decodes the body of alternative I of Message if its wire id is `type`.
template <size_t I = 0>
Result<Message> DecodeBody(std::string_view type, Reader& r) {
  if constexpr (I == std::variant_size_v<Message>) {
    return Error(Code::kInvalidArgument, "unknown message type '" + std::string(type) + "'");
  } else {
    using M = std::variant_alternative_t<I, Message>;
    if (M::kType != type) return DecodeBody<I + 1>(type, r);
    M m;
    ReadBody(r, m);
    if (!r.ok()) return Error(Code::kInvalidArgument, std::string(type) + ": " + r.error());
    return Message(std::move(m));
  }
}

}  // namespace

std::string_view TypeName(const Message& message) {
  return std::visit([](const auto& m) { return std::decay_t<decltype(m)>::kType; }, message);
}

namespace {

// Replies that carry many job records are written directly (job_text.h): the same text as
// the generic path below (keys in the same sorted order), without a json value per field.
void AppendIds(std::string& out, const std::vector<JobId>& ids) {
  out += '[';
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  out += ']';
}
void AppendJobs(std::string& out, const std::vector<Job>& jobs) {
  out += "\"jobs\":[";
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (i) out += ',';
    AppendJobJson(out, jobs[i]);
  }
  out += ']';
}
void AppendTail(std::string& out, std::string_view type, std::string_view req) {
  if (!req.empty()) {
    out += ",\"req\":";
    AppendJsonString(out, req);
  }
  out += ",\"type\":\"";
  out += type;
  out += "\",\"v\":" + std::to_string(kProtocolVersion) + "}";
}
std::string EncodeJobsReply(const QueryReply& m, std::string_view req) {
  std::string out;
  out.reserve(64 + 1024 * m.jobs.size());
  out += '{';
  AppendJobs(out, m.jobs);
  out += ",\"missing\":";
  AppendIds(out, m.missing);
  if (m.next) {
    out += ",\"next\":{\"job\":" + std::to_string(m.next->job) +
           ",\"task\":" + std::to_string(m.next->task) + "}";
  }
  AppendTail(out, QueryReply::kType, req);
  return out;
}
std::string EncodeJobsReply(const WaitReply& m, std::string_view req) {
  std::string out;
  out.reserve(64 + 1024 * m.jobs.size());
  out += m.done ? "{\"done\":true," : "{\"done\":false,";
  AppendJobs(out, m.jobs);
  AppendTail(out, WaitReply::kType, req);
  return out;
}

}  // namespace

std::string Encode(const Message& message, std::string_view req) {
  if (const auto* m = std::get_if<QueryReply>(&message)) return EncodeJobsReply(*m, req);
  if (const auto* m = std::get_if<WaitReply>(&message)) return EncodeJobsReply(*m, req);
  json j = std::visit([](const auto& m) { return Body(m); }, message);
  j["v"] = kProtocolVersion;
  j["type"] = TypeName(message);
  if (!req.empty()) j["req"] = req;
  // Replace invalid UTF-8 (from a user's file names or environment) instead of throwing.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Envelope> Decode(std::string_view bytes) {
  if (bytes.size() > kMaxMessageBytes) {
    return Error(Code::kInvalidArgument, "message of " + std::to_string(bytes.size()) +
                                             " bytes exceeds the limit of " +
                                             std::to_string(kMaxMessageBytes));
  }
  if (JsonNestsTooDeep(bytes)) {
    return Error(Code::kInvalidArgument, "message nests arrays or objects deeper than " +
                                             std::to_string(kMaxJsonNesting) + " levels");
  }
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error(Code::kInvalidArgument, "message is not valid JSON");
  if (!j.is_object()) return Error(Code::kInvalidArgument, "message must be a JSON object");
  Reader r(j, "");
  int version = 0;
  std::string type;
  Envelope env;
  r.Int64("v", version, true, 0, 1 << 20);
  r.Str("type", type);
  r.Str("req", env.req, false);
  r.Str("cred", env.cred, false);
  if (!r.ok()) return Error(Code::kInvalidArgument, r.error());
  if (version != kProtocolVersion) {
    return Error(Code::kInvalidArgument, "protocol version " + std::to_string(version) +
                                             " is not supported (this side speaks " +
                                             std::to_string(kProtocolVersion) + ")");
  }
  Result<Message> m = DecodeBody(type, r);
  if (!m) return std::unexpected(m.error());
  env.message = std::move(*m);
  return env;
}

std::string EncodeEvent(const Event& event) {
  return EventJson(event).dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Event> DecodeEvent(std::string_view bytes) {
  if (bytes.size() > kMaxMessageBytes) return Error(Code::kInvalidArgument, "event is too large");
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error(Code::kInvalidArgument, "event is not valid JSON");
  Reader r(j, "");
  Event e;
  if (r.ok()) ReadEvent(r, e);
  if (!r.ok()) return Error(Code::kInvalidArgument, "event: " + r.error());
  return e;
}

std::string EncodeJobRecord(const Job& job) {
  return RecordJson(job).dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<Job> DecodeJobRecord(std::string_view bytes) {
  if (JsonNestsTooDeep(bytes)) return Error(Code::kInvalidArgument, "job record nests too deep");
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error(Code::kInvalidArgument, "job record is not valid JSON");
  Reader r(j, "");
  Job job;
  if (r.ok()) ReadJob(r, job, true, true);
  if (!r.ok()) return Error(Code::kInvalidArgument, "job record: " + r.error());
  return job;
}

std::string JobToJson(const Job& job, int indent) {
  return JobJson(job, false).dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace corral
