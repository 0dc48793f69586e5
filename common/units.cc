// Size and duration parsing; strict: trailing junk, negatives and overflow are errors.
#include "common/units.h"

#include <cctype>
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>
#include <vector>

namespace corral {
namespace {

bool ParseUint(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out >= 0;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Result<int64_t> ParseSizeBytes(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  int64_t value = 0;
  if (!ParseUint(text.substr(0, digits), value)) {
    return Error(Code::kInvalidArgument, "'" + std::string(text) + "' is not a size (e.g. 4G, 512M)");
  }
  const std::string unit = Lower(text.substr(digits));
  int shift = -1;
  if (unit.empty() || unit == "b") shift = 0;
  if (unit == "k" || unit == "kb" || unit == "kib") shift = 10;
  if (unit == "m" || unit == "mb" || unit == "mib") shift = 20;
  if (unit == "g" || unit == "gb" || unit == "gib") shift = 30;
  if (unit == "t" || unit == "tb" || unit == "tib") shift = 40;
  if (shift < 0) {
    return Error(Code::kInvalidArgument,
                 "'" + std::string(text) + "' has an unknown size unit (use K, M, G or T)");
  }
  if (value > (std::numeric_limits<int64_t>::max() >> shift)) {
    return Error(Code::kInvalidArgument, "'" + std::string(text) + "' is too large");
  }
  return value << shift;
}

Result<int64_t> ParseSizeMb(std::string_view text) {
  Result<int64_t> bytes = ParseSizeBytes(text);
  if (!bytes) return bytes;
  // Rounded up without adding first: a size near the int64 limit overflowed (fuzz/qsub).
  return (*bytes >> 20) + ((*bytes & ((1 << 20) - 1)) != 0 ? 1 : 0);
}

Result<int64_t> ParseDurationSeconds(std::string_view text) {
  auto bad = [&] {
    return Error(Code::kInvalidArgument,
                 "'" + std::string(text) + "' is not a duration (e.g. 1:30:00, 5400, 90m)");
  };
  if (text.empty()) return bad();
  // Unit suffix form.
  const char last = static_cast<char>(std::tolower(static_cast<unsigned char>(text.back())));
  int64_t mult = 0;
  if (last == 's') mult = 1;
  if (last == 'm') mult = 60;
  if (last == 'h') mult = 3600;
  if (last == 'd') mult = 86400;
  if (mult != 0) {
    int64_t v = 0;
    if (!ParseUint(text.substr(0, text.size() - 1), v)) return bad();
    // Bounded like the h:m:s form, so that neither this product nor the milliseconds of
    // ParseDurationMs overflow ("-l h_rt=99999999999999999d" was undefined behaviour).
    if (v > (int64_t{1} << 40) / mult) return bad();
    return v * mult;
  }
  // [[h:]m:]s form; empty fields count as 0 as in Grid Engine ("::30").
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == ':') {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  if (parts.size() > 3) return bad();
  int64_t total = 0;
  for (std::string_view p : parts) {
    int64_t v = 0;
    if (!p.empty() && !ParseUint(p, v)) return bad();
    if (v > (int64_t{1} << 40)) return bad();
    total = total * 60 + v;
  }
  if (total > (int64_t{1} << 40)) return bad();  // ~34,800 years: the milliseconds fit
  return total;
}

Result<int64_t> ParseDurationMs(std::string_view text) {
  // A plain decimal number of seconds: digits with at most one '.'.
  const std::string t(text);
  const bool decimal = !t.empty() && t.find_first_not_of("0123456789.") == std::string::npos &&
                       std::count(t.begin(), t.end(), '.') <= 1 && t != ".";
  if (decimal) {
    const size_t dot = t.find('.');
    int64_t whole = 0;
    if ((dot != 0 && !ParseUint(t.substr(0, dot), whole)) || whole > (int64_t{1} << 40)) {
      return Error(Code::kInvalidArgument, "'" + t + "' is not a duration");
    }
    std::string frac = dot == std::string::npos ? "" : t.substr(dot + 1);
    frac = (frac + "000").substr(0, 3);  // milliseconds; finer digits are dropped
    int64_t ms = 0;
    ParseUint(frac, ms);
    return whole * 1000 + ms;
  }
  Result<int64_t> secs = ParseDurationSeconds(text);
  if (!secs) return std::unexpected(secs.error());
  return *secs * 1000;
}

std::string FormatDuration(int64_t seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld", static_cast<long long>(seconds / 3600),
                static_cast<long long>(seconds / 60 % 60), static_cast<long long>(seconds % 60));
  return buf;
}

}  // namespace corral
