// corral-query-storm: N clients in one process, each listing jobs in a loop exactly as
// qstat does (the running jobs, then the pending and held ones, page by page, every reply
// decoded), for a given time: the "RPC storm" of workflow tools polling qstat (#9),
// without the cost of starting N qstat processes on a small machine. Benchmarks only.
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "bench/stopwatch.h"
#include "common/protocol.h"

namespace corral {
namespace {

constexpr const char* kUsage =
    R"(usage: corral-query-storm --endpoint ENDPOINT [options]

  --clients N     concurrent listing loops, one socket each (default 50)
  --seconds S     how long to run (default 30)
  --user U        whose jobs each listing asks for (default: the calling user; '*' all)
  --page N        records per page asked for (default 2000, as the client library)
Prints "name value unit" lines: listings completed and their rate, the time of one
listing (median, p90), pages and records received.
)";

struct Options {
  std::string endpoint;
  int clients = 50;
  double seconds = 30;
  std::string user;
  int64_t page = 2000;
};

// One loop's position: which group of states, which cursor, since when.
struct Loop {
  std::unique_ptr<zmq::socket_t> socket;
  int group = 0;
  std::optional<UnitKey> after;
  int64_t listing_start_us = 0;
  int64_t page_sent_us = 0;
  uint64_t tag = 0;
  bool in_flight = false;
};

const std::vector<std::vector<std::string>> kGroups = {{"running"}, {"queued", "held"}};

int Run(const Options& o) {
  zmq::context_t context(1);
  std::vector<Loop> loops(o.clients);
  for (Loop& l : loops) {
    l.socket = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
    l.socket->set(zmq::sockopt::linger, 0);
    l.socket->connect(o.endpoint);
  }
  auto send = [&](Loop& l) {
    QueryRequest q;
    if (o.user != "*") q.user = o.user;
    q.states = kGroups[l.group];
    q.limit = o.page;
    q.after = l.after;
    const std::string bytes = Encode(q, std::to_string(++l.tag));
    l.page_sent_us = bench::NowUs();
    l.socket->send(zmq::buffer(bytes), zmq::send_flags::none);
    l.in_flight = true;
  };
  const int64_t start = bench::NowUs();
  const int64_t end = start + static_cast<int64_t>(o.seconds * 1e6);
  for (Loop& l : loops) {
    l.listing_start_us = bench::NowUs();
    send(l);
  }
  std::vector<double> listing_ms, page_ms;
  int64_t pages = 0, records = 0, errors = 0;
  std::vector<zmq::pollitem_t> items(loops.size());
  while (true) {
    const int64_t now = bench::NowUs();
    bool any = false;
    for (size_t i = 0; i < loops.size(); ++i) {
      items[i] = {static_cast<void*>(*loops[i].socket), 0, ZMQ_POLLIN, 0};
      any = any || loops[i].in_flight;
    }
    if (!any || now > end + 60'000'000) break;  // all done, or a minute past the end
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
    for (size_t i = 0; i < loops.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      Loop& l = loops[i];
      zmq::message_t frame;
      if (!l.socket->recv(frame, zmq::recv_flags::dontwait)) continue;
      const int64_t got = bench::NowUs();
      Result<Envelope> env = Decode(frame.to_string_view());
      if (!env || env->req != std::to_string(l.tag)) continue;  // not ours: keep waiting
      l.in_flight = false;
      page_ms.push_back((got - l.page_sent_us) / 1000.0);
      ++pages;
      const auto* reply = std::get_if<QueryReply>(&env->message);
      if (reply == nullptr) {
        if (++errors == 1) {
          const auto* e = std::get_if<ErrorReply>(&env->message);
          std::cerr << "corral-query-storm: " << (e ? e->message : "unexpected reply") << "\n";
        }
        l.group = 0;
        l.after.reset();
      } else {
        records += static_cast<int64_t>(reply->jobs.size());
        if (reply->next) {
          l.after = reply->next;
        } else if (++l.group < static_cast<int>(kGroups.size())) {
          l.after.reset();
        } else {
          listing_ms.push_back((bench::NowUs() - l.listing_start_us) / 1000.0);
          l.group = 0;
          l.after.reset();
          if (bench::NowUs() >= end) continue;  // this loop is done
          l.listing_start_us = bench::NowUs();
        }
      }
      send(l);
    }
  }
  const double secs = (bench::NowUs() - start) / 1e6;
  printf("storm_clients %d clients\n", o.clients);
  printf("storm_seconds %.1f s\n", secs);
  printf("storm_listings %zu listings\n", listing_ms.size());
  printf("storm_listings_per_s %.2f per_s\n", listing_ms.size() / secs);
  printf("storm_listing_median %.1f ms\n", bench::Median(listing_ms));
  printf("storm_listing_p90 %.1f ms\n", bench::Percentile(listing_ms, 90));
  printf("storm_pages %lld pages\n", static_cast<long long>(pages));
  printf("storm_page_round_trip_median %.2f ms\n", bench::Median(page_ms));
  printf("storm_records_per_s %.0f per_s\n", records / secs);
  printf("storm_errors %lld replies\n", static_cast<long long>(errors));
  return errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace corral

int main(int argc, char** argv) {
  corral::Options o;
  if (const passwd* pw = getpwuid(getuid())) o.user = pw->pw_name;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "corral-query-storm: " << a << " needs a value\n";
        exit(2);
      }
      return argv[++i];
    };
    if (a == "--endpoint") o.endpoint = value();
    else if (a == "--clients") o.clients = std::stoi(value());
    else if (a == "--seconds") o.seconds = std::stod(value());
    else if (a == "--user") o.user = value();
    else if (a == "--page") o.page = std::stoll(value());
    else {
      std::cerr << "corral-query-storm: unknown option '" << a << "'\n" << corral::kUsage;
      return 2;
    }
  }
  if (o.endpoint.empty() || o.clients < 1) {
    std::cerr << corral::kUsage;
    return 2;
  }
  try {
    return corral::Run(o);
  } catch (const zmq::error_t& e) {
    std::cerr << "corral-query-storm: " << e.what() << "\n";
    return 1;
  }
}
