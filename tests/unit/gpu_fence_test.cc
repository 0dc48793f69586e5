// The GPU fence: the pure parts (GPU names in /dev, deny rules, mounts, devices.list), and,
// as root with a writable cgroup v1 devices controller, the real thing on fake device nodes
// (character 195:N made with mknod in a temporary directory, no driver behind them). An
// open() that the devices cgroup lets through reaches the missing driver and fails with
// ENXIO; one that it refuses fails with EPERM. Waits are poll() timeouts bounded by
// deadlines; no test sleeps.
#include "execd/gpu_fence.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "execd/inventory.h"
#include "execd/launcher.h"
#include "temp_dir.h"
#include "test_files.h"
#include "tests/unit/launcher_wait.h"

namespace corral {
using corral::testing::ReadFile;
using corral::testing::TempDir;

namespace {

namespace fs = std::filesystem;


// What the tests open, in this order: four GPUs and the control device, which no fence
// touches.
const std::vector<std::string> kProbed = {"nvidia0", "nvidia1", "nvidia2", "nvidia3", "nvidiactl"};

std::vector<GpuDeviceNode> FourGpus() {
  return {{0, 195, 0}, {1, 195, 1}, {2, 195, 2}, {3, 195, 3}};
}

// The fake device nodes nvidia0..3 (195:0..3) and nvidiactl (195:255) in `dir`; false (with
// a message) when mknod is not allowed here.
bool MakeFakeNodes(const std::string& dir) {
  for (int i = 0; i < 4; ++i) {
    const std::string path = dir + "/nvidia" + std::to_string(i);
    if (mknod(path.c_str(), S_IFCHR | 0666, makedev(195, i)) != 0) {
      MESSAGE("skipped: cannot mknod " << path << ": " << std::string(std::strerror(errno)));
      return false;
    }
  }
  const std::string ctl = dir + "/nvidiactl";
  if (mknod(ctl.c_str(), S_IFCHR | 0666, makedev(195, 255)) != 0) return false;
  return true;
}

// Forks a child that joins the cgroup of `fence_dir` (none when empty) and open()s each of
// kProbed in `dev`; returns the errno of each (0: it opened), or an empty vector when the
// child could not join.
std::vector<int> OpenErrnos(const std::string& dev, const std::string& fence_dir) {
  int pipe_fds[2];
  REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(pipe_fds[0]);
    if (!fence_dir.empty()) {
      const std::string procs = fence_dir + "/cgroup.procs";
      const std::string pid = std::to_string(getpid()) + "\n";
      const int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write(fd, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
        _exit(2);
      }
      close(fd);
    }
    for (const std::string& name : kProbed) {
      const int fd = open((dev + "/" + name).c_str(), O_RDONLY | O_CLOEXEC);
      const int err = fd < 0 ? errno : 0;
      if (fd >= 0) close(fd);
      if (write(pipe_fds[1], &err, sizeof(err)) != sizeof(err)) _exit(3);
    }
    _exit(0);
  }
  close(pipe_fds[1]);
  std::vector<int> errs;
  int err = 0;
  while (read(pipe_fds[0], &err, sizeof(err)) == sizeof(err)) errs.push_back(err);
  close(pipe_fds[0]);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  return errs;
}

// Removes the node's fence parent at scope exit, and <...>/corral when this test made it.
class FenceParentCleanup {
 public:
  explicit FenceParentCleanup(const std::string& parent) : parent_(parent) {
    std::error_code ec;
    corral_existed_ = fs::exists(fs::path(parent).parent_path(), ec);
  }
  ~FenceParentCleanup() {
    if (parent_.empty()) return;
    rmdir(parent_.c_str());
    if (!corral_existed_) rmdir(fs::path(parent_).parent_path().c_str());
  }

