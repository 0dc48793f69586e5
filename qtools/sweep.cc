// The sweep file parser over yaml-cpp (which throws: every exception is caught here and
// turned into a Status with file:line), a strict RFC 4180 CSV reader and glob(3) for
// `files:`. Messages name file, line and key, as common/config.cc does.
#include "qtools/sweep.h"

#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace corral {
namespace {

namespace fs = std::filesystem;

Error Invalid(const std::string& message) { return Error(Code::kInvalidArgument, message); }

std::string Where(const std::string& origin, const YAML::Node& node) {
  const YAML::Mark m = node.Mark();
  if (m.line < 0) return origin;
  return origin + ":" + std::to_string(m.line + 1);
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool ValidName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return c == '_' || std::isalnum(static_cast<unsigned char>(c));
  });
}

// Every name across parts, upper-cased (PARAM_<NAME> must be unique) -> where it was defined.
using NameTable = std::map<std::string, std::string>;

Status AddName(NameTable& seen, const std::string& name, const std::string& where) {
  if (!ValidName(name)) {
    return Invalid(where + ": '" + name +
                   "' is not a valid parameter name (letters, digits and _, not starting "
                   "with a digit: it becomes the variable PARAM_" +
                   Upper(name) + ")");
  }
  auto [it, added] = seen.emplace(Upper(name), where);
  if (!added) {
    return Invalid(where + ": parameter '" + name + "' is already defined at " + it->second +
                   " (names must be unique, ignoring case, across grid, zip, csv and files)");
  }
  return OkStatus();
}

// A non-empty list of scalar values, as written in the file.
// The list `v` of the key `key_node`, named `key` ("grid.sigma") in messages.
Result<std::vector<std::string>> ValueList(const YAML::Node& v, const std::string& origin,
                                           const YAML::Node& key_node, const std::string& key) {
  const std::string where = Where(origin, key_node) + ": " + key;
  if (!v.IsSequence() || v.size() == 0) {
    return Invalid(where + ": must be a non-empty list of values, e.g. [0.5, 1, 2]");
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const YAML::Node e = v[i];
    const std::string item = key + "[" + std::to_string(i) + "]";
    if (e.IsNull()) {  // yaml-cpp marks an empty item at the next token: name the list
      return Invalid(Where(origin, key_node) + ": " + item +
                     ": empty value (write '' for an empty string)");
    }
    const std::string at = Where(origin, e) + ": " + item;
    if (!e.IsScalar()) return Invalid(at + ": must be a single value, not a list or mapping");
    std::string s = e.Scalar();
    if (s.find('\0') != std::string::npos) return Invalid(at + ": contains a NUL character");
    out.push_back(std::move(s));
  }
  return out;
}

// Appends `axis`, refusing a sweep of more than kMaxSweepPoints points.
Status AddAxis(Sweep& sweep, Sweep::Axis axis, const std::string& where) {
  int64_t total = 1;
  std::string factors;
  sweep.axes.push_back(std::move(axis));
  for (const Sweep::Axis& a : sweep.axes) {
    const int64_t n = static_cast<int64_t>(a.rows.size());
    factors += (factors.empty() ? "" : " x ") + std::to_string(n);
    total = (n > kMaxSweepPoints || total > kMaxSweepPoints / n) ? kMaxSweepPoints + 1 : total * n;
  }
  if (total > kMaxSweepPoints) {
    return Invalid(where + ": the sweep would have more than " + std::to_string(kMaxSweepPoints) +
                   " points (" + factors + "); split it into several sweeps");
  }
  return OkStatus();
}

struct CsvRecord {
  int line = 0;  // 1-based line where the record starts
  std::vector<std::string> fields;
};

