// corral-spawn-rate: the machine's own rate of starting and reaping a command with P
// children running at once (fork + exec + waitpid, nothing else): the ceiling that the
// end-to-end job rate of a local cluster is compared with. Benchmarks only.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/clock.h"

int main(int argc, char** argv) {
  long total = 2000;
  int parallel = 16;
  std::vector<char*> command;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--count" && i + 1 < argc) {
      total = std::stol(argv[++i]);
    } else if (a == "--parallel" && i + 1 < argc) {
      parallel = std::stoi(argv[++i]);
    } else if (a == "--") {
      for (++i; i < argc; ++i) command.push_back(argv[i]);
    } else {
      fprintf(stderr, "usage: corral-spawn-rate [--count N] [--parallel P] -- COMMAND [ARGS]\n");
      return 2;
    }
  }
  if (command.empty()) command.push_back(const_cast<char*>("/bin/true"));
  command.push_back(nullptr);
  long started = 0, reaped = 0;
  const corral::TimeMs t0 = corral::MonotonicNowMs();
  while (reaped < total) {
    while (started < total && started - reaped < parallel) {
      const pid_t pid = fork();
      if (pid == 0) {
        execv(command[0], command.data());
        _exit(127);
      }
      if (pid < 0) {
        perror("fork");
        return 1;
      }
      ++started;
    }
    int status = 0;
    if (wait(&status) > 0) ++reaped;
  }
  const double secs = (corral::MonotonicNowMs() - t0) / 1000.0;
  printf("spawned %ld in %.3f s (%.1f per s) with %d running at once\n", total, secs,
         total / secs, parallel);
  return 0;
}