 private:
  std::string parent_;
  bool corral_existed_ = true;
};

// The parent DetectGpuFencing would use for `node`: <devices mount>/<own>/corral/<node>.
std::string ExpectedParent(const std::string& node) {
  const std::optional<std::string> mount = DevicesCgroupMount(ReadFile("/proc/self/mounts"));
  if (!mount) return "";
  std::string own = "/";
  std::istringstream lines(ReadFile("/proc/self/cgroup"));
  for (std::string line; std::getline(lines, line);) {
    const size_t a = line.find(':');
    const size_t b = line.find(':', a + 1);
    if (("," + line.substr(a + 1, b - a - 1) + ",").find(",devices,") != std::string::npos) {
      own = line.substr(b + 1);
    }
  }
  return *mount + (own == "/" ? "" : own) + "/corral/" + node;
}

// Detects the fence on fake nodes in `dev`; nullopt (with the reason as a MESSAGE) when this
// machine cannot run the real test.
std::optional<GpuFencing> DetectOnFakeNodes(const std::string& dev, const std::string& node) {
  if (geteuid() != 0) {
    MESSAGE("skipped: not root, so no devices cgroup and no mknod");
    return std::nullopt;
  }
  if (!MakeFakeNodes(dev)) return std::nullopt;
  GpuFencing fencing = DetectGpuFencing(node, dev);
  if (fencing.mechanism != GpuFenceMechanism::kDevicesCgroupV1) {
    MESSAGE("skipped: no writable cgroup v1 devices controller: " << fencing.description);
    return std::nullopt;
  }
  MESSAGE("GPU fencing: " << fencing.description);
  return fencing;
}

}  // namespace

TEST_CASE("gpu fence: GPU indices are read from /dev names, and only from nvidiaN") {
  CHECK(NvidiaGpuIndex("nvidia0") == 0);
  CHECK(NvidiaGpuIndex("nvidia3") == 3);
  CHECK(NvidiaGpuIndex("nvidia12") == 12);
  for (const char* other :
       {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "nvidia-caps", "nvidia",
        "nvidia01", "nvidia3a", "nvidia-1", "xnvidia1", "nvidia99999999", "", "nvme0"}) {
    CAPTURE(other);
    CHECK_FALSE(NvidiaGpuIndex(other).has_value());
  }

  // Regular files with GPU names are not device nodes; a missing directory has none.
  TempDir dir;
  std::ofstream(dir.path() + "/nvidia0") << "";
  CHECK(ListGpuDeviceNodes(dir.path()).empty());
  CHECK(ListGpuDeviceNodes(dir.path() + "/missing").empty());
  const GpuFencing none = DetectGpuFencing("gpunode", dir.path());
  CHECK(none.mechanism == GpuFenceMechanism::kEnvironmentOnly);
  CHECK(none.description == "CUDA_VISIBLE_DEVICES only (no " + dir.path() + "/nvidia* devices)");
}

TEST_CASE("gpu fence: the deny rules name every GPU device node the job was not given") {
  CHECK(GpuDenyRules(FourGpus(), {1, 3}) == std::vector<std::string>{"c 195:0 rwm", "c 195:2 rwm"});
  CHECK(GpuDenyRules(FourGpus(), {}) ==
        std::vector<std::string>{"c 195:0 rwm", "c 195:1 rwm", "c 195:2 rwm", "c 195:3 rwm"});
  CHECK(GpuDenyRules(FourGpus(), {3, 2, 1, 0}).empty());
  CHECK(GpuDenyRules(FourGpus(), {0, 7}) ==  // 7 has no node: nothing to allow or deny
        std::vector<std::string>{"c 195:1 rwm", "c 195:2 rwm", "c 195:3 rwm"});
  // The rule uses the node's own numbers, should a minor differ from the index.
  CHECK(GpuDenyRules({{1, 195, 5}}, {}) == std::vector<std::string>{"c 195:5 rwm"});

  GpuFencing fencing;
  fencing.nodes = FourGpus();
  fencing.cgroup_parent = "/sys/fs/cgroup/devices/corral/n1";
  // Inactive: no cgroup whatever the allocation.
  CHECK(PlanGpuFence(fencing, "42.1", {1}).cgroup_dir.empty());
  fencing.mechanism = GpuFenceMechanism::kDevicesCgroupV1;
  const GpuFencePlan plan = PlanGpuFence(fencing, "42.1", {1, 3});
  CHECK(plan.cgroup_dir == "/sys/fs/cgroup/devices/corral/n1/42.1");
  CHECK(plan.deny == std::vector<std::string>{"c 195:0 rwm", "c 195:2 rwm"});
  // All GPUs given: nothing to deny, so no cgroup.
  CHECK(PlanGpuFence(fencing, "42.1", {0, 1, 2, 3}).cgroup_dir.empty());
}