// RFC 4180: fields separated by commas, records by LF or CRLF; a quoted field may hold
// commas, line breaks and doubled quotes. A UTF-8 BOM is skipped; blank lines are ignored.
Result<std::vector<CsvRecord>> ParseCsv(std::string_view text, const std::string& path) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  std::vector<CsvRecord> records;
  size_t i = 0;
  int line = 1;
  while (i < text.size()) {
    CsvRecord rec{line, {}};
    bool any_quoted = false;
    while (true) {  // one field per iteration
      std::string field;
      if (i < text.size() && text[i] == '"') {
        any_quoted = true;
        const int start_line = line;
        ++i;
        while (true) {
          if (i >= text.size()) {
            return Invalid(path + ":" + std::to_string(start_line) + ": quoted field never ends");
          }
          if (text[i] == '"') {
            if (i + 1 < text.size() && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (text[i] == '\n') ++line;
          field += text[i++];
        }
        if (i < text.size() && text[i] != ',' && text[i] != '\n' &&
            !(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
          return Invalid(path + ":" + std::to_string(line) + ": text after a closing quote");
        }
      } else {
        while (i < text.size() && text[i] != ',' && text[i] != '\n' &&
               !(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
          if (text[i] == '"') {
            return Invalid(path + ":" + std::to_string(line) +
                           ": a quote inside an unquoted field (quote the whole field and "
                           "double the quote: \"a \"\"b\"\"\")");
          }
          field += text[i++];
        }
      }
      if (field.find('\0') != std::string::npos) {
        return Invalid(path + ":" + std::to_string(line) + ": contains a NUL character");
      }
      rec.fields.push_back(std::move(field));
      if (i < text.size() && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < text.size()) i += text[i] == '\r' ? 2 : 1;  // the record's line break
      ++line;
      break;
    }
    if (rec.fields.size() == 1 && rec.fields[0].empty() && !any_quoted) continue;  // blank line
    if (static_cast<int64_t>(records.size()) > kMaxSweepPoints) {
      return Invalid(path + ":" + std::to_string(rec.line) + ": more than " +
                     std::to_string(kMaxSweepPoints) + " rows");
    }
    records.push_back(std::move(rec));
  }
  return records;
}

// base_dir joined with `path` unless it is absolute, normalised.
fs::path Resolve(const std::string& base_dir, const std::string& path) {
  fs::path p(path);
  if (p.is_relative()) p = fs::path(base_dir.empty() ? "." : base_dir) / p;
  return p.lexically_normal();
}

Status ParseCsvPart(const YAML::Node& key, const YAML::Node& v, const std::string& origin,
                    const std::string& base_dir, NameTable& names, Sweep& sweep) {
  const std::string where = Where(origin, v) + ": csv";
  if (!v.IsScalar() || v.Scalar().empty()) {
    return Invalid(where + ": must be the path of a CSV file with a header row of names");
  }
  const std::string path = Resolve(base_dir, v.Scalar()).string();
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  if (in) ss << in.rdbuf();
  if (!in || in.bad()) return Error(Code::kNotFound, where + ": cannot read '" + path + "'");
  Result<std::vector<CsvRecord>> records = ParseCsv(ss.str(), path);
  if (!records) return records.error();
  if (records->empty()) return Invalid(path + ": empty (expected a header row of names)");
  const CsvRecord& header = records->front();
  if (records->size() == 1) {
    return Invalid(path + ":" + std::to_string(header.line) + ": a header but no rows");
  }
  Sweep::Axis axis;
  for (const std::string& name : header.fields) {
    const std::string at = path + ":" + std::to_string(header.line) + ": column '" + name + "'";
    if (Status s = AddName(names, name, at); !s.ok()) return s;
    axis.names.push_back(name);
  }
  for (size_t r = 1; r < records->size(); ++r) {
    CsvRecord& rec = (*records)[r];
    if (rec.fields.size() != header.fields.size()) {
      return Invalid(path + ":" + std::to_string(rec.line) + ": row has " +
                     std::to_string(rec.fields.size()) + " fields, the header has " +
                     std::to_string(header.fields.size()));
    }
    axis.rows.push_back(std::move(rec.fields));
  }
  return AddAxis(sweep, std::move(axis), Where(origin, key) + ": csv");
}

// The files matching `pattern` (relative to base_dir), sorted bytewise, as absolute paths.
Result<std::vector<std::string>> GlobFiles(const std::string& pattern, const std::string& base_dir,
                                           const std::string& where) {
  std::error_code ec;
  const fs::path base = fs::absolute(base_dir.empty() ? "." : base_dir, ec).lexically_normal();
  if (ec) return Invalid(where + ": cannot resolve directory '" + base_dir + "'");
  std::string full;
  if (fs::path(pattern).is_absolute()) {
    full = pattern;
  } else {
    for (char c : base.string()) {  // the base directory is literal, not a pattern
      if (c == '*' || c == '?' || c == '[' || c == '\\') full += '\\';
      full += c;
    }
    full += "/" + pattern;
  }
  glob_t g{};
  const int rc = glob(full.c_str(), 0, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) {
      out.push_back(fs::path(g.gl_pathv[i]).lexically_normal().string());
    }
  }
  globfree(&g);
  if (rc == GLOB_NOMATCH) {
    return Invalid(where + ": '" + pattern + "' matches no file (in " + base.string() + ")");
  }
  if (rc != 0) return Invalid(where + ": cannot search '" + pattern + "' (read error)");
  std::sort(out.begin(), out.end());
  return out;
}

// A non-empty mapping (grid, zip, files), or an error naming `key`.
Status NonEmptyMap(const YAML::Node& v, const std::string& origin, const YAML::Node& key,
                   const std::string& name, const char* example) {
  if (!v.IsMap() || v.size() == 0) {
    return Invalid(Where(origin, key) + ": " + name + ": must be a non-empty mapping, e.g. " +
                   example);
  }
  return OkStatus();
}

Status ParseRoot(const YAML::Node& root, const std::string& origin, const std::string& base_dir,
                 Sweep& sweep) {
  static const char* kKnown = "grid, zip, csv, files";
  if (root.IsNull()) return Invalid(origin + ": empty sweep file (expected " + kKnown + ")");
  if (!root.IsMap()) return Invalid(Where(origin, root) + ": must be a mapping of " + kKnown);
  NameTable names;
  std::set<std::string> parts;
  for (const auto& kv : root) {
    const YAML::Node& key = kv.first;
    const YAML::Node& v = kv.second;
    const std::string part = key.IsScalar() ? key.Scalar() : "";
    if (part != "grid" && part != "zip" && part != "csv" && part != "files") {
      return Invalid(Where(origin, key) + ": unknown key '" + part + "' (known: " + kKnown + ")");
    }
    if (!parts.insert(part).second) {
      return Invalid(Where(origin, key) + ": " + part + ": appears twice");
    }
    if (part == "csv") {
      if (Status s = ParseCsvPart(key, v, origin, base_dir, names, sweep); !s.ok()) return s;
      continue;
    }
    if (Status s = NonEmptyMap(
            v, origin, key, part,
            part == "files" ? "{image: 'images/*.png'}" : "{filter: [gaussian, median]}");
        !s.ok()) {
      return s;
    }
    Sweep::Axis zip;
    std::string first_where;
    for (const auto& entry : v) {
      const std::string name = entry.first.IsScalar() ? entry.first.Scalar() : "";
      const std::string key_path = part + "." + name;
      const std::string where = Where(origin, entry.first) + ": " + key_path;
      if (Status s = AddName(names, name, where); !s.ok()) return s;
      std::vector<std::string> values;
      if (part == "files") {
        if (!entry.second.IsScalar() || entry.second.Scalar().empty()) {
          return Invalid(where + ": must be one glob pattern, e.g. 'images/*.png'");
        }
        Result<std::vector<std::string>> files = GlobFiles(entry.second.Scalar(), base_dir, where);
        if (!files) return files.error();
        values = std::move(*files);
      } else {
        Result<std::vector<std::string>> list =
            ValueList(entry.second, origin, entry.first, key_path);
        if (!list) return list.error();
        values = std::move(*list);
      }
      if (part != "zip") {  // grid and files: one axis per name
        Sweep::Axis axis{{name}, {}};
        for (std::string& value : values) axis.rows.push_back({std::move(value)});
        if (Status s = AddAxis(sweep, std::move(axis), where); !s.ok()) return s;
        continue;
      }
      if (zip.names.empty()) {
        zip.rows.resize(values.size());
        first_where = key_path;
      } else if (values.size() != zip.rows.size()) {
        return Invalid(where + ": has " + std::to_string(values.size()) + " values but " +
                       first_where + " has " + std::to_string(zip.rows.size()) +
                       " (zip lists are taken row by row and must have the same length)");
      }
      zip.names.push_back(name);
      for (size_t r = 0; r < values.size(); ++r) zip.rows[r].push_back(std::move(values[r]));
    }
    if (part == "zip") {
      if (Status s = AddAxis(sweep, std::move(zip), Where(origin, key) + ": zip"); !s.ok()) {
        return s;
      }
    }
  }
  if (sweep.axes.empty()) {
    return Invalid(origin + ": defines no parameters (expected " + kKnown + ")");
  }
  return OkStatus();
}

}  // namespace

int64_t Sweep::size() const {
  if (axes.empty()) return 0;
  int64_t n = 1;
  for (const Axis& a : axes) n *= static_cast<int64_t>(a.rows.size());
  return n;
}

std::vector<std::string> Sweep::names() const {
  std::vector<std::string> out;
  for (const Axis& a : axes) out.insert(out.end(), a.names.begin(), a.names.end());
  return out;
}

ParamPoint Sweep::Point(int64_t index) const {
  std::vector<size_t> row(axes.size());
  for (size_t k = axes.size(); k-- > 0;) {  // the last axis varies fastest
    const int64_t n = static_cast<int64_t>(axes[k].rows.size());
    row[k] = static_cast<size_t>(index % n);
    index /= n;
  }
  ParamPoint point;
  for (size_t k = 0; k < axes.size(); ++k) {
    for (size_t j = 0; j < axes[k].names.size(); ++j) {
      point.emplace_back(axes[k].names[j], axes[k].rows[row[k]][j]);
    }
  }
  return point;
}

Result<Sweep> ParseSweep(const std::string& yaml_text, const std::string& origin,
                         const std::string& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Invalid(origin + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  try {
    Sweep sweep;
    if (Status s = ParseRoot(root, origin, base_dir, sweep); !s.ok()) return std::unexpected(s);
    return sweep;
  } catch (const YAML::Exception& e) {
    return Invalid(origin + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Result<std::vector<ParamPoint>> ExpandSweep(const std::string& yaml_text, const std::string& origin,
                                            const std::string& base_dir) {
  Result<Sweep> sweep = ParseSweep(yaml_text, origin, base_dir);
  if (!sweep) return std::unexpected(sweep.error());
  std::vector<ParamPoint> points;
  const int64_t n = sweep->size();
  points.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) points.push_back(sweep->Point(i));
  return points;
}

bool IsJsonNumber(std::string_view t) {
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    return i > start;
  };
  if (i < t.size() && t[i] == '-') ++i;
  if (i < t.size() && t[i] == '0') {
    ++i;
  } else if (i >= t.size() || t[i] < '1' || t[i] > '9' || !digits()) {
    return false;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digits()) return false;
  }
  if (i != t.size()) return false;
  double value = 0;
  return std::from_chars(t.data(), t.data() + t.size(), value).ec == std::errc();
}

std::string JsonQuote(std::string_view text) {
  return nlohmann::json(std::string(text))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ParamsJson(const ParamPoint& point) {
  std::string out = "{";
  for (const auto& [name, value] : point) {
    if (out.size() > 1) out += ",";
    out += JsonQuote(name) + ":" + (IsJsonNumber(value) ? value : JsonQuote(value));
  }
  return out + "}";
}

std::map<std::string, std::string> ParamsEnv(const ParamPoint& point) {
  std::map<std::string, std::string> env;
  for (const auto& [name, value] : point) env["PARAM_" + Upper(name)] = value;
  return env;
}

}  // namespace corral
