// corral-submit-load: submits N jobs through the client library from one process and
// records each acknowledged id — the protocol's own submit rate without process starts,
// and a load generator for tests that crash the scheduler mid-stream.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "qtools/client.h"

namespace {
constexpr const char* kUsage = R"USAGE(usage: corral-submit-load --endpoint EP --count N [options]

Submits N copies of a job through the client library and prints "submitted A of N in
S s (R jobs/s)": one request at a time (Client::Call, one fsync each), or with --window W
pipelined (Client::CallMany, W requests in flight; what corral submit-many does).

options:
  --endpoint EP      scheduler endpoint (default: $CORRAL_SCHEDULER)
  --count N          number of jobs (default 1000)
  --script FILE      job script (default: a script running /bin/true)
  --cwd DIR          working directory of the jobs (default: current directory)
  --acked FILE       append every acknowledged job id to FILE, one per line
  --hold             submit the jobs held (measures submission alone)
  --window W         pipelined, W requests in flight (default 1: one at a time)
  --reconnect        one at a time, each on a new connection (what a qsub process does,
                     without its process start)
  --timeout-ms MS    wait this long for each reply (default 5000); a request without
                     an answer is counted as not acknowledged and the next one is sent
)USAGE";
}  // namespace

int main(int argc, char** argv) {
  std::string endpoint = getenv("CORRAL_SCHEDULER") ? getenv("CORRAL_SCHEDULER") : "";
  std::string script = "#!/bin/sh\n/bin/true\n";
  std::string acked_path;
  char cwd_buf[4096];
  std::string cwd = getcwd(cwd_buf, sizeof cwd_buf) ? cwd_buf : "/tmp";
  long count = 1000;
  long timeout_ms = 5000;
  long window = 1;
  bool hold = false;
  bool reconnect = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "corral-submit-load: " << a << " needs a value\n";
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--endpoint") endpoint = value();
    else if (a == "--count") count = std::stol(value());
    else if (a == "--script") {
      std::ifstream in(value());
      std::stringstream ss;
      ss << in.rdbuf();
      script = ss.str();
    } else if (a == "--cwd") cwd = value();
    else if (a == "--acked") acked_path = value();
    else if (a == "--timeout-ms") timeout_ms = std::stol(value());
    else if (a == "--hold") hold = true;
    else if (a == "--window") window = std::stol(value());
    else if (a == "--reconnect") reconnect = true;
    else if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    } else {
      std::cerr << "corral-submit-load: unknown option '" << a << "'\n" << kUsage;
      return 2;
    }
  }
  corral::Result<corral::Client> client = corral::Client::Connect(endpoint);
  if (!client) {
    std::cerr << "corral-submit-load: " << client.error().message() << "\n";
    return 1;
  }
  FILE* acked = acked_path.empty() ? nullptr : fopen(acked_path.c_str(), "a");
  corral::JobSpec spec;
  spec.script = script;
  spec.cwd = cwd;
  spec.request = {1, 0};
  spec.hold = hold;
  long ok = 0;
  auto acknowledged = [&](const corral::Result<corral::Message>& reply) {
    if (!reply || !std::holds_alternative<corral::SubmitReply>(*reply)) return;
    ++ok;
    if (acked) {
      fprintf(acked, "%lld\n", static_cast<long long>(std::get<corral::SubmitReply>(*reply).id));
      fflush(acked);
    }
  };
  const corral::TimeMs start = corral::MonotonicNowMs();
  if (window > 1) {
    std::vector<corral::Message> requests;
    requests.reserve(static_cast<size_t>(count));
    for (long i = 0; i < count; ++i) {
      spec.name = "load" + std::to_string(i);
      requests.push_back(corral::SubmitRequest{spec});
    }
    for (const auto& reply : client->CallMany(requests, static_cast<size_t>(window), timeout_ms)) {
      acknowledged(reply);
    }
  } else {
    for (long i = 0; i < count; ++i) {
      spec.name = "load" + std::to_string(i);
      if (reconnect) {
        corral::Result<corral::Client> fresh = corral::Client::Connect(endpoint);
        if (fresh) *client = std::move(*fresh);
      }
      acknowledged(client->Call(corral::SubmitRequest{spec}, timeout_ms));
    }
  }
  const double secs = (corral::MonotonicNowMs() - start) / 1000.0;
  if (acked) fclose(acked);
  printf("submitted %ld of %ld in %.3f s (%.0f jobs/s)\n", ok, count, secs,
         secs > 0 ? ok / secs : 0.0);
  return ok == count ? 0 : 3;
}
