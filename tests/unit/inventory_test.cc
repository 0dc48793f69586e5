// The execd's inventory: core index -> CPU mapping, --gpus and `nvidia-smi -L` parsing,
// and GPU detection through fake nvidia-smi scripts in a temporary PATH directory (a
// succeeding, a failing, a hanging one). Every wait is bounded; no test sleeps.
#include "execd/inventory.h"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace corral {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/corral-inventory-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

  // An executable shell script `name` in this directory.
  void Script(const std::string& name, const std::string& body) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file) << "#!/bin/sh\n" << body;
    chmod(file.c_str(), 0755);
  }

 private:
  std::string path_;
};

using Ids = std::vector<int>;

TEST_CASE("inventory: core indices map onto the execd's CPU list, wrapping around") {
  const Ids cpus{2, 3, 6, 7};
  CHECK(MapCoresToCpus({0}, cpus) == Ids{2});
  CHECK(MapCoresToCpus({1, 3}, cpus) == Ids{3, 7});
  CHECK(MapCoresToCpus({3, 2, 1, 0}, cpus) == Ids{2, 3, 6, 7});
  CHECK(MapCoresToCpus({}, cpus) == Ids{});
  // --cores 4 on a 2-CPU machine: indices 0 and 2 share CPU 0.
  CHECK(MapCoresToCpus({2}, {0, 1}) == Ids{0});
  CHECK(MapCoresToCpus({0, 2, 3}, {0, 1}) == Ids{0, 1});
  CHECK(MapCoresToCpus({-1}, cpus).error().message() == "invalid core index -1");
  CHECK(MapCoresToCpus({1, 1}, cpus).error().message() == "core index 1 given twice");
  CHECK(MapCoresToCpus({0}, {}).error().code() == Code::kInvalidArgument);

  const Ids mine = AllowedCpus();
  REQUIRE_FALSE(mine.empty());
  CHECK(std::is_sorted(mine.begin(), mine.end()));
  CHECK(DetectCores() == static_cast<int>(mine.size()));
  CHECK(JoinIds({0, 2, 13}) == "0,2,13");
  CHECK(JoinIds({}) == "");
}

TEST_CASE("inventory: --gpus takes a count or a list") {
  CHECK(ParseGpuList("4") == Ids{0, 1, 2, 3});
  CHECK(ParseGpuList("1") == Ids{0});
  CHECK(ParseGpuList("0") == Ids{});
  CHECK(ParseGpuList("") == Ids{});
  CHECK(ParseGpuList("0,2") == Ids{0, 2});
  CHECK(ParseGpuList("3,1,0") == Ids{0, 1, 3});
  CHECK(ParseGpuList("0,2,2").error().message() == "GPU 2 is listed twice");
  CHECK(ParseGpuList("0,,2").error().message() == "'' in '0,,2' is not a GPU index");
  CHECK(ParseGpuList("0, 2").error().code() == Code::kInvalidArgument);
  CHECK(ParseGpuList("-1").error().message() == "'-1' is neither a GPU count nor a list like 0,1");
  CHECK(ParseGpuList("all").error().code() == Code::kInvalidArgument);
  CHECK(ParseGpuList("99999999").error().code() == Code::kInvalidArgument);
}

TEST_CASE("inventory: nvidia-smi -L output") {
  CHECK(ParseNvidiaSmiList(
            "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-3b2c1d4e-0000-1111-2222-333344445555)\n"
            "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-4c3d2e5f-0000-1111-2222-333344445555)\n") ==
        Ids{0, 1});
  // MIG devices are listed indented under their GPU; no trailing newline.
  CHECK(ParseNvidiaSmiList("GPU 3: NVIDIA A30 (UUID: GPU-x)\n"
                           "  MIG 1g.6gb     Device  0: (UUID: MIG-y)\n"
                           "GPU 2: NVIDIA A30 (UUID: GPU-z)") == Ids{2, 3});
  CHECK(ParseNvidiaSmiList("") == Ids{});
  CHECK(ParseNvidiaSmiList("No devices found.\n") == Ids{});
  CHECK(ParseNvidiaSmiList("GPU x: broken\n").error().code() == Code::kInvalidArgument);
  CHECK(ParseNvidiaSmiList("GPU 0 no colon\n").error().code() == Code::kInvalidArgument);
  CHECK(ParseNvidiaSmiList("GPU 0: a\nGPU 0: b\n").error().message() ==
        "nvidia-smi -L: GPU 0 twice");
}

