// Peer-credential parsing and the endpoints file (written atomically via rename).
#include "common/transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <cstdio>
#include <fstream>

namespace corral {

Result<UnixAddress> UnixSocketAddress(const std::string& path) {
  UnixAddress out;
  out.addr.sun_family = AF_UNIX;
  if (path.empty() || path == "@") {
    return Error(Code::kInvalidArgument, "an ipc:// endpoint needs a path");
  }
  if (path.size() >= sizeof out.addr.sun_path) {
    return Error(Code::kInvalidArgument,
                 "the ipc:// path '" + path + "' is longer than " +
                     std::to_string(sizeof out.addr.sun_path - 1) +
                     " bytes, too long for a socket path");
  }
  std::memcpy(out.addr.sun_path, path.data(), path.size());
  out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  if (path[0] == '@') {
    out.abstract = true;
    out.addr.sun_path[0] = '\0';
    out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  }
  return out;
}

Status WriteEndpointsFile(const std::string& path, const std::vector<std::string>& endpoints) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const std::string& e : endpoints) out << e << '\n';
    if (!out.flush()) return Error(Code::kInternal, tmp + ": cannot write endpoints file");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Error(Code::kInternal, path + ": cannot rename endpoints file into place");
  }
  return OkStatus();
}

Result<std::vector<std::string>> ReadEndpointsFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error(Code::kNotFound, path + ": no endpoints file (is the scheduler running?)");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

Result<int> PickFreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(Code::kUnavailable, std::string("socket: ") + strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Status s = Error(Code::kUnavailable, std::string("bind 127.0.0.1:0: ") + strerror(errno));
    close(fd);
    return std::unexpected(s);
  }
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace corral
