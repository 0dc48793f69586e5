// The shepherd's part of GPU fencing: creating an attempt's devices cgroup with its deny
// rules (see gpu_fence.h). Apart from the detection in gpu_fence.cc, which the execd runs,
// because corral-spawner links this and not that.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "execd/gpu_fence.h"

namespace corral {

int WriteCgroupFile(const std::string& path, std::string_view text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const ssize_t n = write(fd, text.data(), text.size());
  const int err = n == static_cast<ssize_t>(text.size()) ? 0 : (n < 0 ? errno : EIO);
  close(fd);
  return err;
}

Status SetUpGpuFence(const GpuFencePlan& plan) {
  const std::string& dir = plan.cgroup_dir;
  rmdir(dir.c_str());  // a stale one from an attempt of the same name (empty, or EBUSY)
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Error(Code::kInternal,
                 "cannot create the GPU devices cgroup " + dir + ": " + std::strerror(errno));
  }
  const std::string deny = dir + "/devices.deny";
  for (const std::string& rule : plan.deny) {
    if (const int err = WriteCgroupFile(deny, rule); err != 0) {
      rmdir(dir.c_str());
      return Error(Code::kInternal,
                   "cannot write '" + rule + "' to " + deny + ": " + std::strerror(err));
    }
  }
  return OkStatus();
}

}  // namespace corral
