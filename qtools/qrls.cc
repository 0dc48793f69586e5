// qrls: release held jobs (Grid Engine's qrls). All of it is cli::RunHoldTool, shared
// with qhold; this file only names the tool and the direction.
#include "qtools/cli.h"

int main(int argc, char** argv) {
  return corral::cli::Main("qrls", argc, argv, [](const std::vector<std::string>& args) {
    return corral::cli::RunHoldTool("qrls", /*hold=*/false, args);
  });
}
