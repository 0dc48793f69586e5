// TempDir: a fresh directory under /tmp for one test, removed with everything in it at
// scope exit. Searchable by all (0755), as a spool must be when tests run as root and
// jobs run as another user.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>

namespace corral::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/corral-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
    chmod(path_.c_str(), 0755);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace corral::testing
