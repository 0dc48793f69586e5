// corral-spawner: the process that forks an execd's shepherds (execd/spawner.h). Started by
// corral-execd only, once, with its socket on fd 3; not a command for people. Linked static
// and with nothing but the shepherd's code, so that each fork of it is cheap.
#include <sys/socket.h>

#include <cstdio>

#include "common/clock.h"
#include "execd/spawner.h"

int main(int argc, char** argv) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (argc != 1 ||
      getsockopt(corral::kSpawnerSocketFd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
      type != SOCK_STREAM) {
    std::fprintf(stderr,
                 "%s: corral-execd starts this program, with its socket on descriptor %d; it "
                 "takes no arguments and is not run by hand\n",
                 argc > 0 ? argv[0] : "corral-spawner", corral::kSpawnerSocketFd);
    return 2;
  }
  static const corral::SystemClock clock;
  corral::RunSpawner(corral::kSpawnerSocketFd, &clock);
}
