// policy.yaml -> Policy. Each section has a reader that refuses unknown keys; checks that
// span sections (a limit naming an undeclared group, a default_queue that does not exist)
// run after the whole file is read. yaml-cpp exceptions are caught here, at the edge.
#include "policies/policy_config.h"

#include <fstream>
#include <sstream>

#include "policies/yaml_fields.h"

namespace corral {
namespace {

using policy_yaml::Reader;

Status ReadFairShare(const Reader& r, const YAML::Node& node, FairSharePolicy& fs) {
  auto read_group = [&](const std::string& name, const YAML::Node& v, const std::string& path) {
    ShareGroup& g = fs.groups[name];
    auto read_users = [&](const YAML::Node& x, const std::string& p) -> Status {
      if (x.IsSequence()) {  // [alice, bob]: one share each
        std::vector<std::string> names;
        if (Status s = r.Names(x, p, names); !s.ok()) return s;
        for (const std::string& n : names) g.users[n] = 1;
        return OkStatus();
      }
      return r.Entries(x, p,
                       [&](const std::string& user, const YAML::Node& y, const std::string& q) {
                         return r.Number(y, q, g.users[user]);
                       });
    };
    return r.Fields(v, path, {{"shares", r.NumberTo(g.shares)}, {"users", read_users}});
  };
  return r.Fields(node, "fairshare",
                  {
                      {"half_life", r.DurationTo(fs.half_life_s, false)},
                      {"gpu_weight", r.NumberTo(fs.gpu_weight)},
                      {"mem_weight", r.NumberTo(fs.mem_weight)},
                      {"default_shares", r.NumberTo(fs.default_shares)},
                      {"tree", [&](const YAML::Node& v,
                                   const std::string& p) { return r.Entries(v, p, read_group); }},
                  });
}

Status ReadPriority(const Reader& r, const YAML::Node& node, PriorityWeights& w) {
  return r.Fields(node, "priority",
                  {
                      {"fairshare", r.NumberTo(w.fairshare)},
                      {"age", r.NumberTo(w.age)},
                      {"age_cap", r.DurationTo(w.age_cap_s, false)},
                      {"job_size", r.NumberTo(w.job_size)},
                      {"favor_small", r.BoolTo(w.favor_small)},
                      {"user", r.NumberTo(w.user)},
                      {"queue", r.NumberTo(w.queue)},
                  });
}

Status ReadLimits(const Reader& r, const YAML::Node& node, const std::string& path, Limits& l) {
  return r.Fields(node, path,
                  {
                      {"max_running_jobs", r.OptionalCountTo(l.max_running_jobs, 0)},
                      {"max_cores", r.OptionalCountTo(l.max_cores, 0)},
                      {"max_gpus", r.OptionalCountTo(l.max_gpus, 0)},
                      {"max_queued_jobs", r.OptionalCountTo(l.max_queued_jobs, 0)},
                  });
}

Status ReadLimitsSection(const Reader& r, const YAML::Node& node, LimitsPolicy& lp) {
  auto each = [&](std::map<std::string, Limits>& into) {
    return [&r, &into](const YAML::Node& v, const std::string& p) {
      return r.Entries(v, p, [&](const std::string& n, const YAML::Node& x, const std::string& q) {
        return ReadLimits(r, x, q, into[n]);
      });
    };
  };
  return r.Fields(node, "limits",
                  {
                      {"default_user",
                       [&](const YAML::Node& v, const std::string& p) {
                         return ReadLimits(r, v, p, lp.default_user);
                       }},
                      {"users", each(lp.users)},
                      {"groups", each(lp.groups)},
                  });
}

Status ReadQueue(const Reader& r, const std::string& name, const YAML::Node& node,
                 const std::string& path, QueuePolicy& q) {
  q.name = name;
  int64_t cores = 0, gpus = 0, mem_mb = 0;
  auto read_defaults = [&](const YAML::Node& v, const std::string& p) -> Status {
    Status s = r.Fields(v, p,
                        {
                            {"cores", r.CountTo(cores, 1)},
                            {"gpus", r.CountTo(gpus, 0)},
                            {"mem", [&](const YAML::Node& x,
                                        const std::string& k) { return r.SizeMb(x, k, mem_mb); }},
                        });
    if (!s.ok()) return s;
    if (v["cores"]) q.default_cores = static_cast<int>(std::min<int64_t>(cores, 1 << 20));
    if (v["gpus"]) q.default_gpus = static_cast<int>(std::min<int64_t>(gpus, 1 << 20));
    if (v["mem"]) q.default_mem_mb = mem_mb;
    return OkStatus();
  };
  Status s = r.Fields(node, path,
                      {
                          {"hosts", r.NamesTo(q.hosts)},
                          {"features", r.NamesTo(q.features)},
                          {"max_h_rt", r.DurationTo(q.max_h_rt_s, false)},
                          {"default_h_rt", r.DurationTo(q.default_h_rt_s, false)},
                          {"priority", r.CountTo(q.priority, 0)},
                          {"default_resources", read_defaults},
                      });
  if (!s.ok()) return s;
  if (!q.hosts.empty() && !q.features.empty()) {
    return r.Fail(node, path, "give hosts or features, not both");
  }
  if (q.max_h_rt_s > 0 && q.default_h_rt_s > q.max_h_rt_s) {
    return r.Fail(node, path, "default_h_rt is longer than max_h_rt");
  }
  return OkStatus();
}

Status ReadPlanner(const Reader& r, const YAML::Node& node, PlannerPolicy& pl) {
  auto read_algorithm = [&](const YAML::Node& v, const std::string& p) -> Status {
    std::string text;
    if (Status s = r.Text(v, p, text); !s.ok()) return s;
    for (PlannerKind kind : {PlannerKind::kFcfs, PlannerKind::kEasy, PlannerKind::kConservative}) {
      if (text == PlannerKindName(kind)) {
        pl.kind = kind;
        return OkStatus();
      }
    }
    return r.Fail(v, p, "'" + text + "' is not one of fcfs, easy, conservative");
  };
  std::optional<int64_t> depth;
  int64_t max_jobs = pl.max_jobs_per_pass;
  Status s = r.Fields(node, "planner",
                      {
                          {"algorithm", read_algorithm},
                          {"reservation_depth", r.OptionalCountTo(depth, 1)},
                          {"max_jobs_per_pass", r.CountTo(max_jobs, 1)},
                          {"default_runtime", r.DurationTo(pl.default_runtime_s, true)},
                      });
  if (!s.ok()) return s;
  pl.max_jobs_per_pass = static_cast<int>(std::min<int64_t>(max_jobs, 1 << 30));
  if (depth && pl.kind != PlannerKind::kEasy) {
    return r.Fail(node["reservation_depth"], "planner.reservation_depth",
                  "applies only to algorithm easy (fcfs reserves nothing, conservative every job)");
  }
  switch (pl.kind) {
    case PlannerKind::kFcfs:
      pl.reservation_depth = 0;
      break;
    case PlannerKind::kEasy:
      pl.reservation_depth =
          static_cast<int>(std::min<int64_t>(depth.value_or(1), kUnlimitedDepth));
      break;
    case PlannerKind::kConservative:
      pl.reservation_depth = kUnlimitedDepth;
      break;
  }
  return OkStatus();
}

// Checks that need the whole file.
Status CrossCheck(const Reader& r, const YAML::Node& root, const Policy& p) {
  // (A missing key gives an invalid node, which throws if asked its type: test it first.)
  const YAML::Node limits = root.IsMap() ? root["limits"] : YAML::Node();
  const YAML::Node groups = limits && limits.IsMap() ? limits["groups"] : YAML::Node();
  if (groups && groups.IsMap()) {
    for (const auto& kv : groups) {
      const std::string name = kv.first.Scalar();
      if (name != kDefaultGroup && !p.fairshare.groups.count(name)) {
        return r.Fail(kv.first, "limits.groups." + name,
                      "no group '" + name + "' in fairshare.tree");
      }
    }
  }
  if (!p.default_queue.empty() && !p.queues.count(p.default_queue)) {
    return r.Fail(root["default_queue"], "default_queue",
                  "no queue '" + p.default_queue + "' in queues");
  }
  return OkStatus();
}

Result<Policy> Parse(const std::string& yaml, const std::string& origin) {
  Reader r(origin);
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return Error(Code::kInvalidArgument, origin + ":" + std::to_string(e.mark.line + 1) + ":" +
                                             std::to_string(e.mark.column + 1) +
                                             ": not valid YAML: " + e.msg);
  }
  Policy p;
  p.origin = origin;
  auto section = [&](auto read, auto& into) {
    return [&r, read, &into](const YAML::Node& v, const std::string&) { return read(r, v, into); };
  };
  auto read_queues = [&](const YAML::Node& v, const std::string& path) {
    return r.Entries(v, path, [&](const std::string& n, const YAML::Node& x, const std::string& q) {
      return ReadQueue(r, n, x, q, p.queues[n]);
    });
  };
  Status s = r.Fields(root, "",
                      {
                          {"fairshare", section(ReadFairShare, p.fairshare)},
                          {"priority", section(ReadPriority, p.priority)},
                          {"limits", section(ReadLimitsSection, p.limits)},
                          {"queues", read_queues},
                          {"default_queue", r.TextTo(p.default_queue)},
                          {"planner", section(ReadPlanner, p.planner)},
                      });
  if (!s.ok()) return std::unexpected(s);
  if (Status c = CrossCheck(r, root, p); !c.ok()) return std::unexpected(c);
  return p;
}

}  // namespace

Result<Policy> ParsePolicy(const std::string& yaml, const std::string& origin) {
  try {
    return Parse(yaml, origin);
  } catch (const YAML::Exception& e) {  // a conversion the readers did not foresee
    return Error(Code::kInvalidArgument, origin + ":" + std::to_string(e.mark.line + 1) + ":" +
                                             std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

Result<Policy> LoadPolicy(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error(Code::kNotFound, path + ": cannot read policy file");
  std::stringstream text;
  text << in.rdbuf();
  return ParsePolicy(text.str(), path);
}

std::string_view PlannerKindName(PlannerKind kind) {
  switch (kind) {
    case PlannerKind::kFcfs:
      return "fcfs";
    case PlannerKind::kEasy:
      return "easy";
    case PlannerKind::kConservative:
      return "conservative";
  }
  return "fcfs";
}

}  // namespace corral
