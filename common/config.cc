// YAML -> config structs over yaml-cpp. yaml-cpp throws; every exception is caught here
// and turned into a Status with file:line.
#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "common/curve.h"
#include "common/units.h"

namespace corral {
namespace {

std::string Where(const std::string& origin, const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  if (m.line < 0) return origin;
  return origin + ":" + std::to_string(m.line + 1);
}

using Setter = std::function<Status(const YAML::Node& value, const std::string& where)>;

// Applies `setters` to each key of the top-level mapping; unknown keys are refused.
Status ApplyKeys(const std::string& yaml, const std::string& origin,
                 const std::map<std::string, Setter>& setters) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return Error(Code::kInvalidArgument, origin + ":" + std::to_string(e.mark.line + 1) +
                                             ": not valid YAML: " + e.msg);
  }
  if (root.IsNull()) return OkStatus();  // an empty file: all defaults
  if (!root.IsMap()) return Error(Code::kInvalidArgument, origin + ": must be a mapping of keys");
  for (const auto& kv : root) {
    std::string key;
    try {
      key = kv.first.as<std::string>();
    } catch (const YAML::Exception&) {
      return Error(Code::kInvalidArgument, Where(origin, kv.first) + ": keys must be strings");
    }
    auto it = setters.find(key);
    if (it == setters.end()) {
      std::string known;
      for (const auto& [k, _] : setters) known += (known.empty() ? "" : ", ") + k;
      return Error(Code::kInvalidArgument,
                   Where(origin, kv.first) + ": unknown key '" + key + "' (known: " + known + ")");
    }
    const std::string where = Where(origin, kv.second) + ": " + key;
    try {
      if (Status s = it->second(kv.second, where); !s.ok()) return s;
    } catch (const YAML::Exception&) {
      return Error(Code::kInvalidArgument, where + ": value has the wrong type");
    }
  }
  return OkStatus();
}

Status Scalar(const YAML::Node& v, const std::string& where, std::string& out) {
  if (!v.IsScalar()) return Error(Code::kInvalidArgument, where + ": must be a single value");
  out = v.as<std::string>();
  return OkStatus();
}

Setter StringKey(std::string& out) {
  return [&out](const YAML::Node& v, const std::string& where) { return Scalar(v, where, out); };
}

// A duration in milliseconds: a number of seconds (may be fractional) or "30s", "1:00".
Setter DurationMsKey(int64_t& out) {
  return [&out](const YAML::Node& v, const std::string& where) -> Status {
    std::string text;
    if (Status s = Scalar(v, where, text); !s.ok()) return s;
    Result<int64_t> ms = ParseDurationMs(text);
    if (!ms) return Error(Code::kInvalidArgument, where + ": " + ms.error().message());
    if (*ms <= 0) return Error(Code::kInvalidArgument, where + ": must be positive");
    out = *ms;
    return OkStatus();
  };
}

template <typename Int>
Status PositiveInt(const YAML::Node& v, const std::string& where, Int& out) {
  std::string text;
  if (Status s = Scalar(v, where, text); !s.ok()) return s;
  try {
    size_t used = 0;
    long long x = std::stoll(text, &used);
    if (used != text.size() || x <= 0) throw std::invalid_argument("");
    out = static_cast<Int>(x);
    return OkStatus();
  } catch (const std::exception&) {
    return Error(Code::kInvalidArgument, where + ": '" + text + "' is not a positive integer");
  }
}

// A value read by `parse` (a size, a duration), its error message prefixed by the key.
Setter ParsedKey(Result<int64_t> (*parse)(std::string_view), int64_t& out) {
  return [parse, &out](const YAML::Node& v, const std::string& where) -> Status {
    std::string text;
    if (Status s = Scalar(v, where, text); !s.ok()) return s;
    Result<int64_t> value = parse(text);
    if (!value) return Error(Code::kInvalidArgument, where + ": " + value.error().message());
    out = *value;
    return OkStatus();
  };
}

