// The stored job: two bytes (a magic byte and the format version), then every field of the
// Job in the order JobFields lists them. Integers are LEB128 varints (signed ones
// zigzagged), strings and lists a varint count then their bytes or elements, an optional a
// presence byte. One function lists the fields for both directions, so that the encoder
// and the decoder cannot drift apart; a field added to Job or JobSpec is added there.
#include "scheduler/stored_job.h"

#include <algorithm>
#include <limits>

#include "common/json_depth.h"
#include "common/protocol.h"

namespace corral {
namespace {

constexpr unsigned char kMagic = 0xC7;  // never '{': a JSON record is told apart by its first byte
constexpr unsigned char kFormat = 1;

class Writer {
 public:
  std::string& out() { return out_; }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  template <typename T>
  void Int(const char*, const T& v, int64_t, int64_t) {
    const auto x = static_cast<int64_t>(v);
    Varint((static_cast<uint64_t>(x) << 1) ^ static_cast<uint64_t>(x >> 63));  // zigzag
  }
  void Bool(const char*, bool v) { out_.push_back(v ? 1 : 0); }
  void Str(const char*, const std::string& s, size_t = 0) {
    Varint(s.size());
    out_.append(s);
  }
  void State(const char*, JobState s) {
    const std::string_view name = StateName(s);
    Varint(name.size());
    out_.append(name);
  }
  template <typename T, typename Fn>
  void List(const char*, const std::vector<T>& v, Fn fn) {
    Varint(v.size());
    for (const T& e : v) fn(e);
  }
  template <typename V, typename Fn>
  void Map(const char*, const std::map<std::string, V>& m, Fn fn) {
    Varint(m.size());
    for (const auto& [k, v] : m) {
      Str("", k);
      fn(v);
    }
  }
  template <typename T, typename Fn>
  void Optional(const char*, const std::optional<T>& v, Fn fn) {
    Bool("", v.has_value());
    if (v) fn(*v);
  }
  // A Rare<T> field (common/rare.h) is written as its T.
  template <typename T, typename... A>
  void Str(const char* field, const Rare<T>& s, A... a) {
    Str(field, s.get(), a...);
  }
  template <typename T, typename Fn>
  void List(const char* field, const Rare<T>& v, Fn fn) {
    List(field, v.get(), fn);
  }
  template <typename T, typename Fn>
  void Map(const char* field, const Rare<T>& m, Fn fn) {
    Map(field, m.get(), fn);
  }
  bool ok() const { return true; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : at_(bytes.data()), end_(bytes.data() + bytes.size()) {}
  const std::string& error() const { return error_; }
  bool ok() const { return error_.empty(); }
  bool done() const { return at_ == end_; }
  void Fail(const char* field, const std::string& what) {
    if (error_.empty()) error_ = std::string(field) + " " + what;
  }
  uint64_t Varint(const char* field) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at_ == end_) {
        Fail(field, "is truncated");
        return 0;
      }
      const auto byte = static_cast<unsigned char>(*at_++);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    Fail(field, "is not a varint");
    return 0;
  }
  template <typename T>
  void Int(const char* field, T& out, int64_t lo, int64_t hi) {
    const uint64_t z = Varint(field);
    const auto v = static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));  // un-zigzag
    if (!ok()) return;
    if (v < lo || v > hi) return Fail(field, "is out of range: " + std::to_string(v));
    out = static_cast<T>(v);
  }
  void Bool(const char* field, bool& out) {
    if (at_ == end_) return Fail(field, "is truncated");
    const char b = *at_++;
    if (b != 0 && b != 1) return Fail(field, "is not a boolean");
    out = b == 1;
  }
  void Str(const char* field, std::string& out, size_t max = std::numeric_limits<size_t>::max()) {
    const uint64_t n = Varint(field);
    if (!ok()) return;
    if (n > static_cast<uint64_t>(end_ - at_)) return Fail(field, "is truncated");
    if (n > max) return Fail(field, "is too long");
    out.assign(at_, n);
    at_ += n;
  }
  void State(const char* field, JobState& out) {
    std::string name;
    Str(field, name);
    if (!ok()) return;
    std::optional<JobState> s = StateFromName(name);
    if (!s) return Fail(field, "is not a job state: '" + name + "'");
    out = *s;
  }
  // Each element takes at least one byte: a count beyond what is left is corrupt.
  uint64_t Count(const char* field) {
    const uint64_t n = Varint(field);
    if (ok() && n > static_cast<uint64_t>(end_ - at_)) Fail(field, "has a count beyond the record");
    return ok() ? n : 0;
  }
  template <typename T, typename Fn>
  void List(const char* field, std::vector<T>& v, Fn fn) {
    const uint64_t n = Count(field);
    v.clear();
    v.reserve(std::min<uint64_t>(n, 16));  // a corrupt count must not reserve much
    for (uint64_t i = 0; i < n && ok(); ++i) fn(v.emplace_back());
  }
  template <typename V, typename Fn>
  void Map(const char* field, std::map<std::string, V>& m, Fn fn) {
    const uint64_t n = Count(field);
    m.clear();
    for (uint64_t i = 0; i < n && ok(); ++i) {
      std::string key;
      Str(field, key);
      V value{};
      fn(value);
      if (ok() && !m.emplace(std::move(key), std::move(value)).second) {
        Fail(field, "has a key twice");
      }
    }
  }
  template <typename T, typename Fn>
  void Optional(const char* field, std::optional<T>& v, Fn fn) {
    bool present = false;
    Bool(field, present);
    if (!present || !ok()) return;
    fn(v.emplace());
  }
  // A Rare<T> field (common/rare.h) is read as its T, and stays unallocated when empty.
  template <typename T, typename... A>
  void Str(const char* field, Rare<T>& out, A... a) {
    T v;
    Str(field, v, a...);
    out = std::move(v);
  }
  template <typename T, typename Fn>
  void List(const char* field, Rare<T>& out, Fn fn) {
    T v;
    List(field, v, fn);
    out = std::move(v);
  }
  template <typename T, typename Fn>
  void Map(const char* field, Rare<T>& out, Fn fn) {
    T v;
    Map(field, v, fn);
    out = std::move(v);
  }

 private:
  const char* at_;
  const char* end_;
  std::string error_;
};

