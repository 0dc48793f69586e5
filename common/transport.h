// Small helpers over cppzmq shared by the scheduler, the execd and the client
// library: kernel peer credentials of an ipc:// connection, and endpoint files.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace corral {

// Who is on the other end of an ipc:// connection, as the kernel reports it (SO_PEERCRED,
// read by scheduler/ipc_endpoints.cc).
struct PeerCredentials {
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t pid = 0;
};

// The address of an ipc:// path: a file, or the abstract namespace when it starts with
// '@' (a leading NUL, no terminator), as libzmq reads it. InvalidArgument when it is
// empty or too long for sun_path. Used by both ends (client and scheduler).
struct UnixAddress {
  sockaddr_un addr{};
  socklen_t len = 0;
  bool abstract = false;
};
Result<UnixAddress> UnixSocketAddress(const std::string& path);

// The endpoints a scheduler bound, one per line, in STATE_DIR/endpoints.
Status WriteEndpointsFile(const std::string& path, const std::vector<std::string>& endpoints);
Result<std::vector<std::string>> ReadEndpointsFile(const std::string& path);

// A tcp port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
// Local clusters write it into the scheduler's config so that a restarted scheduler
// listens where its execds already connect.
Result<int> PickFreeLoopbackPort();

}  // namespace corral
