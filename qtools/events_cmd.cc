// corral events. The scheduler numbers every committed change, keeps the numbered events
// in SQLite for event_retention and publishes each on its event endpoint once it is on
// disk. A subscriber therefore (1) subscribes, (2) asks for what it missed since its
// last sequence number (EventsRequest), (3) prints live events in order, fetching any gap
// it sees in the numbers (the PUB socket drops nothing while connected, but a slow joiner
// or a reconnect can). No event is printed twice or skipped while it is still kept.
#include "qtools/events_cmd.h"

#include <csignal>
#include <cstdint>
#include <limits>
#include <zmq.hpp>

#include "common/protocol.h"
#include "qtools/cli.h"
#include "qtools/client.h"

namespace corral {
namespace {

constexpr std::string_view kUsage =
    R"(usage: corral events [--user USER] [--job ID] [--since SEQ] [--no-follow]

Print job and node state changes as they happen, one JSON object per line:
  {"seq":812,"time":1764037000.123,"kind":"job","job":42,"task":null,"attempt":1,
   "owner":"alice","name":"seg","node":"node1","from":"queued","to":"running",
   "reason":"","exit_code":null}
kind "node" events have node, from and to (up, unreachable, disabled). The scheduler
pushes them (no polling): a workflow tool can react to a job's end at once.

options:
  --user USER   only jobs of USER (node events are always shown)
  --job ID      only job ID (and its array tasks; no node events)
  --since SEQ   first print every kept event after sequence number SEQ (the "seq" of
                the last event you saw), then follow: resuming loses nothing the
                scheduler still keeps (event_retention, default 1 day); if older ones
                were dropped, a warning on stderr says which
  --no-follow   print the kept events after --since SEQ and exit
  -help, --help this text

Without --since, only events from now on are printed. Runs until interrupted (exit 0).
exit status: 0 interrupted or done; 1 bad option or the scheduler cannot be reached.
environment: CORRAL_SCHEDULER  endpoint of the scheduler (set by "corral local env")
)";

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct Filter {
  std::string user;
  JobId job = 0;
  bool Matches(const Event& e) const {
    if (job != 0) return e.kind == "job" && e.job == job;
    if (!user.empty()) return e.kind != "job" || e.owner == user;
    return true;
  }
};

}  // namespace

int RunEvents(const std::vector<std::string>& args) {
  Filter filter;
  std::optional<int64_t> since;
  bool follow = true;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto number = [&](int64_t& out) -> bool {
      if (i + 1 >= args.size()) return false;
      try {
        size_t used = 0;
        out = std::stoll(args[++i], &used);
        return used == args[i].size() && out >= 0;
      } catch (const std::exception&) {
        return false;
      }
    };
    if (cli::IsHelp(a)) {
      cli::Out(kUsage);
      return 0;
    } else if (a == "--user" && i + 1 < args.size()) {
      filter.user = args[++i];
    } else if (a == "--job") {
      if (!number(filter.job) || filter.job == 0) {
        return cli::Fail("corral events", Status(Code::kInvalidArgument, "--job needs a job id"));
      }
    } else if (a == "--since") {
      int64_t s = 0;
      if (!number(s)) {
        return cli::Fail("corral events",
                         Status(Code::kInvalidArgument, "--since needs a sequence number (>= 0)"));
      }
      since = s;
    } else if (a == "--no-follow") {
      follow = false;
    } else {
      return cli::Fail("corral events", Status(Code::kInvalidArgument,
                                               "unknown option or missing value '" + a +
                                                   "' (see corral events --help)"));
    }
  }
  if (!follow && !since) {
    return cli::Fail("corral events",
                     Status(Code::kInvalidArgument, "--no-follow needs --since SEQ"));
  }
  Result<Client> client = Client::ConnectFromEnv();
  if (!client) return cli::Fail("corral events", client.error());
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  client->SetInterruptFlag(&g_stop);

  // Where to subscribe, and the newest event so far.
  auto fetch = [&](int64_t after) -> Result<EventsReply> {
    Result<Message> reply = client->Call(EventsRequest{after, 10000}, cli::kCallTimeoutMs);
    if (!reply) return std::unexpected(reply.error());
    auto* r = std::get_if<EventsReply>(&*reply);
    if (r == nullptr) return Error(Code::kInternal, "unexpected reply to an events request");
    return std::move(*r);
  };
  Result<EventsReply> first = fetch(std::numeric_limits<int64_t>::max() / 2);
  if (!first) return cli::Fail("corral events", first.error());
  int64_t printed = since ? *since : first->last;

  zmq::context_t context(1);
  zmq::socket_t sub(context, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "");
  if (follow) {
    try {
      sub.connect(first->publish);
    } catch (const zmq::error_t& e) {
      return cli::Fail("corral events", Status(Code::kUnavailable, "cannot subscribe to " +
                                                                       first->publish + ": " +
                                                                       e.what()));
    }
  }
  auto print = [&](const Event& e) {
    if (filter.Matches(e)) cli::Out(EncodeEvent(e) + "\n");
  };
  // Everything kept after `printed`, in pages; false when the scheduler cannot answer.
  bool warned = false;
  auto catch_up = [&]() -> bool {
    while (!g_stop) {
      Result<EventsReply> page = fetch(printed);
      if (!page) {
        cli::Fail("corral events", page.error());
        return false;
      }
      if (!warned && page->first_kept > printed + 1 && page->last > printed) {
        cli::Err("corral events: events " + std::to_string(printed + 1) + " to " +
                 std::to_string(page->first_kept - 1) +
                 " are no longer kept (event_retention); continuing from " +
                 std::to_string(page->first_kept) + "\n");
        warned = true;
      }
      for (const Event& e : page->events) {
        if (e.seq > printed) print(e);
      }
      // Events the caller may not see are left out of a page; its end is still `last`
      // or the page's last event, whichever the page reached.
      if (page->events.size() < 10000) {
        printed = std::max(printed, page->last);
        return true;
      }
      printed = page->events.back().seq;
    }
    return true;
  };
  if (since && !catch_up()) return 1;
  if (!follow) return 0;
  // The slow joiner: events committed while the subscription was being set up.
  if (!catch_up()) return 1;
  while (!g_stop) {
    zmq::pollitem_t item{static_cast<void*>(sub), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(200));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return cli::Fail("corral events", Status(Code::kInternal, std::string("poll: ") + e.what()));
    }
    if (!(item.revents & ZMQ_POLLIN)) continue;
    zmq::message_t frame;
    if (!sub.recv(frame, zmq::recv_flags::dontwait)) continue;
    Result<Event> e = DecodeEvent(frame.to_string_view());
    if (!e || e->seq <= printed) continue;
    if (e->seq > printed + 1 || (e->kind == "job" && e->owner.empty())) {
      // A gap, or an event published without names (private_jobs): from the store.
      if (!catch_up()) return 1;
      continue;
    }
    print(*e);
    printed = e->seq;
  }
  return 0;
}

}  // namespace corral
