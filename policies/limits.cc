// Limit checks: each reason names the limit, its value and what reached it.
#include "policies/limits.h"

namespace corral {
namespace {

std::string Check(const std::string& who, const Limits& l, const LimitCounts& now,
                  const Resources& request) {
  if (l.max_running_jobs && now.running_jobs + 1 > *l.max_running_jobs) {
    return who + " limit: max_running_jobs=" + std::to_string(*l.max_running_jobs) + " reached (" +
           std::to_string(now.running_jobs) + " running)";
  }
  if (l.max_cores && now.cores + request.cores > *l.max_cores) {
    return who + " limit: max_cores=" + std::to_string(*l.max_cores) + " (" +
           std::to_string(now.cores) + " in use, job needs " + std::to_string(request.cores) + ")";
  }
  if (l.max_gpus && request.gpus > 0 && now.gpus + request.gpus > *l.max_gpus) {
    return who + " limit: max_gpus=" + std::to_string(*l.max_gpus) + " (" +
           std::to_string(now.gpus) + " in use, job needs " + std::to_string(request.gpus) + ")";
  }
  return "";
}

}  // namespace

Limits UserLimits(const LimitsPolicy& limits, const std::string& user) {
  Limits l = limits.default_user;
  auto it = limits.users.find(user);
  if (it == limits.users.end()) return l;
  const Limits& own = it->second;
  if (own.max_running_jobs) l.max_running_jobs = own.max_running_jobs;
  if (own.max_cores) l.max_cores = own.max_cores;
  if (own.max_gpus) l.max_gpus = own.max_gpus;
  if (own.max_queued_jobs) l.max_queued_jobs = own.max_queued_jobs;
  return l;
}

bool AnyRunLimit(const LimitsPolicy& limits) {
  auto binds = [](const Limits& l) { return l.max_running_jobs || l.max_cores || l.max_gpus; };
  if (binds(limits.default_user)) return true;
  for (const auto& [user, l] : limits.users) {
    if (binds(l)) return true;
  }
  for (const auto& [group, l] : limits.groups) {
    if (binds(l)) return true;
  }
  return false;
}

std::string RunLimitReason(const LimitsPolicy& limits, const std::string& user,
                           const std::string& group, const LimitCounts& user_now,
                           const LimitCounts& group_now, const Resources& request) {
  std::string reason = Check("user", UserLimits(limits, user), user_now, request);
  if (!reason.empty()) return reason;
  auto g = limits.groups.find(group);
  if (g == limits.groups.end()) return "";
  return Check("group " + group, g->second, group_now, request);
}

Status CheckQueuedLimit(const LimitsPolicy& limits, const std::string& user,
                        const std::string& group, const LimitCounts& user_now,
                        const LimitCounts& group_now) {
  const Limits l = UserLimits(limits, user);
  if (l.max_queued_jobs && user_now.queued_jobs >= *l.max_queued_jobs) {
    return Error(Code::kFailedPrecondition,
                 "user limit: max_queued_jobs=" + std::to_string(*l.max_queued_jobs) +
                     " reached (" + std::to_string(user_now.queued_jobs) + " queued)");
  }
  auto g = limits.groups.find(group);
  if (g != limits.groups.end() && g->second.max_queued_jobs &&
      group_now.queued_jobs >= *g->second.max_queued_jobs) {
    return Error(Code::kFailedPrecondition,
                 "group " + group +
                     " limit: max_queued_jobs=" + std::to_string(*g->second.max_queued_jobs) +
                     " reached (" + std::to_string(group_now.queued_jobs) + " queued)");
  }
  return OkStatus();
}

}  // namespace corral
