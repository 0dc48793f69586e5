// qsub option parsing: one table of option arities shared by argv and the `#$`
// directives, then one Apply() per option over a State that becomes the JobSpec.
// `#PBS` lines go through ApplyPbs (dask-jobqueue's PBSCluster, sge-compat.md §6).
#include "qtools/qsub_options.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <utility>

#include "common/protocol.h"
#include "common/units.h"

namespace corral {
namespace {

enum class Arity { kNone, kOne, kTwo, kBinding };

struct OptionDef {
  std::string_view name;
  Arity arity;
};

// Every option qsub accepts. Anything else is "unknown option".
constexpr OptionDef kOptions[] = {
    {"-N", Arity::kOne},       {"-o", Arity::kOne},        {"-e", Arity::kOne},
    {"-j", Arity::kOne},       {"-cwd", Arity::kNone},     {"-wd", Arity::kOne},
    {"-V", Arity::kNone},      {"-v", Arity::kOne},        {"-l", Arity::kOne},
    {"-pe", Arity::kTwo},      {"-h", Arity::kNone},       {"-terse", Arity::kNone},
    {"-sync", Arity::kOne},    {"-b", Arity::kOne},        {"-S", Arity::kOne},
    {"-q", Arity::kOne},       {"-P", Arity::kOne},        {"-A", Arity::kOne},
    {"-notify", Arity::kNone}, {"-hold_jid", Arity::kOne}, {"-hard", Arity::kNone},
    {"-soft", Arity::kNone},   {"-r", Arity::kOne},        {"-m", Arity::kOne},
    {"-M", Arity::kOne},       {"-p", Arity::kOne},        {"-R", Arity::kOne},
    {"-w", Arity::kOne},       {"-now", Arity::kOne},      {"-binding", Arity::kBinding},
    {"-clear", Arity::kNone},  {"-C", Arity::kOne},        {"-help", Arity::kNone},
    {"-t", Arity::kOne},       {"-@", Arity::kOne},        {"--max-attempts", Arity::kOne},
    {"-tc", Arity::kOne},      {"-hold_jid_ad", Arity::kOne}, {"--after-ok", Arity::kOne},
    {"--after-any", Arity::kOne}, {"--after-notok", Arity::kOne}, {"--sweep", Arity::kOne},
};

// Options of the PBS dialect honoured in `#PBS` lines.
constexpr OptionDef kPbsOptions[] = {
    {"-N", Arity::kOne}, {"-q", Arity::kOne},  {"-A", Arity::kOne}, {"-l", Arity::kOne},
    {"-e", Arity::kOne}, {"-o", Arity::kOne},  {"-j", Arity::kOne}, {"-V", Arity::kNone},
    {"-v", Arity::kOne}, {"-m", Arity::kOne},  {"-M", Arity::kOne}, {"-S", Arity::kOne},
    {"-r", Arity::kOne}, {"-h", Arity::kNone}, {"-p", Arity::kOne}, {"-W", Arity::kOne},
    {"-k", Arity::kOne},
};

// The largest memory request (MiB) the scheduler decodes (protocol.cc: 2^40, a million TiB).
constexpr int64_t kMaxMemMb = int64_t{1} << 40;

// Memory resources Grid Engine counts per slot.
constexpr std::string_view kMemoryResources[] = {"h_vmem", "s_vmem", "mem_free",
                                                 "h_rss",  "mem",    "virtual_free"};

template <size_t N>
const OptionDef* Find(const OptionDef (&table)[N], std::string_view name) {
  for (const OptionDef& def : table) {
    if (def.name == name) return &def;
  }
  return nullptr;
}

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

bool ParseInt(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string Basename(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// Grid Engine paths may carry a host: "[[host]:]path". Corral has one shared filesystem
// view, so the host part is dropped.
std::string StripHost(std::string_view value) {
  const size_t colon = value.find(':');
  if (colon != std::string_view::npos && value.substr(0, colon).find('/') == std::string::npos) {
    return std::string(value.substr(colon + 1));
  }
  return std::string(value);
}

std::string MakeAbsolute(const std::string& path, const std::string& base) {
  if (path.empty() || path.front() == '/' || path.front() == '$') return path;
  if (base.empty() || base.back() == '/') return base + path;
  return base + "/" + path;
}

// Takes the option at words[i] (with its values) into `out`; returns the next index.
// `table` gives the arities; an unknown option is reported by the caller.
template <size_t N>
Result<size_t> TakeOption(const OptionDef (&table)[N], const std::vector<std::string>& words,
                          size_t i, QsubOption& out) {
  const OptionDef* def = Find(table, words[i]);
  if (def == nullptr) return Error(Code::kNotFound, "unknown option " + Quote(words[i]));
  out.name = words[i];
  out.values.clear();
  size_t want = 0;
  switch (def->arity) {
    case Arity::kNone:
      want = 0;
      break;
    case Arity::kOne:
      want = 1;
      break;
    case Arity::kTwo:
      want = 2;
      break;
    case Arity::kBinding: {
      // -binding [set|env|pe] strategy
      const bool instance = i + 1 < words.size() && (words[i + 1] == "set" ||
                                                     words[i + 1] == "env" || words[i + 1] == "pe");
      want = instance ? 2 : 1;
      break;
    }
  }
  if (i + want >= words.size() && want > 0) {
    return Error(Code::kInvalidArgument,
                 "option " + Quote(words[i]) + " needs " +
                     (want == 1 ? std::string("a value") : std::to_string(want) + " values"));
  }
  for (size_t k = 1; k <= want; ++k) out.values.push_back(words[i + k]);
  return i + 1 + want;
}

// Everything the options decide, before it becomes a JobSpec.
struct State {
  JobSpec spec;  // shell, paths, join, hold, queue, project, h_rt_s, other_resources
  std::optional<std::string> name;
  enum class Cwd { kHome, kSubmitDir, kDir } cwd = Cwd::kHome;
  std::string wd;
  bool export_all = false;
  std::vector<std::pair<std::string, std::optional<std::string>>> vars;  // -v, in order
  std::map<std::string, int64_t> mem_per_slot_mb;                        // per memory resource name
  std::optional<int64_t> mem_total_mb;  // PBS: memory of the whole job
  int cores = 1;
  bool soft = false;
  bool pbs = false;
  bool terse = false;
  bool sync = false;
  std::vector<std::string> hold_names;  // -hold_jid by job name
  std::string sweep_file;
};

struct Context {
  const QsubInput& in;
  std::vector<std::string>& warnings;
};

Result<bool> YesNo(const QsubOption& opt, const std::string& where) {
  const std::string v = Lower(opt.values[0]);
  if (v == "y" || v == "yes" || v == "true") return true;
  if (v == "n" || v == "no" || v == "false") return false;
  return Error(Code::kInvalidArgument,
               where + opt.name + ": expected y or n, got " + Quote(opt.values[0]));
}

Result<int> PositiveCount(std::string_view text, const std::string& what) {
  int64_t n = 0;
  if (!ParseInt(text, n) || n < 1 || n > 1 << 20) {
    return Error(Code::kInvalidArgument,
                 what + ": " + Quote(text) + " is not a positive number of slots");
  }
  return static_cast<int>(n);
}

// One "name=value" of -l (Grid Engine dialect).
Status ApplyResource(std::string_view item, State& st, Context& ctx, const std::string& where) {
  item = Trim(item);
  if (item.empty()) return OkStatus();
  const size_t eq = item.find('=');
  const std::string name = Lower(item.substr(0, eq));
  const std::string value(eq == std::string_view::npos ? "TRUE" : item.substr(eq + 1));
  const std::string label = where + "-l " + std::string(item);
  if (st.soft) {
    ctx.warnings.push_back(where + "soft resource request " + Quote(item) +
                           " ignored (only hard requests are supported)");
    return OkStatus();
  }
  if (name == "h_rt" || name == "s_rt") {
    Result<int64_t> s = ParseDurationSeconds(value);
    if (!s) return Error(Code::kInvalidArgument, label + ": " + s.error().message());
    if (name == "h_rt") {
      st.spec.h_rt_s = *s;
    } else {
      st.spec.other_resources["s_rt"] = std::to_string(*s);
    }
    return OkStatus();
  }
  if (std::find(std::begin(kMemoryResources), std::end(kMemoryResources), name) !=
      std::end(kMemoryResources)) {
    Result<int64_t> mb = ParseSizeMb(value);
    if (!mb) return Error(Code::kInvalidArgument, label + ": " + mb.error().message());
    st.mem_per_slot_mb[name] = *mb;
    return OkStatus();
  }
  if (name == "slots" || name == "cpus" || name == "ncpus") {
    Result<int> n = PositiveCount(value, label);
    if (!n) return n.error();
    st.cores = *n;
    return OkStatus();
  }
  if (name == "gpu" || name == "gpus" || name == "ngpus") {
    // GPUs per job (Grid Engine sites name this complex gpu; Slurm says gpus). 0 is allowed.
    if (value == "0") {
      st.spec.request.gpus = 0;
      return OkStatus();
    }
    if (Lower(value) == "true") {  // "-l gpu": a boolean request, as some sites write it
      st.spec.request.gpus = 1;
      return OkStatus();
    }
    Result<int> n = PositiveCount(value, label);
    if (!n) return n.error();
    st.spec.request.gpus = *n;
    return OkStatus();
  }
  if (name == "arch" || name == "feature" || name == "features") {
    // Node features ("-l arch=avx512", "-l feature=avx512+bigmem"): every one is required.
    for (std::string_view f : Split(value, '+')) {
      f = Trim(f);
      if (f.empty()) return Error(Code::kInvalidArgument, label + ": empty feature name");
      if (std::find(st.spec.features.begin(), st.spec.features.end(), f) ==
          st.spec.features.end()) {
        st.spec.features.emplace_back(f);
      }
    }
    return OkStatus();
  }
  // Consumables (-l matlab=1, -l scratch_gb=100) and boolean features (-l bigmem) are
  // defined by the cluster's configuration, which the scheduler knows: it interprets
  // these at submit and sends back a warning for names it does not know.
  st.spec.other_resources[name] = value;
  return OkStatus();
}

Status Apply(const QsubOption& opt, State& st, Context& ctx, const std::string& where) {
  const std::string& n = opt.name;
  const std::string v = opt.values.empty() ? "" : opt.values[0];
  auto bad = [&](const std::string& why) {
    return Error(Code::kInvalidArgument, where + n + " " + v + ": " + why);
  };
  if (n == "-N") {
    if (Status s = ValidateJobName(v); !s.ok()) return bad(s.message());
    st.name = v;
  } else if (n == "-o") {
    st.spec.stdout_path = StripHost(v);
  } else if (n == "-e") {
    st.spec.stderr_path = StripHost(v);
  } else if (n == "-j") {
    Result<bool> b = YesNo(opt, where);
    if (!b) return b.error();
    st.spec.join = *b;
  } else if (n == "-cwd") {
    st.cwd = State::Cwd::kSubmitDir;
  } else if (n == "-wd") {
    st.cwd = State::Cwd::kDir;
    st.wd = MakeAbsolute(v, ctx.in.cwd);
  } else if (n == "-V") {
    st.export_all = true;
  } else if (n == "-v") {
    for (std::string_view item : Split(v, ',')) {
      item = Trim(item);
      if (item.empty()) continue;
      const size_t eq = item.find('=');
      if (eq == 0) return bad("empty variable name");
      if (eq == std::string_view::npos) {
        st.vars.emplace_back(std::string(item), std::nullopt);
      } else {
        st.vars.emplace_back(std::string(item.substr(0, eq)), std::string(item.substr(eq + 1)));
      }
    }
  } else if (n == "-l") {
    for (std::string_view item : Split(v, ',')) {
      if (Status s = ApplyResource(item, st, ctx, where); !s.ok()) return s;
    }
  } else if (n == "-pe") {
    // -pe NAME N[-M]: Corral grants the lower bound.
    const std::string& range = opt.values[1];
    const size_t dash = range.find('-');
    std::string low = range.substr(0, dash);
    if (low.empty()) low = "1";
    Result<int> slots = PositiveCount(low, where + "-pe " + v + " " + range);
    if (!slots) return slots.error();
    if (dash != std::string::npos && dash + 1 < range.size()) {
      int64_t high = 0;
      if (!ParseInt(range.substr(dash + 1), high) || high < *slots) {
        return Error(Code::kInvalidArgument,
                     where + "-pe " + v + " " + range + ": " + Quote(range) + " is not a range");
      }
    }
    st.cores = *slots;
  } else if (n == "-h") {
    st.spec.hold = true;
  } else if (n == "-terse") {
    st.terse = true;
  } else if (n == "-sync") {
    Result<bool> b = YesNo(opt, where);
    if (!b) return b.error();
    st.sync = *b;
  } else if (n == "-r") {
    // Rerunnable: may the job run again after its node failed? (default yes)
    Result<bool> b = YesNo(opt, where);
    if (!b) return b.error();
    st.spec.rerunnable = *b;
  } else if (n == "--max-attempts") {
    int64_t attempts = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), attempts);
    if (ec != std::errc() || p != v.data() + v.size() || attempts < 1 || attempts > 1000) {
      return Error(Code::kInvalidArgument,
                   where + "--max-attempts " + Quote(v) + ": must be a number from 1 to 1000");
    }
    st.spec.max_attempts = static_cast<int>(attempts);
  } else if (n == "-b" || n == "-R") {
    // -b was decided from argv (it says whether to read the script); here only checked.
    Result<bool> b = YesNo(opt, where);
    if (!b) return b.error();
  } else if (n == "-S") {
    st.spec.shell = StripHost(v);
  } else if (n == "-q") {
    st.spec.queue = v;
  } else if (n == "-P" || n == "-A") {
    st.spec.project = v;
  } else if (n == "-hold_jid" || n == "-hold_jid_ad" || n == "--after-ok" ||
             n == "--after-any" || n == "--after-notok") {
    // Job ids (Slurm separates them with ':', Grid Engine with ','); -hold_jid also takes
    // job names, which qsub resolves with the scheduler.
    std::vector<JobId>& ids = (n == "-hold_jid" || n == "--after-any" ? st.spec.after_any
                               : n == "-hold_jid_ad"                  ? st.spec.after_tasks
                               : n == "--after-ok"                    ? st.spec.after_ok
                                                                      : st.spec.after_notok)
                                  .mut();
    std::string list = v;
    std::replace(list.begin(), list.end(), ':', ',');
    for (std::string_view item : Split(list, ',')) {
      item = Trim(item);
      if (item.empty()) continue;
      int64_t id = 0;
      if (ParseInt(item, id) && id > 0) {
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
      } else if (n == "-hold_jid" && ValidateJobName(item).ok()) {
        st.hold_names.emplace_back(item);
      } else {
        return bad(n == "-hold_jid" ? "expected job ids or job names" : "expected job ids");
      }
    }
  } else if (n == "-t") {
    Result<TaskRange> range = ParseTaskRange(v);
    if (!range) return bad(range.error().message());
    st.spec.array = *range;
  } else if (n == "-tc") {
    int64_t tc = 0;
    if (!ParseInt(v, tc) || tc < 1 || tc > (1 << 30)) return bad("expected a positive number");
    st.spec.max_running_tasks = static_cast<int>(tc);
  } else if (n == "--sweep") {
    st.sweep_file = v;
  } else if (n == "-hard") {
    st.soft = false;
  } else if (n == "-soft") {
    st.soft = true;
  } else if (n == "-p") {
    int64_t p = 0;
    if (!ParseInt(v, p) || p < -1023 || p > 1024) return bad("expected a number in -1023..1024");
    st.spec.priority = static_cast<int>(p);
  } else if (n == "-w") {
    if (v == "v" || v == "p") return bad("verification-only submission is not supported");
    if (v != "e" && v != "w" && v != "n") return bad("expected e, w, n, v or p");
  } else if (n == "-now") {
    Result<bool> b = YesNo(opt, where);
    if (!b) return b.error();
    if (*b) ctx.warnings.push_back(where + "-now y is not supported: the job is queued as usual");
  } else if (n == "-clear") {
    State fresh;
    fresh.terse = st.terse;
    fresh.sync = st.sync;
    fresh.pbs = st.pbs;
    st = std::move(fresh);
  } else if (n == "-@") {
    return Error(Code::kInvalidArgument, where + "option '-@' (option file) is not supported");
  }
  // -notify, -m, -M, -binding, -C (argv only), -help (argv only): accepted, no effect.
  return OkStatus();
}

// One "#PBS" option. PBS memory is for the whole chunk, not per slot.
Status ApplyPbs(const QsubOption& opt, State& st, Context& ctx, const std::string& where) {
  const std::string& n = opt.name;
  const std::string v = opt.values.empty() ? "" : opt.values[0];
  st.pbs = true;
  if (n == "-N" || n == "-q" || n == "-e" || n == "-o" || n == "-V" || n == "-v" || n == "-S" ||
      n == "-h") {
    return Apply(opt, st, ctx, where);
  }
  if (n == "-A") {
    st.spec.project = v;
  } else if (n == "-j") {
    st.spec.join = (v == "oe" || v == "eo" || v == "y");
  } else if (n == "-l") {
    for (std::string_view item : Split(v, ',')) {
      item = Trim(item);
      const size_t eq = item.find('=');
      const std::string name = Lower(item.substr(0, eq));
      const std::string value(eq == std::string_view::npos ? "" : item.substr(eq + 1));
      const std::string label = where + "-l " + std::string(item);
      if (name == "walltime") {
        Result<int64_t> s = ParseDurationSeconds(value);
        if (!s) return Error(Code::kInvalidArgument, label + ": " + s.error().message());
        st.spec.h_rt_s = *s;
      } else if (name == "select" || name == "nodes") {
        // select=K:ncpus=N:mem=X (PBS Pro) or nodes=K:ppn=N (Torque).
        std::vector<std::string_view> parts = Split(value, ':');
        Result<int> chunks = PositiveCount(parts[0], label);
        if (!chunks) return chunks.error();
        int per_chunk = 1;
        std::optional<int64_t> chunk_mem;
        for (size_t k = 1; k < parts.size(); ++k) {
          const size_t e = parts[k].find('=');
          const std::string key = Lower(parts[k].substr(0, e));
          const std::string_view val = e == std::string_view::npos ? "" : parts[k].substr(e + 1);
          if (key == "ncpus" || key == "ppn") {
            Result<int> c = PositiveCount(val, label);
            if (!c) return c.error();
            per_chunk = *c;
          } else if (key == "mem") {
            Result<int64_t> mb = ParseSizeMb(val);
            if (!mb) return Error(Code::kInvalidArgument, label + ": " + mb.error().message());
            chunk_mem = *mb;
          } else {
            st.spec.other_resources[key] = std::string(val);
            ctx.warnings.push_back(where + "unknown resource " + Quote(key) + " in #PBS -l " +
                                   std::string(item) + ": recorded, not enforced");
          }
        }
        // Each factor is at most 2^20: multiplied in 64 bits, then bounded like one count.
        const int64_t cores = int64_t{*chunks} * per_chunk;
        if (cores > (1 << 20)) return Error(Code::kInvalidArgument, label + ": too many cpus");
        st.cores = static_cast<int>(cores);
        if (chunk_mem && *chunk_mem > kMaxMemMb / *chunks) {
          return Error(Code::kInvalidArgument, label + ": too much memory");
        }
        if (chunk_mem) st.mem_total_mb = *chunk_mem * *chunks;
      } else if (name == "ncpus") {
        Result<int> c = PositiveCount(value, label);
        if (!c) return c.error();
        st.cores = *c;
      } else if (name == "mem") {
        Result<int64_t> mb = ParseSizeMb(value);
        if (!mb) return Error(Code::kInvalidArgument, label + ": " + mb.error().message());
        st.mem_total_mb = *mb;
      } else if (!name.empty()) {
        st.spec.other_resources[name] = value;
        ctx.warnings.push_back(where + "unknown resource " + Quote(name) + " in #PBS -l " +
                               std::string(item) + ": recorded, not enforced");
      }
    }
  }
  // -m, -M, -r, -p, -W, -k: accepted, no effect.
  return OkStatus();
}

// The option lines of the script, in order, each with its location for messages.
struct Directive {
  std::vector<std::string> words;
  bool pbs = false;
  std::string where;  // "<script>:<line>: "
};

Result<std::vector<Directive>> ScanDirectives(std::string_view text, std::string_view prefix,
                                              const std::string& label) {
  std::vector<Directive> out;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    bool pbs = false;
    std::string_view rest;
    if (!prefix.empty() && line.starts_with(prefix)) {
      rest = line.substr(prefix.size());
    } else if (line.starts_with("#PBS")) {
      rest = line.substr(4);
      pbs = true;
    } else {
      continue;
    }
    // Text after a further '#' is a comment (parse_job_cull.c).
    if (size_t hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
    rest = Trim(rest);
    if (rest.empty()) continue;
    std::string where = label + ":" + std::to_string(line_no) + ": ";
    Result<std::vector<std::string>> words = SplitOptionWords(rest);
    if (!words) return Error(Code::kInvalidArgument, where + words.error().message());
    out.push_back({std::move(*words), pbs, std::move(where)});
  }
  return out;
}

Status ApplyDirective(const Directive& d, std::string_view prefix, State& st, Context& ctx) {
  for (size_t i = 0; i < d.words.size();) {
    QsubOption opt;
    if (d.pbs) {
      Result<size_t> next = TakeOption(kPbsOptions, d.words, i, opt);
      if (!next && next.error().code() == Code::kNotFound) {
        ctx.warnings.push_back(d.where + "#PBS option " + Quote(d.words[i]) +
                               " is not supported; rest of the line ignored");
        return OkStatus();
      }
      if (!next) return Error(Code::kInvalidArgument, d.where + next.error().message());
      if (Status s = ApplyPbs(opt, st, ctx, d.where); !s.ok()) return s;
      i = *next;
      continue;
    }
    if (d.words[i].size() < 2 || d.words[i][0] != '-') {
      return Error(Code::kInvalidArgument, d.where + "unexpected word " + Quote(d.words[i]) +
                                               " in " + std::string(prefix) + " directive");
    }
    Result<size_t> next = TakeOption(kOptions, d.words, i, opt);
    if (!next && next.error().code() == Code::kNotFound) {
      return Error(Code::kInvalidArgument, d.where + "unknown option " + Quote(d.words[i]) +
                                               " in " + std::string(prefix) + " directive");
    }
    if (!next) return Error(Code::kInvalidArgument, d.where + next.error().message());
    if (Status s = Apply(opt, st, ctx, d.where); !s.ok()) return s;
    i = *next;
  }
  return OkStatus();
}

}  // namespace

Result<std::vector<std::string>> SplitOptionWords(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < text.size()) {
        word += text[++i];
      } else {
        word += c;
      }
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '\\' && i + 1 < text.size()) {
      word += text[++i];
    } else {
      word += c;
    }
  }
  if (quote != 0) return Error(Code::kInvalidArgument, std::string("unterminated ") + quote);
  if (in_word) words.push_back(std::move(word));
  return words;
}

