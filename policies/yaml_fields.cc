// Strict YAML value readers for the policy loader. yaml-cpp may throw while converting a
// value; the callers (policy_config.cc) catch at the top, these readers check kinds first.
#include "policies/yaml_fields.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>

#include "common/units.h"

namespace corral::policy_yaml {

Status Reader::Fail(const YAML::Node& at, const std::string& path, const std::string& what) const {
  const YAML::Mark m = at.Mark();
  std::string where = origin_;
  if (m.line >= 0) {
    where += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  }
  return Error(Code::kInvalidArgument, where + ": " + (path.empty() ? "" : path + ": ") + what);
}

Status Reader::FailFile(const std::string& what) const {
  return Error(Code::kInvalidArgument, origin_ + ": " + what);
}

Status Reader::Scalar(const YAML::Node& v, const std::string& path, std::string& out) const {
  if (!v.IsScalar()) return Fail(v, path, "must be a single value");
  out = v.Scalar();
  return OkStatus();
}

Status Reader::Fields(const YAML::Node& node, const std::string& path,
                      const std::map<std::string, Handler>& handlers) const {
  if (node.IsNull()) return OkStatus();
  if (!node.IsMap()) return Fail(node, path, "must be a mapping of keys");
  std::set<std::string> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) return Fail(kv.first, path, "keys must be names");
    const std::string key = kv.first.Scalar();
    const std::string at = path.empty() ? key : path + "." + key;
    if (!seen.insert(key).second) return Fail(kv.first, at, "key given twice");
    auto it = handlers.find(key);
    if (it == handlers.end()) {
      std::string known;
      for (const auto& [k, _] : handlers) known += (known.empty() ? "" : ", ") + k;
      return Fail(kv.first, at, "unknown key '" + key + "' (known: " + known + ")");
    }
    if (Status s = it->second(kv.second, at); !s.ok()) return s;
  }
  return OkStatus();
}

Status Reader::Entries(const YAML::Node& node, const std::string& path,
                       const EntryHandler& handler) const {
  if (node.IsNull()) return OkStatus();
  if (!node.IsMap()) return Fail(node, path, "must be a mapping of names");
  std::set<std::string> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) return Fail(kv.first, path, "keys must be names");
    const std::string key = kv.first.Scalar();
    const std::string at = path + "." + key;
    if (!seen.insert(key).second) return Fail(kv.first, at, "name given twice");
    if (!ValidName(key)) {
      return Fail(kv.first, at,
                  "'" + key + "' is not a valid name (letters, digits, '_', '.', '-', '@')");
    }
    if (Status s = handler(key, kv.second, at); !s.ok()) return s;
  }
  return OkStatus();
}

Status Reader::Number(const YAML::Node& v, const std::string& path, double& out) const {
  std::string text;
  if (Status s = Scalar(v, path, text); !s.ok()) return s;
  errno = 0;
  char* end = nullptr;
  const double x = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno != 0 || !std::isfinite(x) ||
      x < 0) {
    return Fail(v, path, "'" + text + "' is not a non-negative number");
  }
  out = x;
  return OkStatus();
}

Status Reader::Count(const YAML::Node& v, const std::string& path, int64_t& out,
                     int64_t min) const {
  std::string text;
  if (Status s = Scalar(v, path, text); !s.ok()) return s;
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || end != text.c_str() + text.size() || errno != 0 || x < min) {
    return Fail(v, path, "'" + text + "' is not an integer >= " + std::to_string(min));
  }
  out = x;
  return OkStatus();
}

Status Reader::Duration(const YAML::Node& v, const std::string& path, int64_t& seconds,
                        bool allow_zero) const {
  std::string text;
  if (Status s = Scalar(v, path, text); !s.ok()) return s;
  Result<int64_t> secs = ParseDurationSeconds(text);
  if (!secs) return Fail(v, path, secs.error().message());
  if (*secs == 0 && !allow_zero) return Fail(v, path, "must be longer than 0");
  seconds = *secs;
  return OkStatus();
}

Status Reader::SizeMb(const YAML::Node& v, const std::string& path, int64_t& mb) const {
  std::string text;
  if (Status s = Scalar(v, path, text); !s.ok()) return s;
  Result<int64_t> size = ParseSizeMb(text);
  if (!size) return Fail(v, path, size.error().message());
  mb = *size;
  return OkStatus();
}

Status Reader::Bool(const YAML::Node& v, const std::string& path, bool& out) const {
  std::string text;
  if (Status s = Scalar(v, path, text); !s.ok()) return s;
  if (text == "true" || text == "yes") {
    out = true;
  } else if (text == "false" || text == "no") {
    out = false;
  } else {
    return Fail(v, path, "'" + text + "' is not true or false");
  }
  return OkStatus();
}

Status Reader::Text(const YAML::Node& v, const std::string& path, std::string& out) const {
  return Scalar(v, path, out);
}

Status Reader::Names(const YAML::Node& v, const std::string& path,
                     std::vector<std::string>& out) const {
  if (!v.IsSequence()) return Fail(v, path, "must be a list of names, e.g. [a, b]");
  out.clear();
  for (const auto& e : v) {
    std::string name;
    if (Status s = Scalar(e, path, name); !s.ok()) return s;
    if (!ValidName(name)) return Fail(e, path, "'" + name + "' is not a valid name");
    out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return OkStatus();
}

Reader::Handler Reader::NumberTo(double& out) const {
  return [this, &out](const YAML::Node& v, const std::string& p) { return Number(v, p, out); };
}

Reader::Handler Reader::CountTo(int64_t& out, int64_t min) const {
  return [this, &out, min](const YAML::Node& v, const std::string& p) {
    return Count(v, p, out, min);
  };
}

Reader::Handler Reader::OptionalCountTo(std::optional<int64_t>& out, int64_t min) const {
  return [this, &out, min](const YAML::Node& v, const std::string& p) {
    int64_t n = 0;
    Status s = Count(v, p, n, min);
    if (s.ok()) out = n;
    return s;
  };
}

Reader::Handler Reader::DurationTo(int64_t& seconds, bool allow_zero) const {
  return [this, &seconds, allow_zero](const YAML::Node& v, const std::string& p) {
    return Duration(v, p, seconds, allow_zero);
  };
}

Reader::Handler Reader::BoolTo(bool& out) const {
  return [this, &out](const YAML::Node& v, const std::string& p) { return Bool(v, p, out); };
}

Reader::Handler Reader::TextTo(std::string& out) const {
  return [this, &out](const YAML::Node& v, const std::string& p) { return Text(v, p, out); };
}

Reader::Handler Reader::NamesTo(std::vector<std::string>& out) const {
  return [this, &out](const YAML::Node& v, const std::string& p) { return Names(v, p, out); };
}

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-' ||
           ch == '@';
  });
}

}  // namespace corral::policy_yaml
