// Fuzzes sweep files (qtools/sweep.h): ParseSweep over arbitrary YAML, then the points'
// JSON and environment forms. `csv:` and `files:` paths resolve against a fixture
// directory made at start (a CSV file and a few files to glob); inputs naming an absolute
// path or ".." are skipped, so that the fuzzer never reads or globs the machine's own
// files (/dev/zero would never end). Any crash or sanitizer report is a finding.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "qtools/sweep.h"

namespace {

std::string MakeFixture() {
  char tmpl[] = "/tmp/corral-sweep-fuzz-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (dir == nullptr) std::abort();
  const std::string d = dir;
  std::ofstream(d + "/p.csv") << "alpha,beta\n1,x\n2,\"y,z\"\n3,\"multi\nline\"\n";
  std::ofstream(d + "/bad.csv") << "a,b\n1\n";
  std::filesystem::create_directory(d + "/img");
  for (const char* f : {"img/a.png", "img/b.png", "img/c.tif"}) std::ofstream(d + "/" + f) << "x";
  return d;
}

// True if some csv/files value of the sweep names a path outside the fixture directory.
bool LeavesFixture(const std::string& text) {
  auto outside = [](const YAML::Node& v) {
    if (!v.IsScalar()) return false;
    const std::string& p = v.Scalar();
    return p.empty() || p[0] == '/' || p[0] == '~' || p.find("..") != std::string::npos;
  };
  try {
    const YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) return false;
    for (const auto& kv : root) {
      if (!kv.first.IsScalar()) continue;
      if (kv.first.Scalar() == "csv" && outside(kv.second)) return true;
      if (kv.first.Scalar() == "files" && kv.second.IsMap()) {
        for (const auto& f : kv.second) {
          if (outside(f.second)) return true;
        }
      }
    }
  } catch (const YAML::Exception&) {
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace corral;
  static const std::string kDir = MakeFixture();
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)IsJsonNumber(text);
  (void)JsonQuote(text);
  if (LeavesFixture(text)) return 0;
  Result<Sweep> sweep = ParseSweep(text, "sweep.yaml", kDir);
  if (!sweep) return 0;
  const int64_t n = sweep->size();
  if (n < 1) std::abort();  // a parsed sweep has at least one point
  (void)sweep->names();
  for (int64_t i : {int64_t{0}, n / 2, n - 1}) {
    const ParamPoint point = sweep->Point(i);
    (void)ParamsJson(point);
    (void)ParamsEnv(point);
  }
  return 0;
}
