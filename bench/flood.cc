// corral-flood: a benchmark client that talks the wire protocol on a raw DEALER socket
// and keeps many requests in flight, to populate a scheduler quickly (the client library
// waits for each reply) and to time what the scheduler itself spends on a query, without
// the q-tools' process start, formatting or 8 MiB reply limit. Benchmarks only.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "bench/stopwatch.h"
#include "common/clock.h"
#include "common/protocol.h"

namespace {

constexpr const char* kUsage = R"USAGE(usage: corral-flood MODE [options]   (endpoint: --endpoint EP or $CORRAL_SCHEDULER)

modes:
  submit   --count N [--hold] [--window W] [--cwd DIR] [--binary CMD] [--name NAME]
           submits N one-core jobs with up to W (default 2000) requests in flight;
           the job runs CMD (-b y) or a script running /bin/true. Prints
           "submitted A of N in S s (R jobs/s) ids FIRST-LAST".
  cancel   --from A --to B [--chunk C] [--window W]
           cancels jobs A..B with requests of C ids (default 10000). Prints
           "cancelled A of N in S s (R jobs/s)".
  query    [--user U] [--finished] [--ids A,B,...] [--reps R] [--page N]
           R (default 5) listings, one at a time, each page by page (N records a
           page, default 2000 as the client library; 0: one unpaged request).
           Prints "query median_ms M min_ms L bytes B pages P first_page_median_ms F"
           (times of whole listings; bytes and pages of the last; replies are not
           decoded beyond their cursor).
)USAGE";

struct Options {
  std::string mode;
  std::string endpoint = getenv("CORRAL_SCHEDULER") ? getenv("CORRAL_SCHEDULER") : "";
  long count = 1000;
  long window = 2000;
  bool hold = false;
  std::string cwd;
  std::string binary;
  std::string name = "flood";
  long from = 0, to = 0, chunk = 10000;
  std::string user;
  bool finished = false;
  std::vector<corral::JobId> ids;
  int reps = 5;
  long page = 2000;  // query: records a page; 0 = unpaged
};

// Counts replies of `type` among what arrived; returns how many replies were read.
long Drain(zmq::socket_t& sock, int timeout_ms, long& ok, std::vector<corral::JobId>* ids) {
  long n = 0;
  zmq::pollitem_t item{static_cast<void*>(sock), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) <= 0) return 0;
  zmq::message_t msg;
  while (sock.recv(msg, zmq::recv_flags::dontwait)) {
    ++n;
    corral::Result<corral::Envelope> env = corral::Decode(msg.to_string_view());
    if (!env) continue;
    if (const auto* s = std::get_if<corral::SubmitReply>(&env->message)) {
      ++ok;
      if (ids) ids->push_back(s->id);
    } else if (const auto* o = std::get_if<corral::OutcomeReply>(&env->message)) {
      for (const auto& x : o->outcomes) ok += x.outcome == "deleted" || x.outcome == "registered";
    } else if (const auto* e = std::get_if<corral::ErrorReply>(&env->message)) {
      static int shown = 0;
      if (shown++ < 3) std::cerr << "corral-flood: error reply: " << e->message << "\n";
    }
  }
  return n;
}

int Submit(zmq::socket_t& sock, const Options& o) {
  corral::JobSpec spec;
  spec.cwd = o.cwd;
  spec.request = {1, 0};
  spec.hold = o.hold;
  if (!o.binary.empty()) {
    spec.binary = true;
    spec.args = {o.binary};
  } else {
    spec.script = "#!/bin/sh\n/bin/true\n";
  }
  long sent = 0, answered = 0, ok = 0;
  std::vector<corral::JobId> ids;
  const corral::TimeMs start = corral::MonotonicNowMs();
  corral::TimeMs last_progress = start;
  while (answered < o.count) {
    while (sent < o.count && sent - answered < o.window) {
      spec.name = o.name + std::to_string(sent);
      const std::string bytes = corral::Encode(corral::SubmitRequest{spec}, std::to_string(sent));
      sock.send(zmq::buffer(bytes), zmq::send_flags::none);
      ++sent;
    }
    const long got = Drain(sock, 1000, ok, &ids);
    answered += got;
    if (got > 0) last_progress = corral::MonotonicNowMs();
    if (corral::MonotonicNowMs() - last_progress > 60000) {
      std::cerr << "corral-flood: no reply for 60 s; giving up\n";
      break;
    }
  }
  const double secs = (corral::MonotonicNowMs() - start) / 1000.0;
  const auto [lo, hi] = ids.empty() ? std::pair<corral::JobId, corral::JobId>{0, 0}
                                    : std::pair{*std::min_element(ids.begin(), ids.end()),
                                                *std::max_element(ids.begin(), ids.end())};
  printf("submitted %ld of %ld in %.3f s (%.0f jobs/s) ids %lld-%lld\n", ok, o.count, secs,
         secs > 0 ? ok / secs : 0.0, static_cast<long long>(lo), static_cast<long long>(hi));
  return ok == o.count ? 0 : 3;
}

