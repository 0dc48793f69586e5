// GPU fencing beyond CUDA_VISIBLE_DEVICES (which a job may ignore or overwrite): where the
// execd runs as root, finds /dev/nvidiaN device nodes and a writable cgroup v1 devices
// controller, each attempt runs in a devices cgroup of its own that denies the device nodes
// of the GPUs it was not given. /dev/nvidiactl, /dev/nvidia-uvm and every other device stay
// as the execd's own devices cgroup has them. Otherwise (no GPU device nodes, not root,
// cgroup v2 only) nothing is done and CUDA_VISIBLE_DEVICES is the only fence. The v2
// devices controller (a BPF_PROG_TYPE_CGROUP_DEVICE program) is not implemented.
// Detection and the deny rules are decided here before fork; the shepherd creates, joins
// (in the job child, before exec) and removes the attempt's cgroup (execd/shepherd.cc).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace corral {

// An NVIDIA GPU's device node /dev/nvidia<id>: normally character device 195:<id>.
struct GpuDeviceNode {
  int id = 0;
  unsigned major = 0;
  unsigned minor = 0;
  bool operator==(const GpuDeviceNode&) const = default;
};

// The GPU index in a /dev entry's name: "nvidia3" -> 3. Nullopt for nvidiactl, nvidia-uvm,
// nvidia-modeset, nvidia-caps, a bare "nvidia", leading zeros ("nvidia01") and anything
// else. Pure.
std::optional<int> NvidiaGpuIndex(std::string_view name);

// The GPU device nodes in `dev_dir` (character devices named as NvidiaGpuIndex accepts,
// symlinks followed), by ascending id. Empty when there are none or `dev_dir` is unreadable.
std::vector<GpuDeviceNode> ListGpuDeviceNodes(const std::string& dev_dir);

// The devices.deny lines for a job given the GPUs `allocated`: "c MAJOR:MINOR rwm" for
// each node in `nodes` whose id is not allocated, in the order of `nodes`. Pure.
std::vector<std::string> GpuDenyRules(const std::vector<GpuDeviceNode>& nodes,
                                      const std::vector<int>& allocated);

// The mount point of the cgroup v1 hierarchy that holds the devices controller, from the
// text of /proc/self/mounts ("cgroup /sys/fs/cgroup/devices cgroup rw,devices 0 0").
// Nullopt when there is none (no v1 hierarchy has it, e.g. a cgroup v2-only machine). Pure.
std::optional<std::string> DevicesCgroupMount(std::string_view proc_mounts);

// Whether a v1 devices.list (as read from a cgroup) still lets `node` be opened for
// reading or writing. An allow-by-default cgroup shows only "a *:* rwm" whatever it denies,
// so that text counts as not allowing (its exceptions do not show); otherwise the listed
// entries are what is allowed. Pure.
bool DevicesListAllows(std::string_view devices_list, const GpuDeviceNode& node);

enum class GpuFenceMechanism { kEnvironmentOnly, kDevicesCgroupV1 };

struct GpuFencing {
  GpuFenceMechanism mechanism = GpuFenceMechanism::kEnvironmentOnly;
  std::string cgroup_parent;         // kDevicesCgroupV1: attempts get <parent>/<id>.<attempt>
  std::vector<GpuDeviceNode> nodes;  // the GPU device nodes found at start
  std::string description;           // for the log line "GPU fencing: <description>"
};

// Whether the fence can be active here: GPU device nodes in `dev_dir` (injectable for
// tests), a cgroup v1 devices hierarchy, root, and a probe cgroup under the parent
// <mount>/<this process's own devices cgroup>/corral/<node> (created here) in which a
// deny rule takes effect. Never fails: anything missing gives kEnvironmentOnly, with the
// reason in `description`. Reads /proc/self/mounts, /proc/self/cgroup and `dev_dir`.
GpuFencing DetectGpuFencing(const std::string& node, const std::string& dev_dir = "/dev");

// One attempt's fence, prepared before the shepherd is forked.
struct GpuFencePlan {
  std::string cgroup_dir;         // empty: no fence for this attempt
  std::vector<std::string> deny;  // lines for its devices.deny, one write each
};

// The attempt's fence: <cgroup_parent>/<attempt_name> denying every GPU device node not in
// `allocated`. Empty (no cgroup) when the fence is inactive or nothing is to be denied.
GpuFencePlan PlanGpuFence(const GpuFencing& fencing, const std::string& attempt_name,
                          const std::vector<int>& allocated);

// Creates plan.cgroup_dir (a stale empty one of the same name is replaced) and writes its
// deny rules. Internal, naming the file and the rule, with nothing left behind, on failure.
// Only open/write/mkdir/rmdir and malloc: callable in a fork of a threaded process.
Status SetUpGpuFence(const GpuFencePlan& plan);

// Writes `text` to an existing control file in one write(); the errno of the failure, or 0.
int WriteCgroupFile(const std::string& path, std::string_view text);

}  // namespace corral
