// Small builders for test records: a valid job spec, a node, a caller.
#pragma once

#include <string>

#include "common/types.h"
#include "scheduler/core.h"

namespace corral::testing {

inline JobSpec Spec(int cores = 1, int64_t mem_mb = 0, std::string name = "job") {
  JobSpec s;
  s.name = std::move(name);
  s.script = "#!/bin/sh\necho hello\n";
  s.cwd = "/tmp";
  s.request = {cores, mem_mb};
  return s;
}

inline Caller User(uint32_t uid = 1000, std::string name = "alice") {
  Caller c;
  c.uid = uid;
  c.gid = uid;
  c.user = std::move(name);
  return c;
}

inline Node MakeNode(std::string name, int cores, int64_t mem_mb, TimeMs seen = 0) {
  Node n;
  n.name = std::move(name);
  n.total = {cores, mem_mb};
  n.last_seen = seen;
  return n;
}

}  // namespace corral::testing
