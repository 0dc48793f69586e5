#include "scheduler/authz.h"

namespace corral {

Role RoleOf(const Caller& caller, const CoreConfig& config) {
  if (!caller.uid) return Role::kAnonymous;
  if (caller.IsRoot() || config.admins.count(caller.user)) return Role::kAdmin;
  if (config.operators.count(caller.user)) return Role::kOperator;
  return Role::kUser;
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kAnonymous: return "anonymous";
    case Role::kUser: return "user";
    case Role::kOperator: return "operator";
    case Role::kAdmin: return "admin";
  }
  return "?";
}

bool MayControl(const Caller& caller, const Job& job, const CoreConfig& config) {
  const Role role = RoleOf(caller, config);
  if (role == Role::kAdmin || role == Role::kOperator) return true;
  return role == Role::kUser && *caller.uid == job.uid;
}

bool MaySee(const Caller& caller, const Job& job, const CoreConfig& config) {
  if (!config.private_jobs) return true;
  return MayControl(caller, job, config);
}

std::optional<Message> RefuseUnlessAuthenticated(const Caller& caller, const std::string& what) {
  if (caller.uid) return std::nullopt;
  return ErrorReply{Code::kPermissionDenied,
                    what + " needs a known user: connect over the scheduler's local ipc:// "
                           "endpoint, or with a MUNGE credential over tcp"};
}

AuditEntry Audit(const Caller& caller, TimeMs now, std::string action, std::string detail) {
  return AuditEntry{now, caller.user.empty() ? "?" : caller.user, std::move(action),
                    std::move(detail)};
}

}  // namespace corral