TEST_CASE("inventory: GPUs come from the nvidia-smi found on PATH") {
  TempDir empty, good, bad;
  good.Script("nvidia-smi",
              "test \"$1\" = -L || exit 2\n"
              "echo 'GPU 0: Tesla T4 (UUID: GPU-a)'\n"
              "echo 'GPU 1: Tesla T4 (UUID: GPU-b)'\n");
  bad.Script("nvidia-smi",
             "echo 'NVIDIA-SMI has failed because it could not communicate with the driver.'\n"
             "exit 9\n");

  Result<Ids> none = DetectNvidiaGpus(empty.path(), 5000);
  CHECK(none.error().code() == Code::kNotFound);
  CHECK(none.error().message() == "no nvidia-smi on PATH");
  CHECK(DetectNvidiaGpus(empty.path() + ":" + good.path(), 5000) == Ids{0, 1});
  Result<Ids> failed = DetectNvidiaGpus(bad.path() + ":" + good.path(), 5000);
  CHECK(failed.error().code() == Code::kUnavailable);
  CHECK(failed.error().message() ==
        bad.path() +
            "/nvidia-smi -L exited with 9: NVIDIA-SMI has failed because it could not "
            "communicate with the driver.");
}

TEST_CASE("inventory: a hanging nvidia-smi is killed at the deadline") {
  TempDir hangs, quiet;
  hangs.Script("nvidia-smi", "echo 'GPU 0: X (UUID: GPU-a)'\nexec tail -f /dev/null\n");
  // Closes its output first: the wait for its exit is bounded too.
  quiet.Script("nvidia-smi", "exec >/dev/null 2>&1\nexec tail -f /dev/null\n");
  for (const TempDir* dir : {&hangs, &quiet}) {
    Result<Ids> ids = DetectNvidiaGpus(dir->path(), 200);
    CHECK(ids.error().code() == Code::kUnavailable);
    CHECK(ids.error().message() ==
          dir->path() + "/nvidia-smi -L did not finish within 200 ms (killed)");
  }
}

TEST_CASE("inventory: the config's GPUs override detection; total.gpus counts gpu_ids") {
  TempDir good;
  good.Script("nvidia-smi", "echo 'GPU 0: T4 (UUID: GPU-a)'\necho 'GPU 5: T4 (UUID: GPU-b)'\n");
  ExecdConfig config;
  NodeInventory inv = DetectInventory(config, good.path());
  CHECK(inv.gpu_ids == Ids{0, 5});
  CHECK(inv.total.gpus == 2);
  CHECK(inv.notes.back() == "GPUs: 0,5 (nvidia-smi -L)");
  CHECK(inv.cpus == AllowedCpus());
  CHECK(inv.total.cores == static_cast<int>(inv.cpus.size()));

  config.gpus = Ids{3, 1};
  config.cores = static_cast<int>(inv.cpus.size()) * 2;
  config.mem_mb = 512;
  inv = DetectInventory(config, good.path());
  CHECK(inv.gpu_ids == Ids{1, 3});
  CHECK(inv.total == Resources{*config.cores, 512, 2});
  CHECK(inv.notes.back() == "GPUs: 1,3 (configured)");
  CHECK(inv.notes.front().find("oversubscribed") != std::string::npos);

  config = ExecdConfig{};
  inv = DetectInventory(config, "/nonexistent");
  CHECK(inv.gpu_ids.empty());
  CHECK(inv.total.gpus == 0);
  CHECK(inv.notes.back() == "GPUs: none (no nvidia-smi on PATH)");
}

}  // namespace
}  // namespace corral
