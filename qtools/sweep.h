// Parameter sweeps (qsub --sweep): the sweep file (grid, zip, csv, files) expanded into
// parameter points, and a point's two forms for a task ($CORRAL_PARAMS JSON, PARAM_*
// variables). Pure but for reading the CSV file and globbing the `files:` patterns; no
// clock, no sockets. The format is described in docs/sweeps.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace corral {

// One point of a sweep: (name, value) pairs in the order the names appear in the sweep
// file. Values are the text as written in the file ("0.50" stays "0.50").
using ParamPoint = std::vector<std::pair<std::string, std::string>>;

// A sweep may not have more points than this (one array task each).
inline constexpr int64_t kMaxSweepPoints = 1'000'000;

// A parsed sweep: the product of its axes, the first axis varying slowest. An axis is
// one grid or files name (one value per row), the whole zip, or the whole CSV (several
// names per row). Holding the axes rather than the points lets a caller keep a
// 1,000,000-point sweep as a few lists and compute task i's point when it starts.
struct Sweep {
  struct Axis {
    std::vector<std::string> names;
    std::vector<std::vector<std::string>> rows;  // each row: one value per name
  };
  std::vector<Axis> axes;

  // Number of points: the product of the axes' row counts (at most kMaxSweepPoints).
  int64_t size() const;
  // Every parameter name, in point order.
  std::vector<std::string> names() const;
  // The point at `index`, 0 <= index < size(); task k of the array gets Point(k - 1).
  ParamPoint Point(int64_t index) const;
};

// Parses the sweep file `yaml_text`. `origin` names it in messages ("sweep.yaml");
// relative `csv:` and `files:` paths are resolved against `base_dir` (usually the
// directory of the sweep file). Errors are InvalidArgument (NotFound for an unreadable
// CSV) with a message "file:line: key: what is wrong".
Result<Sweep> ParseSweep(const std::string& yaml_text, const std::string& origin,
                         const std::string& base_dir);

// ParseSweep, then every point in order.
Result<std::vector<ParamPoint>> ExpandSweep(const std::string& yaml_text, const std::string& origin,
                                            const std::string& base_dir);

// True if `text` is a number in JSON's grammar (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?)
// that a double holds without overflow or underflow. "0.50", "-2" and "1e3" are; "007",
// ".5", "+1", "0x10", "1e999" are not.
bool IsJsonNumber(std::string_view text);

// `text` as a JSON string literal with quotes (invalid UTF-8 replaced by U+FFFD).
std::string JsonQuote(std::string_view text);

// The point as one JSON object in point order, e.g. {"filter":"median","sigma":0.50}:
// values for which IsJsonNumber holds are written as numbers (as written), the rest as
// strings. This is the $CORRAL_PARAMS file's content.
std::string ParamsJson(const ParamPoint& point);

// The point as environment variables: {"PARAM_FILTER": "median", "PARAM_SIGMA": "0.50"}
// (names upper-cased; ParseSweep guarantees they stay unique).
std::map<std::string, std::string> ParamsEnv(const ParamPoint& point);

}  // namespace corral
