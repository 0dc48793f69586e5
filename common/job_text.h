// The JSON text of job records in query replies, written straight into a string: the
// same keys, order and text as protocol.cc's nlohmann form (JobToJson), at a fraction of
// the cost (no per-field json values, maps and allocations). Internal to common/: the
// protocol's encoders use it; tests compare the two forms.
#pragma once

#include <string>
#include <string_view>

#include "common/types.h"

namespace corral {

// Appends the documented job object (docs/json.md, no script) to `out`, exactly as
// JobToJson(job) writes it.
void AppendJobJson(std::string& out, const Job& job);

// Appends `s` as a JSON string (invalid UTF-8 replaced, as Encode does).
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace corral
