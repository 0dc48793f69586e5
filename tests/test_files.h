// Small helpers the unit tests that run real processes share: a whole file's text, and a
// short pause while a deadline loop waits for a process (the only sleeping tests do).
#pragma once

#include <poll.h>

#include <fstream>
#include <sstream>
#include <string>

namespace corral::testing {

// The whole text of `path`; "" if it cannot be read.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void PauseMs(int ms) { poll(nullptr, 0, ms); }

}  // namespace corral::testing
