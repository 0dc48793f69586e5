// What the build relies on from the compiler and standard library, checked where a
// mismatch would otherwise show up only as a symptom far away.
#include <doctest/doctest.h>

#include <string>
#include <type_traits>

namespace {

// A constexpr function called with a run-time value, as libstdc++'s string members are.
constexpr bool RunsAtRunTime(int x) { return !std::is_constant_evaluated() && x >= 0; }

}  // namespace

TEST_CASE("std::is_constant_evaluated() is false at run time") {
  // clang 14 in C++23 mode gets this wrong (llvm/llvm-project#55638) unless the build
  // removes __cpp_if_consteval (CMakeLists.txt); libstdc++'s std::string then takes its
  // constant-evaluation branches at run time, and each insert copies the whole string.
  volatile int x = 1;
  CHECK(RunsAtRunTime(x));
  std::string s = "abc";
  s.insert(s.begin() + 1, 'x');  // one of those branches, whose result must not change
  CHECK(s == "axbc");
}