TEST_CASE("gpu fence: the v1 devices mount is found; a v2-only machine has none") {
  const std::string hybrid =
      "tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n"
      "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n"
      "cgroup /sys/fs/cgroup/devices cgroup rw,nosuid,relatime,devices 0 0\n"
      "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
  CHECK(DevicesCgroupMount(hybrid) == "/sys/fs/cgroup/devices");
  CHECK(DevicesCgroupMount("cgroup /cg/a cgroup rw,cpu,devices,freezer 0 0\n") == "/cg/a");
  CHECK_FALSE(DevicesCgroupMount("cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n"));
  CHECK_FALSE(DevicesCgroupMount("devices /devices ext4 rw 0 0\n"));
  CHECK_FALSE(DevicesCgroupMount(""));
}

TEST_CASE("gpu fence: devices.list tells whether a deny rule can take effect") {
  const GpuDeviceNode gpu1{1, 195, 1};
  CHECK_FALSE(DevicesListAllows("a *:* rwm\n", gpu1));  // allow by default: denies are hidden
  CHECK(DevicesListAllows("c 1:3 rwm\nc 195:* rwm\n", gpu1));
  CHECK(DevicesListAllows("c *:* rw\n", gpu1));
  CHECK(DevicesListAllows("c 195:1 r\n", gpu1));
  CHECK_FALSE(DevicesListAllows("c 195:1 m\n", gpu1));
  CHECK_FALSE(DevicesListAllows("c 1:3 rwm\nc 195:0 rwm\nb *:* rwm\n", gpu1));
  CHECK_FALSE(DevicesListAllows("", gpu1));
}

TEST_CASE("gpu fence: a fence that cannot be created fails the attempt; the job never runs") {
  TempDir dir;
  GpuFencing fencing;
  fencing.mechanism = GpuFenceMechanism::kDevicesCgroupV1;
  fencing.cgroup_parent = dir.path() + "/no/such/parent";
  fencing.nodes = FourGpus();
  Result<std::unique_ptr<PosixLauncher>> launcher = PosixLauncher::Create(
      {.spool_dir = dir.path() + "/spool", .host = JobHost{"n", "h"}, .gpus = fencing});
  REQUIRE(launcher.has_value());
  Job job;
  job.id = 70;
  job.attempt = 1;
  job.uid = getuid();
  job.gid = getgid();
  job.spec.name = "gpu";
  job.spec.cwd = dir.path();
  job.spec.script = "#!/bin/sh\ntouch " + dir.path() + "/ran\n";
  job.alloc_gpus = {1};
  REQUIRE((*launcher)->Launch(job).has_value());
  std::optional<AttemptEnd> end = WaitForEnd(**launcher, {70, 1});
  REQUIRE(end.has_value());
  CHECK(end->exit_code == 1);
  CHECK(end->failure == "cannot create the GPU devices cgroup " + fencing.cgroup_parent +
                            "/70.1: No such file or directory");
  CHECK_FALSE(fs::exists(dir.path() + "/ran"));
}

TEST_CASE("gpu fence: a child in the devices cgroup opens only its GPUs (real cgroup v1)") {
  TempDir dev;
  const std::string node = "gpufence-" + std::to_string(getpid());
  FenceParentCleanup cleanup(ExpectedParent(node));
  const std::optional<GpuFencing> fencing = DetectOnFakeNodes(dev.path(), node);
  if (!fencing) return;
  CHECK(fencing->nodes == FourGpus());  // nvidiactl is not a GPU
  CHECK(fencing->cgroup_parent == ExpectedParent(node));

  // Without the fence, each open passes the cgroup and finds no driver.
  CHECK(OpenErrnos(dev.path(), "") == std::vector<int>{ENXIO, ENXIO, ENXIO, ENXIO, ENXIO});

  const GpuFencePlan plan = PlanGpuFence(*fencing, "7.1", {1, 3});
  REQUIRE(plan.cgroup_dir == fencing->cgroup_parent + "/7.1");
  const Status set_up = SetUpGpuFence(plan);
  REQUIRE_MESSAGE(set_up.ok(), set_up.message());
  const std::vector<int> fenced = OpenErrnos(dev.path(), plan.cgroup_dir);
  CHECK(rmdir(plan.cgroup_dir.c_str()) == 0);  // the child has exited: the cgroup is empty
  CHECK(fenced == std::vector<int>{EPERM, ENXIO, EPERM, ENXIO, ENXIO});
  for (size_t i = 0; i < fenced.size() && i < kProbed.size(); ++i) {
    MESSAGE("fenced to GPUs 1,3: open " << kProbed[i] << ": "
                                        << std::string(std::strerror(fenced[i])));
  }
}

