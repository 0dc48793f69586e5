// How deep a JSON text nests, checked before it is parsed: the wire decoder
// (common/protocol.cc) and the store's job records (scheduler/stored_job.cc) refuse text
// nested deeper than kMaxJsonNesting.
#pragma once

#include <string_view>

namespace corral {

// Arrays and objects may nest this deep in a message (the deepest real one, a job in a
// reply, is 6). Parsing is iterative, but dumping and copying a json value recurse once
// per level: a job's `params` nesting a million objects crashed the scheduler (stack
// overflow in dump; tests/e2e/hostile_db_test.cc).
inline constexpr int kMaxJsonNesting = 64;

// True when the JSON text nests arrays/objects deeper than kMaxJsonNesting (strings
// skipped; exact for valid JSON, and invalid JSON is refused anyway).
bool JsonNestsTooDeep(std::string_view text);

}  // namespace corral
