// Status and Result<T>: errors as values. A Code tells the caller what to do
// about the error; the message names what was wrong and where. Nothing here
// throws, and no exception crosses a module boundary (see docs/design.md).
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

#include "common/expected_compat.h"  // std::expected where libstdc++ hides it (clang 14)

namespace corral {

enum class Code {
  kOk,
  kInvalidArgument,     // the caller's input is wrong; retrying the same input will not help
  kNotFound,            // the named object does not exist
  kFailedPrecondition,  // the object is not in a state that allows this
  kPermissionDenied,    // the caller may not do this
  kUnavailable,         // transient: retry later
  kInternal,            // a bug or an environment failure (disk, database)
};

// Wire and log name of a code ("invalid_argument", ...); stable, part of the protocol.
std::string_view CodeName(Code code);
// Inverse of CodeName; unknown names map to kInternal.
Code CodeFromName(std::string_view name);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_argument: <message>"
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }

template <typename T>
using Result = std::expected<T, Status>;

// `return Error(Code::kNotFound, "job 42 does not exist");` from a function returning
// Result<T> or Status.
struct Error {
  Error(Code code, std::string message) : status(code, std::move(message)) {}
  template <typename T>
  operator Result<T>() const {  // NOLINT(google-explicit-constructor)
    return std::unexpected(status);
  }
  operator Status() const { return status; }  // NOLINT(google-explicit-constructor)
  Status status;
};

}  // namespace corral
