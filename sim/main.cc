// corral-sim: replays a workload trace through Corral's policy engine in virtual time.
// Options and the run are in cli.{h,cc}; this file maps the outcome to output and an exit
// code (0 ok, 1 a run error, 2 a usage error), and keeps exceptions from escaping.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "sim/cli.h"

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    corral::Result<corral::sim::Options> options = corral::sim::ParseArgs(args);
    if (!options) {
      std::fprintf(stderr, "corral-sim: %s\n(corral-sim --help for usage)\n",
                   options.error().message().c_str());
      return 2;
    }
    if (options->help) {
      std::fputs(corral::sim::kUsage, stdout);
      return 0;
    }
    corral::Result<std::string> out = corral::sim::RunSim(*options);
    if (!out) {
      std::fprintf(stderr, "corral-sim: %s\n", out.error().message().c_str());
      return 1;
    }
    std::fputs(out->c_str(), stdout);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corral-sim: internal error: %s\n", e.what());
    return 1;
  }
}
