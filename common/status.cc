// Names of status codes, shared by the wire protocol and log messages.
#include "common/status.h"

#include <array>

namespace corral {
namespace {
struct CodeRow {
  Code code;
  std::string_view name;
};
constexpr std::array<CodeRow, 7> kCodes = {{
    {Code::kOk, "ok"},
    {Code::kInvalidArgument, "invalid_argument"},
    {Code::kNotFound, "not_found"},
    {Code::kFailedPrecondition, "failed_precondition"},
    {Code::kPermissionDenied, "permission_denied"},
    {Code::kUnavailable, "unavailable"},
    {Code::kInternal, "internal"},
}};
}  // namespace

std::string_view CodeName(Code code) {
  for (const CodeRow& row : kCodes) {
    if (row.code == code) return row.name;
  }
  return "internal";
}

Code CodeFromName(std::string_view name) {
  for (const CodeRow& row : kCodes) {
    if (row.name == name) return row.code;
  }
  return Code::kInternal;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code_)) + ": " + message_;
}

}  // namespace corral