Status ValidateJobName(std::string_view name) {
  if (name.empty()) return Error(Code::kInvalidArgument, "job name is empty");
  if (std::isdigit(static_cast<unsigned char>(name[0]))) {
    return Error(Code::kInvalidArgument, "job name may not start with a digit");
  }
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u >= 127 || std::string_view("/:@\\*?").find(c) != std::string_view::npos) {
      return Error(
          Code::kInvalidArgument,
          "job name may not contain whitespace, control characters or any of / : @ \\ * ?");
    }
  }
  return OkStatus();
}

Result<QsubCommandLine> SplitQsubCommandLine(const std::vector<std::string>& args) {
  QsubCommandLine cl;
  for (size_t i = 0; i < args.size();) {
    const std::string& word = args[i];
    if (word == "--help") {
      cl.help = true;
      ++i;
      continue;
    }
    if (word.size() < 2 || word[0] != '-') {
      cl.script = word;
      cl.script_args.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      break;
    }
    QsubOption opt;
    Result<size_t> next = TakeOption(kOptions, args, i, opt);
    if (!next) return Error(Code::kInvalidArgument, next.error().message());
    i = *next;
    if (opt.name == "-@") {
      return Error(Code::kInvalidArgument, "option '-@' (option file) is not supported");
    }
    if (opt.name == "-help") cl.help = true;
    if (opt.name == "-C") cl.directive_prefix = opt.values[0];
    if (opt.name == "-b") {
      const std::string v = Lower(opt.values[0]);
      cl.binary = (v == "y" || v == "yes" || v == "true");
    }
    cl.options.push_back(std::move(opt));
  }
  return cl;
}

