// Fuzzes the admin's policy file (policies/policy_config.h): ParsePolicy over arbitrary
// YAML must return a Policy or an error, never throw or crash; a parsed policy must be
// usable by the prioritizer and planner it configures.
#include <cstdint>
#include <string>

#include "policies/planner.h"
#include "policies/policy_config.h"
#include "policies/priority.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace corral;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Result<Policy> policy = ParsePolicy(text, "policy.yaml");
  if (!policy) return 0;
  (void)PlannerKindName(policy->planner.kind);
  (void)MakePrioritizer(*policy);
  (void)MakePlanner(*policy);
  return 0;
}