int Cancel(zmq::socket_t& sock, const Options& o) {
  long requests = 0, answered = 0, ok = 0;
  const corral::TimeMs start = corral::MonotonicNowMs();
  corral::JobId next = o.from;
  while (next <= o.to || answered < requests) {
    while (next <= o.to && requests - answered < std::max(1L, o.window / o.chunk)) {
      corral::CancelRequest req;
      for (long i = 0; i < o.chunk && next <= o.to; ++i) req.ids.push_back(next++);
      const std::string bytes = corral::Encode(req, std::to_string(requests));
      sock.send(zmq::buffer(bytes), zmq::send_flags::none);
      ++requests;
    }
    const long got = Drain(sock, 60000, ok, nullptr);
    if (got == 0) {
      std::cerr << "corral-flood: no reply for 60 s; giving up\n";
      break;
    }
    answered += got;
  }
  const double secs = (corral::MonotonicNowMs() - start) / 1000.0;
  const long n = o.to - o.from + 1;
  printf("cancelled %ld of %ld in %.3f s (%.0f jobs/s)\n", ok, n, secs, secs > 0 ? ok / secs : 0.0);
  return 0;
}

// The cursor of a reply, read without decoding the whole reply: its "next" object is
// written last, just before "req" (common/protocol.cc).
std::optional<corral::UnitKey> NextOf(std::string_view reply) {
  const size_t at = reply.rfind("\"next\":{\"job\":");
  if (at == std::string_view::npos) return std::nullopt;
  corral::UnitKey k;
  if (sscanf(std::string(reply.substr(at)).c_str(), "\"next\":{\"job\":%ld,\"task\":%ld}", &k.job,
             &k.task) != 2) {
    return std::nullopt;
  }
  return k;
}

int Query(zmq::socket_t& sock, const Options& o) {
  corral::QueryRequest req;
  req.user = o.user;
  req.include_finished = o.finished;
  req.ids = o.ids;
  req.limit = o.page;
  std::vector<double> ms, first_ms;
  size_t bytes = 0;
  int pages = 0;
  for (int r = 0; r < o.reps; ++r) {
    const corral::bench::Stopwatch sw;
    corral::QueryRequest page = req;
    bytes = 0;
    pages = 0;
    while (true) {
      const std::string out = corral::Encode(page, "q" + std::to_string(r) + "-" + std::to_string(pages));
      sock.send(zmq::buffer(out), zmq::send_flags::none);
      zmq::message_t reply;
      zmq::pollitem_t item{static_cast<void*>(sock), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(600000)) <= 0 ||
          !sock.recv(reply, zmq::recv_flags::none)) {
        std::cerr << "corral-flood: no reply to the query\n";
        return 1;
      }
      if (pages++ == 0) first_ms.push_back(sw.Ms());
      bytes += reply.size();
      std::optional<corral::UnitKey> next = NextOf(reply.to_string_view());
      if (!next || o.page == 0) break;
      page.after = next;
    }
    ms.push_back(sw.Ms());
  }
  printf("query median_ms %.2f min_ms %.2f bytes %zu pages %d first_page_median_ms %.2f\n",
         corral::bench::Median(ms), *std::min_element(ms.begin(), ms.end()), bytes, pages,
         corral::bench::Median(first_ms));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  char buf[4096];
  o.cwd = getcwd(buf, sizeof buf) ? buf : "/tmp";
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  o.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "corral-flood: " << a << " needs a value\n";
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--endpoint") o.endpoint = value();
    else if (a == "--count") o.count = std::stol(value());
    else if (a == "--window") o.window = std::stol(value());
    else if (a == "--hold") o.hold = true;
    else if (a == "--cwd") o.cwd = value();
    else if (a == "--binary") o.binary = value();
    else if (a == "--name") o.name = value();
    else if (a == "--from") o.from = std::stol(value());
    else if (a == "--to") o.to = std::stol(value());
    else if (a == "--chunk") o.chunk = std::stol(value());
    else if (a == "--user") o.user = value();
    else if (a == "--finished") o.finished = true;
    else if (a == "--reps") o.reps = std::stoi(value());
    else if (a == "--page") o.page = std::stol(value());
    else if (a == "--ids") {
      std::string v = value();
      for (size_t at = 0; at < v.size();) {
        size_t comma = v.find(',', at);
        if (comma == std::string::npos) comma = v.size();
        o.ids.push_back(std::stoll(v.substr(at, comma - at)));
        at = comma + 1;
      }
    } else {
      std::cerr << "corral-flood: unknown option '" << a << "'\n" << kUsage;
      return 2;
    }
  }
  try {
    zmq::context_t ctx(1);
    zmq::socket_t sock(ctx, zmq::socket_type::dealer);
    sock.set(zmq::sockopt::linger, 0);
    sock.set(zmq::sockopt::sndhwm, 0);
    sock.set(zmq::sockopt::rcvhwm, 0);
    sock.connect(o.endpoint);
    if (o.mode == "submit") return Submit(sock, o);
    if (o.mode == "cancel") return Cancel(sock, o);
    if (o.mode == "query") return Query(sock, o);
  } catch (const zmq::error_t& e) {
    std::cerr << "corral-flood: " << e.what() << "\n";
    return 1;
  }
  std::cerr << kUsage;
  return 2;
}