bool ScriptFromStdin(const QsubCommandLine& cl) {
  return !cl.binary && (!cl.script || *cl.script == "-");
}

Result<ParsedQsub> ParseQsub(const QsubInput& in) {
  Result<QsubCommandLine> cl = SplitQsubCommandLine(in.args);
  if (!cl) return std::unexpected(cl.error());
  ParsedQsub out;
  if (cl->help) {
    out.help = true;
    return out;
  }
  if (cl->binary && !cl->script) return Error(Code::kInvalidArgument, "-b y needs a command");
  out.script_label = ScriptFromStdin(*cl) ? "STDIN" : *cl->script;

  State st;
  Context ctx{in, out.warnings};
  if (!cl->binary) {
    if (in.script_text.size() > kMaxScriptBytes) {
      return Error(Code::kInvalidArgument,
                   out.script_label + ": the script is " + std::to_string(in.script_text.size()) +
                       " bytes; the limit is " + std::to_string(kMaxScriptBytes));
    }
    Result<std::vector<Directive>> directives =
        ScanDirectives(in.script_text, cl->directive_prefix, out.script_label);
    if (!directives) return std::unexpected(directives.error());
    for (const Directive& d : *directives) {
      if (Status s = ApplyDirective(d, cl->directive_prefix, st, ctx); !s.ok()) {
        return std::unexpected(s);
      }
    }
  }
  for (const QsubOption& opt : cl->options) {
    if (Status s = Apply(opt, st, ctx, ""); !s.ok()) return std::unexpected(s);
  }

  JobSpec& spec = st.spec;
  if (st.name) {
    spec.name = *st.name;
  } else if (ScriptFromStdin(*cl)) {
    spec.name = "STDIN";
  } else {
    spec.name = Basename(*cl->script);
  }
  switch (st.cwd) {
    case State::Cwd::kHome:
      spec.cwd = in.home;
      break;
    case State::Cwd::kSubmitDir:
      spec.cwd = in.cwd;
      break;
    case State::Cwd::kDir:
      spec.cwd = st.wd;
      break;
  }
  // Relative -o/-e are relative to the job's working directory (sge_submit.1).
  spec.stdout_path = MakeAbsolute(spec.stdout_path, spec.cwd);
  spec.stderr_path = MakeAbsolute(spec.stderr_path, spec.cwd);

  if (st.export_all) spec.env = in.env;
  for (const auto& [var, value] : st.vars) {
    if (value) {
      spec.env[var] = *value;
    } else if (auto it = in.env.find(var); it != in.env.end()) {
      spec.env[var] = it->second;
    }
  }
  auto env_or = [&](const char* var) {
    auto it = in.env.find(var);
    return it == in.env.end() ? std::string() : it->second;
  };
  spec.env["SGE_O_HOME"] = in.home;
  spec.env["SGE_O_PATH"] = env_or("PATH");
  spec.env["SGE_O_WORKDIR"] = in.cwd;
  spec.env["SGE_O_HOST"] = in.host;
  spec.env["SGE_O_LOGNAME"] = in.user;
  spec.env["SGE_O_SHELL"] = env_or("SHELL");
  if (st.pbs) spec.env["PBS_O_WORKDIR"] = in.cwd;

  spec.request.cores = st.cores;
  if (st.mem_total_mb) {
    spec.request.mem_mb = *st.mem_total_mb;
  } else {
    int64_t per_slot = 0;
    for (const auto& [name, mb] : st.mem_per_slot_mb) per_slot = std::max(per_slot, mb);
    if (per_slot > kMaxMemMb / st.cores) {  // a size near the int64 limit x slots overflowed
      return Error(Code::kInvalidArgument, "memory request of " + std::to_string(per_slot) +
                                               " MiB per slot x " + std::to_string(st.cores) +
                                               " slots is too large");
    }
    spec.request.mem_mb = per_slot * st.cores;
  }
  if (spec.request.mem_mb > kMaxMemMb) {
    return Error(Code::kInvalidArgument,
                 "memory request of " + std::to_string(spec.request.mem_mb) + " MiB is too large");
  }

  if (cl->binary) {
    spec.binary = true;
    spec.args.push_back(*cl->script);
    spec.args.insert(spec.args.end(), cl->script_args.begin(), cl->script_args.end());
  } else {
    spec.script = in.script_text;
    spec.args = cl->script_args;
  }
  out.spec = std::move(spec);
  out.terse = st.terse;
  out.sync = st.sync;
  out.hold_names = std::move(st.hold_names);
  out.sweep_file = std::move(st.sweep_file);
  if (!out.sweep_file.empty() && out.spec.array) {
    return Error(Code::kInvalidArgument, "give either -t or --sweep: a sweep makes one task per point");
  }
  return out;
}

}  // namespace corral
