// Who may do what. The server establishes who a caller is (kernel peer credentials on the
// ipc:// endpoint; see docs/security.md); these functions decide what that caller may do,
// from the scheduler config's `admins`, `operators` and `private_jobs`:
//   user      submits, and sees, holds, releases, cancels and resubmits its own jobs; sees
//             everyone's jobs unless private_jobs is set
//   operator  also acts on any job and enables/disables nodes
//   admin     also reloads the policy; root is always an admin
// A caller no one vouched for (a tcp client without credentials) may only look.
#pragma once

#include <optional>
#include <string>

#include "common/protocol.h"
#include "scheduler/core.h"

namespace corral {

enum class Role { kAnonymous, kUser, kOperator, kAdmin };

Role RoleOf(const Caller& caller, const CoreConfig& config);
std::string_view RoleName(Role role);  // "anonymous", "user", "operator", "admin"

// Whether `caller` may change `job` (cancel, hold, release, resubmit): its owner, an
// operator or an admin.
bool MayControl(const Caller& caller, const Job& job, const CoreConfig& config);

// Whether `caller` may see `job` in queries: always, unless private_jobs is set; then only
// its owner, operators and admins.
bool MaySee(const Caller& caller, const Job& job, const CoreConfig& config);

// An error reply when `caller` is anonymous: changing anything needs a known user.
std::optional<Message> RefuseUnlessAuthenticated(const Caller& caller, const std::string& what);

// An audit record of an action by `caller`.
AuditEntry Audit(const Caller& caller, TimeMs now, std::string action, std::string detail);

}  // namespace corral
