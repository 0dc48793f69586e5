// Strict readers of YAML values for the policy loader (policy_config.cc only; yaml-cpp is a
// private dependency of corral_policies, so no public header includes this). Every error
// is a Status "ORIGIN:LINE:COLUMN: KEY.PATH: what is wrong"; nothing here throws.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace corral::policy_yaml {

class Reader {
 public:
  explicit Reader(std::string origin) : origin_(std::move(origin)) {}

  // Reads one value at `path` (e.g. "fairshare.tree.physics").
  using Handler = std::function<Status(const YAML::Node& value, const std::string& path)>;
  // Reads one entry of an open mapping whose keys the admin chooses (group, user, queue).
  using EntryHandler = std::function<Status(const std::string& key, const YAML::Node& value,
                                            const std::string& path)>;

  // `node` must be a mapping (or null: nothing to do). Each key is handed to its handler;
  // a key with no handler is an error listing the known ones.
  Status Fields(const YAML::Node& node, const std::string& path,
                const std::map<std::string, Handler>& handlers) const;
  // `node` must be a mapping (or null); each key must be a valid name (ValidName).
  Status Entries(const YAML::Node& node, const std::string& path,
                 const EntryHandler& handler) const;

  Status Number(const YAML::Node& v, const std::string& path, double& out) const;  // >= 0
  Status Count(const YAML::Node& v, const std::string& path, int64_t& out,
               int64_t min) const;  // integer >= min
  // Seconds from "7d", "1:30:00", "3600", "90s"; >= 0, and > 0 unless allow_zero.
  Status Duration(const YAML::Node& v, const std::string& path, int64_t& seconds,
                  bool allow_zero) const;
  Status SizeMb(const YAML::Node& v, const std::string& path, int64_t& mb) const;  // "4G"
  Status Bool(const YAML::Node& v, const std::string& path, bool& out) const;
  Status Text(const YAML::Node& v, const std::string& path, std::string& out) const;
  // A list of valid names, sorted and without duplicates.
  Status Names(const YAML::Node& v, const std::string& path, std::vector<std::string>& out) const;

  // Handlers that read one value into `out` (which must outlive the handler).
  Handler NumberTo(double& out) const;
  Handler CountTo(int64_t& out, int64_t min) const;
  Handler OptionalCountTo(std::optional<int64_t>& out, int64_t min) const;
  Handler DurationTo(int64_t& seconds, bool allow_zero) const;
  Handler BoolTo(bool& out) const;
  Handler TextTo(std::string& out) const;
  Handler NamesTo(std::vector<std::string>& out) const;

  // InvalidArgument "ORIGIN:LINE:COLUMN: PATH: what" at `at` (origin alone if no mark).
  Status Fail(const YAML::Node& at, const std::string& path, const std::string& what) const;
  // InvalidArgument "ORIGIN: what" (for whole-file checks).
  Status FailFile(const std::string& what) const;
  const std::string& origin() const { return origin_; }

 private:
  Status Scalar(const YAML::Node& v, const std::string& path, std::string& out) const;
  std::string origin_;
};

// A user, group or queue name: 1 to 64 of letters, digits, '_', '.', '-', '@'.
bool ValidName(const std::string& name);

}  // namespace corral::policy_yaml
