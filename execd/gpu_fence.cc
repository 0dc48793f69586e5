// GPU fencing with the cgroup v1 devices controller: detection at start and the deny rules
// of an attempt (see gpu_fence.h). Its cgroup is created by the shepherd
// (gpu_fence_setup.cc), which joins and removes it.
#include "execd/gpu_fence.h"

#include "execd/launcher.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "execd/inventory.h"
#include "execd/spool.h"

namespace corral {
namespace {

namespace fs = std::filesystem;

// NVIDIA's GPU minors stop below nvidia-modeset (254) and nvidiactl (255); this bound only
// keeps a strange name from overflowing.
constexpr int kMaxGpuIndex = 1 << 20;

constexpr char kEnvironmentOnly[] = "CUDA_VISIBLE_DEVICES only";

// Splits `text` at `sep`, calling `each` on every part (empty ones included).
template <typename F>
void ForEachPart(std::string_view text, char sep, F&& each) {
  size_t pos = 0;
  for (;;) {
    const size_t end = text.find(sep, pos);
    each(text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    if (end == std::string_view::npos) return;
    pos = end + 1;
  }
}

// Whether some cgroup2 file system is mounted (a v2-only or hybrid machine).
bool HasCgroup2(std::string_view proc_mounts) {
  bool found = false;
  ForEachPart(proc_mounts, '\n', [&](std::string_view line) {
    if (line.find(" cgroup2 ") != std::string_view::npos) found = true;
  });
  return found;
}

// Whether one field of a devices.list entry ("195", "*") covers `number`.
bool Covers(std::string_view field, unsigned number) {
  return field == "*" || field == std::to_string(number);
}

// Makes the attempt-parent of the fence and checks, in a probe cgroup below it, that a deny
// rule for `node` takes effect. The reason it does not, or "".
std::string ProbeParent(const std::string& parent, const GpuDeviceNode& node) {
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (!fs::is_directory(parent, ec)) return "cannot create " + parent;
  const std::string probe = parent + "/probe";
  rmdir(probe.c_str());
  if (mkdir(probe.c_str(), 0755) != 0) {
    return "cannot create " + probe + ": " + std::strerror(errno);
  }
  std::string why;
  const std::string rule = GpuDenyRules({node}, {}).front();
  if (const int err = WriteCgroupFile(probe + "/devices.deny", rule); err != 0) {
    why = "cannot write '" + rule + "' to " + probe + "/devices.deny: " + std::strerror(err);
  } else if (Result<std::string> list = ReadSmallFile(probe + "/devices.list"); !list) {
    why = list.error().message();
  } else if (DevicesListAllows(*list, node)) {
    // A deny-by-default parent with a wildcard allow ("c 195:* rwm"): a deny only removes
    // an exact entry, so it would change nothing.
    why = "a deny rule for /dev/nvidia" + std::to_string(node.id) +
          " has no effect under the execd's own devices cgroup (it allows them by a wildcard)";
  }
  rmdir(probe.c_str());
  return why;
}

}  // namespace

std::optional<int> NvidiaGpuIndex(std::string_view name) {
  constexpr std::string_view kPrefix = "nvidia";
  if (!name.starts_with(kPrefix)) return std::nullopt;
  const std::string_view digits = name.substr(kPrefix.size());
  if (digits.empty() || digits.size() > 7 || (digits.size() > 1 && digits[0] == '0')) {
    return std::nullopt;
  }
  int index = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    index = index * 10 + (c - '0');
  }
  if (index > kMaxGpuIndex) return std::nullopt;
  return index;
}

std::vector<GpuDeviceNode> ListGpuDeviceNodes(const std::string& dev_dir) {
  std::vector<GpuDeviceNode> nodes;
  DIR* dir = opendir(dev_dir.c_str());
  if (dir == nullptr) return nodes;
  while (const dirent* entry = readdir(dir)) {
    const std::optional<int> id = NvidiaGpuIndex(entry->d_name);
    if (!id) continue;
    struct stat st {};
    if (stat((dev_dir + "/" + entry->d_name).c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) {
      continue;
    }
    nodes.push_back({*id, major(st.st_rdev), minor(st.st_rdev)});
  }
  closedir(dir);
  std::sort(nodes.begin(), nodes.end(),
            [](const GpuDeviceNode& a, const GpuDeviceNode& b) { return a.id < b.id; });
  return nodes;
}

std::vector<std::string> GpuDenyRules(const std::vector<GpuDeviceNode>& nodes,
                                      const std::vector<int>& allocated) {
  std::vector<std::string> rules;
  for (const GpuDeviceNode& node : nodes) {
    if (std::find(allocated.begin(), allocated.end(), node.id) != allocated.end()) continue;
    rules.push_back("c " + std::to_string(node.major) + ":" + std::to_string(node.minor) + " rwm");
  }
  return rules;
}

std::optional<std::string> DevicesCgroupMount(std::string_view proc_mounts) {
  std::optional<std::string> found;
  ForEachPart(proc_mounts, '\n', [&](std::string_view line) {
    // device mount-point type options dump pass
    std::vector<std::string_view> fields;
    ForEachPart(line, ' ', [&](std::string_view field) { fields.push_back(field); });
    if (found || fields.size() < 4 || fields[2] != "cgroup") return;
    ForEachPart(fields[3], ',', [&](std::string_view option) {
      if (option == "devices") found = std::string(fields[1]);
    });
  });
  return found;
}

bool DevicesListAllows(std::string_view devices_list, const GpuDeviceNode& node) {
  bool allows = false;
  bool allow_all = false;
  int entries = 0;
  ForEachPart(devices_list, '\n', [&](std::string_view line) {
    if (line.empty()) return;
    ++entries;
    // "c 195:1 rwm", "a *:* rwm"
    const size_t space = line.find(' ');
    const size_t colon = line.find(':');
    const size_t space2 = line.rfind(' ');
    if (space == std::string_view::npos || colon == std::string_view::npos || space2 <= colon) {
      return;
    }
    const std::string_view type = line.substr(0, space);
    const std::string_view major = line.substr(space + 1, colon - space - 1);
    const std::string_view minor = line.substr(colon + 1, space2 - colon - 1);
    const std::string_view access = line.substr(space2 + 1);
    if (type == "a" && major == "*" && minor == "*" && access == "rwm") allow_all = true;
    if ((type == "a" || type == "c") && Covers(major, node.major) && Covers(minor, node.minor) &&
        access.find_first_of("rw") != std::string_view::npos) {
      allows = true;
    }
  });
  if (allow_all && entries == 1) return false;  // allow by default: exceptions are hidden
  return allows;
}

GpuFencing DetectGpuFencing(const std::string& node, const std::string& dev_dir) {
  GpuFencing out;
  out.nodes = ListGpuDeviceNodes(dev_dir);
  if (out.nodes.empty()) {
    out.description = std::string(kEnvironmentOnly) + " (no " + dev_dir + "/nvidia* devices)";
    return out;
  }
  std::vector<int> ids;
  for (const GpuDeviceNode& n : out.nodes) ids.push_back(n.id);
  const std::string found = dev_dir + "/nvidia{" + JoinIds(ids) + "}";
  auto environment_only = [&](const std::string& why) {
    out.description = std::string(kEnvironmentOnly) + " (" + why + "; found " + found + ")";
    return out;
  };
  Result<std::string> mounts = ReadSmallFile("/proc/self/mounts");
  if (!mounts) return environment_only(mounts.error().message());
  const std::optional<std::string> mount = DevicesCgroupMount(*mounts);
  if (!mount) {
    return environment_only(HasCgroup2(*mounts)
                                ? "cgroup v2: its eBPF device controller is not implemented"
                                : "no cgroup v1 devices controller is mounted");
  }
  if (geteuid() != 0) return environment_only("not root: cannot create devices cgroups");
  Result<std::string> self = ReadSmallFile("/proc/self/cgroup");
  if (!self) return environment_only(self.error().message());
  const std::optional<std::string> own = OwnCgroup(*self, "devices");
  if (!own) return environment_only("this process is in no devices cgroup");
  const std::string parent =
      *mount + (*own == "/" ? "" : *own) + "/corral/" + (node.empty() ? std::string("node") : node);
  if (std::string why = ProbeParent(parent, out.nodes.front()); !why.empty()) {
    return environment_only(why);
  }
  out.mechanism = GpuFenceMechanism::kDevicesCgroupV1;
  out.cgroup_parent = parent;
  out.description = "devices cgroup v1 at " + parent + " (denies each job the device nodes of " +
                    found + " it was not given)";
  return out;
}

GpuFencePlan PlanGpuFence(const GpuFencing& fencing, const std::string& attempt_name,
                          const std::vector<int>& allocated) {
  GpuFencePlan plan;
  if (fencing.mechanism != GpuFenceMechanism::kDevicesCgroupV1) return plan;
  plan.deny = GpuDenyRules(fencing.nodes, allocated);
  if (!plan.deny.empty()) plan.cgroup_dir = fencing.cgroup_parent + "/" + attempt_name;
  return plan;
}

}  // namespace corral