constexpr int64_t kMaxI64 = std::numeric_limits<int64_t>::max();

// A task range, as ParseTaskRange accepts it: 1 <= first <= last <= kMaxTaskId, step >= 1.
template <typename IO, typename R>
void RangeFields(IO& io, const char* field, R& r) {
  io.Int(field, r.first, 1, kMaxTaskId);
  io.Int(field, r.last, 1, kMaxTaskId);
  io.Int(field, r.step, 1, kMaxTaskId);
  if constexpr (std::is_same_v<IO, Reader>) {
    if (io.ok() && r.last < r.first) io.Fail(field, "has last < first");
  }
}

// The ranges are those of ReadJob/ReadSpec in common/protocol.cc (DecodeJobRecord).
template <typename IO, typename S>
void SpecFields(IO& io, S& s) {
  auto str = [&](auto& e) { io.Str("spec", e); };
  auto id = [&](auto& e) { io.Int("spec.after", e, 1, kMaxI64); };
  io.Str("spec.name", s.name);
  io.Str("spec.script", s.script, kMaxScriptBytes);
  io.Bool("spec.binary", s.binary);
  io.List("spec.args", s.args, str);
  io.Str("spec.shell", s.shell);
  io.Str("spec.cwd", s.cwd);
  io.Str("spec.stdout_path", s.stdout_path);
  io.Str("spec.stderr_path", s.stderr_path);
  io.Bool("spec.join", s.join);
  io.Map("spec.env", s.env, str);
  io.Int("spec.request.cores", s.request.cores, 0, 1 << 20);
  io.Int("spec.request.mem_mb", s.request.mem_mb, 0, int64_t{1} << 40);
  io.Int("spec.request.gpus", s.request.gpus, 0, 1 << 16);
  io.Map("spec.request.consumables", s.request.consumables,
         [&](auto& n) { io.Int("spec.request.consumables", n, 0, kMaxI64); });
  io.Int("spec.h_rt_s", s.h_rt_s, 0, kMaxI64);
  io.Bool("spec.hold", s.hold);
  io.Str("spec.queue", s.queue);
  io.Str("spec.project", s.project);
  io.Map("spec.other_resources", s.other_resources, str);
  io.Bool("spec.rerunnable", s.rerunnable);
  io.Int("spec.max_attempts", s.max_attempts, 0, 1000);
  io.Int("spec.priority", s.priority, -1023, 1024);
  io.List("spec.features", s.features, str);
  io.Optional("spec.array", s.array, [&](auto& r) { RangeFields(io, "spec.array", r); });
  io.Int("spec.max_running_tasks", s.max_running_tasks, 0, 1 << 30);
  io.List("spec.sweep", s.sweep, str);
  io.List("spec.after_any", s.after_any, id);
  io.List("spec.after_ok", s.after_ok, id);
  io.List("spec.after_notok", s.after_notok, id);
  io.List("spec.after_tasks", s.after_tasks, id);
}

