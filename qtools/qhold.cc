// qhold: hold pending jobs (Grid Engine's qhold). All of it is cli::RunHoldTool, shared
// with qrls; this file only names the tool and the direction.
#include "qtools/cli.h"

int main(int argc, char** argv) {
  return corral::cli::Main("qhold", argc, argv, [](const std::vector<std::string>& args) {
    return corral::cli::RunHoldTool("qhold", /*hold=*/true, args);
  });
}
