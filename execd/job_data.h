// The data a sweep task exchanges with Corral through files: its parameter point in,
// as PARAM_* variables (the JSON file is written by the launcher), and its results out,
// read back from $CORRAL_RESULT when the attempt ends, bounded and validated.
#pragma once

#include <map>
#include <string>

#include "execd/launcher.h"

namespace corral {

// {"filter":"median","size":5} -> {PARAM_FILTER=median, PARAM_SIZE=5}. Names are
// upper-cased; values that are not strings are written as JSON ("5", "true"). Invalid
// JSON or a non-object gives no variables.
std::map<std::string, std::string> ParamVariables(const std::string& params_json);

// Reads the job's result file into end.result (compact JSON of an object) or says why
// not in end.result_error: more than kMaxResultBytes, not JSON, not an object. A missing
// or empty file is no result and no error.
void ReadJobResult(const std::string& path, AttemptEnd& end);

}  // namespace corral