TEST_CASE("gpu fence: a job launched with GPUs 1,3 can open only those; its cgroup goes") {
  TempDir dir;
  const std::string dev = dir.path() + "/dev";
  REQUIRE(mkdir(dev.c_str(), 0755) == 0);
  const std::string node = "gpujob-" + std::to_string(getpid());
  FenceParentCleanup cleanup(ExpectedParent(node));
  const std::optional<GpuFencing> fencing = DetectOnFakeNodes(dev, node);
  if (!fencing) return;
  if (access("/usr/bin/python3", X_OK) != 0) {
    MESSAGE("skipped: the job's probe needs /usr/bin/python3");
    return;
  }
  std::ofstream(dir.path() + "/probe.py")
      << "import errno, os, sys\n"
         "print('CUDA_VISIBLE_DEVICES=' + os.environ['CUDA_VISIBLE_DEVICES'])\n"
         "for name in ['nvidia0', 'nvidia1', 'nvidia2', 'nvidia3', 'nvidiactl']:\n"
         "    try:\n"
         "        os.close(os.open(sys.argv[1] + '/' + name, os.O_RDONLY))\n"
         "        print(name, 'opened')\n"
         "    except OSError as e:\n"
         "        print(name, errno.errorcode[e.errno])\n";
  Result<std::unique_ptr<PosixLauncher>> launcher = PosixLauncher::Create(
      {.spool_dir = dir.path() + "/spool", .host = JobHost{node, "gpuhost"}, .gpus = *fencing});
  REQUIRE(launcher.has_value());

  struct Case {
    JobId id;
    std::vector<int> gpus;
    std::string expected;
  };
  const Case cases[] = {
      {71,
       {1, 3},
       "CUDA_VISIBLE_DEVICES=1,3\nnvidia0 EPERM\nnvidia1 ENXIO\nnvidia2 EPERM\nnvidia3 ENXIO\n"
       "nvidiactl ENXIO\n"},
      {72,
       {},
       "CUDA_VISIBLE_DEVICES=\nnvidia0 EPERM\nnvidia1 EPERM\nnvidia2 EPERM\nnvidia3 EPERM\n"
       "nvidiactl ENXIO\n"},
      {73,
       {0, 1, 2, 3},  // nothing to deny: no cgroup at all
       "CUDA_VISIBLE_DEVICES=0,1,2,3\nnvidia0 ENXIO\nnvidia1 ENXIO\nnvidia2 ENXIO\n"
       "nvidia3 ENXIO\nnvidiactl ENXIO\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.id);
    Job job;
    job.id = c.id;
    job.attempt = 1;
    job.uid = getuid();
    job.gid = getgid();
    job.spec.name = "gpu";
    job.spec.cwd = dir.path();
    job.spec.script = "#!/bin/sh\nexec /usr/bin/python3 " + dir.path() + "/probe.py " + dev + "\n";
    job.alloc_gpus = c.gpus;
    REQUIRE((*launcher)->Launch(job).has_value());
    std::optional<AttemptEnd> end = WaitForEnd(**launcher, {c.id, 1});
    REQUIRE(end.has_value());
    CHECK(end->failure == "");
    CHECK(end->exit_code == 0);
    const std::string output = ReadFile(dir.path() + "/gpu.o" + std::to_string(c.id));
    CHECK(output == c.expected);
    MESSAGE("job " << c.id << " given GPUs {" << JoinIds(c.gpus) << "}:\n" << output);
    // The shepherd removed the attempt's devices cgroup when the job ended.
    CHECK_FALSE(fs::exists(fencing->cgroup_parent + "/" + std::to_string(c.id) + ".1"));
    CHECK((*launcher)->Release({c.id, 1}).ok());
  }
}

}  // namespace corral