// A list of feature names.
Setter NameListKey(std::vector<std::string>& out) {
  return [&out](const YAML::Node& v, const std::string& where) -> Status {
    if (!v.IsSequence()) {
      return Error(Code::kInvalidArgument, where + ": must be a list of names, e.g. [avx512, bigmem]");
    }
    out.clear();
    for (const auto& e : v) {
      std::string name;
      if (Status s = Scalar(e, where, name); !s.ok()) return s;
      if (!ValidResourceName(name)) {
        return Error(Code::kInvalidArgument, where + ": '" + name + "' is not a valid name");
      }
      if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    return OkStatus();
  };
}

// A list of ZeroMQ endpoints: tcp:// ones, and ipc:// ones when `ipc` is allowed.
Setter EndpointListKey(std::vector<std::string>& out, bool ipc) {
  return [&out, ipc](const YAML::Node& v, const std::string& where) -> Status {
    if (!v.IsSequence()) return Error(Code::kInvalidArgument, where + ": must be a list");
    out.clear();
    for (const auto& e : v) {
      std::string s;
      if (Status st = Scalar(e, where, s); !st.ok()) return st;
      if (!s.starts_with("tcp://") && !(ipc && s.starts_with("ipc://"))) {
        return Error(Code::kInvalidArgument, where + ": '" + s + "' must start with tcp://" +
                                                 (ipc ? " or ipc://" : ""));
      }
      out.push_back(s);
    }
    return OkStatus();
  };
}

// A list of user names (admins, operators).
Setter UserListKey(std::set<std::string>& out) {
  return [&out](const YAML::Node& v, const std::string& where) -> Status {
    if (!v.IsSequence()) {
      return Error(Code::kInvalidArgument, where + ": must be a list of user names, e.g. [alice, bob]");
    }
    out.clear();
    for (const auto& e : v) {
      std::string name;
      if (Status s = Scalar(e, where, name); !s.ok()) return s;
      if (name.empty() || name.size() > 256 ||
          name.find_first_of(" \t\n\r:/,") != std::string::npos) {
        return Error(Code::kInvalidArgument, where + ": '" + name + "' is not a user name");
      }
      out.insert(name);
    }
    return OkStatus();
  };
}

// true or false.
Setter BoolKey(bool& out) {
  return [&out](const YAML::Node& v, const std::string& where) -> Status {
    std::string text;
    if (Status s = Scalar(v, where, text); !s.ok()) return s;
    if (text == "true" || text == "yes") {
      out = true;
    } else if (text == "false" || text == "no") {
      out = false;
    } else {
      return Error(Code::kInvalidArgument, where + ": '" + text + "' must be true or false");
    }
    return OkStatus();
  };
}

// A mapping of consumable names to non-negative counts.
Setter CountsKey(std::map<std::string, int64_t>& out) {
  return [&out](const YAML::Node& v, const std::string& where) -> Status {
    if (!v.IsMap()) {
      return Error(Code::kInvalidArgument, where + ": must be a mapping of names to counts, e.g. {matlab: 10}");
    }
    out.clear();
    for (const auto& kv : v) {
      std::string name, text;
      if (Status s = Scalar(kv.first, where, name); !s.ok()) return s;
      const std::string at = where + "." + name;
      if (!ValidResourceName(name)) {
        return Error(Code::kInvalidArgument, at + ": '" + name + "' is not a valid consumable name");
      }
      if (Status s = Scalar(kv.second, at, text); !s.ok()) return s;
      try {
        size_t used = 0;
        long long x = std::stoll(text, &used);
        if (used != text.size() || x < 0) throw std::invalid_argument("");
        out[name] = x;
      } catch (const std::exception&) {
        return Error(Code::kInvalidArgument, at + ": '" + text + "' is not a non-negative integer");
      }
    }
    return OkStatus();
  };
}

std::string ReadFileOrEmpty(const std::string& path, bool& ok) {
  std::ifstream in(path);
  ok = static_cast<bool>(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <typename Config, typename Parse>
Result<Config> LoadFile(const std::string& path, Parse parse) {
  bool ok = false;
  std::string text = ReadFileOrEmpty(path, ok);
  if (!ok) return Error(Code::kNotFound, path + ": cannot read configuration file");
  return parse(text, path);
}

}  // namespace

Result<SchedulerConfig> ParseSchedulerConfig(const std::string& yaml, const std::string& origin) {
  SchedulerConfig c;
  std::map<std::string, Setter> keys = {
      {"endpoints", EndpointListKey(c.endpoints, true)},
      {"state_dir", StringKey(c.state_dir)},
      {"heartbeat_interval", DurationMsKey(c.heartbeat_interval_ms)},
      {"node_timeout", DurationMsKey(c.node_timeout_ms)},
      {"max_batch",
       [&c](const YAML::Node& v, const std::string& where) {
         return PositiveInt(v, where, c.max_batch);
       }},
      {"max_attempts",
       [&c](const YAML::Node& v, const std::string& where) {
         return PositiveInt(v, where, c.max_attempts);
       }},
      {"consumables", CountsKey(c.consumables)},
      {"default_h_rt", ParsedKey(ParseDurationSeconds, c.default_h_rt_s)},
      {"default_mem_per_core", ParsedKey(ParseSizeMb, c.default_mem_per_core_mb)},
      {"oversubscribe",
       [&c](const YAML::Node& v, const std::string& where) {
         return PositiveInt(v, where, c.oversubscribe);
       }},
      {"policy", StringKey(c.policy)},
      {"admins", UserListKey(c.admins)},
      {"operators", UserListKey(c.operators)},
      {"private_jobs", BoolKey(c.private_jobs)},
      {"event_endpoints", EndpointListKey(c.event_endpoints, true)},
      {"event_retention", DurationMsKey(c.event_retention_ms)},
      // Who is who (docs/security.md).
      {"node_endpoints", EndpointListKey(c.node_endpoints, false)},
      {"curve_secret_key", StringKey(c.curve_secret_key)},
      {"node_keys_dir", StringKey(c.node_keys_dir)},
      {"node_keys",
       [&c](const YAML::Node& v, const std::string& where) -> Status {
         if (!v.IsMap()) {
           return Error(Code::kInvalidArgument, where + ": must be a mapping of node names to "
                                                        "public keys, e.g. {node1: \"<40 chars>\"}");
         }
         c.node_keys.clear();
         for (const auto& kv : v) {
           std::string name, key;
           if (Status st = Scalar(kv.first, where, name); !st.ok()) return st;
           if (Status st = Scalar(kv.second, where + "." + name, key); !st.ok()) return st;
           if (!ValidKeyName(name)) {
             return Error(Code::kInvalidArgument, where + ": '" + name + "' is not a node name");
           }
           if (!ValidZ85Key(key)) {
             return Error(Code::kInvalidArgument,
                          where + "." + name + ": not a CURVE public key (40 Z85 characters)");
           }
           c.node_keys[name] = key;
         }
         return OkStatus();
       }},
      {"tcp_client_auth",
       [&c](const YAML::Node& v, const std::string& where) -> Status {
         if (!v.IsSequence()) {
           return Error(Code::kInvalidArgument, where + ": must be a list of munge, anonymous");
         }
         c.tcp_client_auth.clear();
         for (const auto& e : v) {
           std::string m;
           if (Status st = Scalar(e, where, m); !st.ok()) return st;
           if (m != "munge" && m != "anonymous") {
             return Error(Code::kInvalidArgument,
                          where + ": '" + m + "' is not a method (munge, anonymous)");
           }
           if (std::find(c.tcp_client_auth.begin(), c.tcp_client_auth.end(), m) ==
               c.tcp_client_auth.end()) {
             c.tcp_client_auth.push_back(m);
           }
         }
         return OkStatus();
       }},
      {"munge_socket", StringKey(c.munge_socket)},
  };
  if (Status s = ApplyKeys(yaml, origin, keys); !s.ok()) return std::unexpected(s);
  if (c.state_dir.empty()) return Error(Code::kInvalidArgument, origin + ": state_dir is required");
  if (c.endpoints.empty()) return Error(Code::kInvalidArgument, origin + ": endpoints is required");
  if (!c.curve_secret_key.empty() && c.node_endpoints.empty()) {
    return Error(Code::kInvalidArgument,
                 origin + ": curve_secret_key needs node_endpoints (where execds connect)");
  }
  if (c.curve_secret_key.empty() && (!c.node_keys.empty() || !c.node_keys_dir.empty())) {
    return Error(Code::kInvalidArgument,
                 origin + ": node_keys and node_keys_dir need curve_secret_key");
  }
  if (c.node_timeout_ms <= c.heartbeat_interval_ms) {
    return Error(Code::kInvalidArgument,
                 origin + ": node_timeout must be longer than heartbeat_interval");
  }
  return c;
}

Result<ExecdConfig> ParseExecdConfig(const std::string& yaml, const std::string& origin) {
  ExecdConfig c;
  std::map<std::string, Setter> keys = {
      {"scheduler", StringKey(c.scheduler)},
      {"node", StringKey(c.node)},
      {"spool_dir", StringKey(c.spool_dir)},
      {"scheduler_key", StringKey(c.scheduler_key)},
      {"secret_key", StringKey(c.secret_key)},
      {"kill_grace", DurationMsKey(c.kill_grace_ms)},
      {"features", NameListKey(c.features)},
      {"consumables", CountsKey(c.consumables)},
      {"allow_root_jobs",
       [&c](const YAML::Node& v, const std::string& where) -> Status {
         if (!v.IsScalar() || !YAML::convert<bool>::decode(v, c.allow_root_jobs)) {
           return Error(Code::kInvalidArgument, where + ": must be true or false");
         }
         return OkStatus();
       }},
      {"cores",
       [&c](const YAML::Node& v, const std::string& where) {
         int n = 0;
         Status s = PositiveInt(v, where, n);
         if (s.ok()) c.cores = n;
         return s;
       }},
      {"gpus",
       [&c](const YAML::Node& v, const std::string& where) -> Status {
         if (!v.IsSequence()) {
           return Error(Code::kInvalidArgument, where + ": must be a list of GPU indices, e.g. [0, 1]");
         }
         std::vector<int> ids;
         for (const auto& e : v) {
           int id = -1;
           std::string text;
           if (Status s = Scalar(e, where, text); !s.ok()) return s;
           try {
             size_t used = 0;
             id = std::stoi(text, &used);
             if (used != text.size() || id < 0) throw std::invalid_argument("");
           } catch (const std::exception&) {
             return Error(Code::kInvalidArgument, where + ": '" + text + "' is not a GPU index");
           }
           if (std::find(ids.begin(), ids.end(), id) != ids.end()) {
             return Error(Code::kInvalidArgument, where + ": GPU " + text + " is listed twice");
           }
           ids.push_back(id);
         }
         c.gpus = ids;
         return OkStatus();
       }},
      {"memory",
       [&c](const YAML::Node& v, const std::string& where) -> Status {
         std::string text;
         if (Status s = Scalar(v, where, text); !s.ok()) return s;
         Result<int64_t> mb = ParseSizeMb(text);
         if (!mb) return Error(Code::kInvalidArgument, where + ": " + mb.error().message());
         c.mem_mb = *mb;
         return OkStatus();
       }},
  };
  if (Status s = ApplyKeys(yaml, origin, keys); !s.ok()) return std::unexpected(s);
  return c;
}

bool ValidResourceName(const std::string& name) {
  static const std::set<std::string> kBuiltIn = {
      "h_rt", "s_rt", "h_vmem", "s_vmem", "mem", "mem_free", "h_rss", "vf", "slots", "cpus",
      "cpu", "gpu", "gpus", "arch", "feature", "features", "hostname", "q", "queue"};
  if (name.empty() || name.size() > 64 || !std::isalpha(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  for (char ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.' && ch != '-') {
      return false;
    }
  }
  return !kBuiltIn.count(name);
}

Result<SchedulerConfig> LoadSchedulerConfig(const std::string& path) {
  return LoadFile<SchedulerConfig>(path, ParseSchedulerConfig);
}

Result<ExecdConfig> LoadExecdConfig(const std::string& path) {
  return LoadFile<ExecdConfig>(path, ParseExecdConfig);
}

}  // namespace corral