template <typename IO, typename J>
void JobFields(IO& io, J& job) {
  auto index = [&](auto& e) { io.Int("alloc", e, 0, 1 << 20); };
  io.Int("id", job.id, 1, kMaxI64);
  io.Int("task", job.task, 0, kMaxTaskId);
  io.List("pending_tasks", job.pending, [&](auto& r) { RangeFields(io, "pending_tasks", r); });
  io.Str("params", job.params);
  io.Str("result", job.result);
  io.Str("result_error", job.result_error);
  io.Str("owner", job.owner);
  io.Int("uid", job.uid, 0, 0xffffffffLL);
  io.Int("gid", job.gid, 0, 0xffffffffLL);
  io.State("state", job.state);
  io.Int("attempt", job.attempt, 0, 1 << 30);
  io.Str("node", job.node);
  io.Int("submit_time", job.submit_time, 0, kMaxI64);
  io.Int("start_time", job.start_time, 0, kMaxI64);
  io.Int("end_time", job.end_time, 0, kMaxI64);
  io.Optional("exit_code", job.exit_code, [&](auto& c) { io.Int("exit_code", c, -1, 1 << 16); });
  io.Int("exit_signal", job.exit_signal, 0, 1024);
  io.Int("cpu_ms", job.cpu_ms, 0, kMaxI64);
  io.Int("max_rss_kb", job.max_rss_kb, 0, kMaxI64);
  io.Str("reason", job.reason);
  io.Bool("cancel_requested", job.cancel_requested);
  io.List("alloc_cores", job.alloc_cores, index);
  io.List("alloc_gpus", job.alloc_gpus, index);
  io.List("attempts", job.attempts, [&](auto& a) {
    io.Int("attempts.attempt", a.number, 1, 1 << 30);
    io.Str("attempts.node", a.node);
    io.Int("attempts.start_time", a.start_time, 0, kMaxI64);
    io.Int("attempts.end_time", a.end_time, 0, kMaxI64);
    io.Str("attempts.exit_reason", a.exit_reason);
  });
  SpecFields(io, job.spec);
}

}  // namespace

std::string EncodeStoredJob(const Job& job) {
  Writer w;
  w.out().reserve(256 + job.spec.script.size());
  w.out().push_back(static_cast<char>(kMagic));
  w.out().push_back(static_cast<char>(kFormat));
  JobFields(w, job);
  return std::move(w.out());
}

bool IsStoredJob(std::string_view bytes) {
  return !bytes.empty() && static_cast<unsigned char>(bytes[0]) == kMagic;
}

Result<Job> DecodeStoredJob(std::string_view bytes) {
  if (bytes.size() < 2 || !IsStoredJob(bytes)) {
    return Error(Code::kInvalidArgument, "stored job: not a stored job record");
  }
  if (static_cast<unsigned char>(bytes[1]) != kFormat) {
    return Error(Code::kInvalidArgument, "stored job: format " +
                                             std::to_string(static_cast<unsigned char>(bytes[1])) +
                                             " is not known to this Corral");
  }
  Reader r(bytes.substr(2));
  Job job;
  JobFields(r, job);
  const JobSpec& s = job.spec;
  for (const auto& [name, count] : s.request.consumables) {
    if (r.ok() && (name.empty() || name.size() > 64)) {
      r.Fail("spec.request.consumables", "has an empty or over-long name");
    }
  }
  if (r.ok() && !s.sweep.empty() &&
      (!s.array || s.array->Count() != static_cast<int64_t>(s.sweep.size()))) {
    r.Fail("spec.sweep", "must have one point per task of spec.array");
  }
  for (const std::string& point : s.sweep) {  // the execd parses each point as JSON
    if (r.ok() && JsonNestsTooDeep(point)) r.Fail("spec.sweep", "has a point nested too deep");
  }
  if (r.ok() && !r.done()) r.Fail("record", "has bytes after its last field");
  if (!r.ok()) return Error(Code::kInvalidArgument, "stored job " + std::to_string(job.id) + ": " + r.error());
  return job;
}

}  // namespace corral
