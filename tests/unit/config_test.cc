// The daemons' YAML configs and the size/duration syntax: values parsed, and every bad
// input refused with file:line and the key.
#include <doctest/doctest.h>

#include "common/config.h"
#include "common/units.h"

using namespace corral;

TEST_CASE("config: a full scheduler config") {
  auto c = ParseSchedulerConfig(
      "endpoints: [\"tcp://127.0.0.1:*\", \"ipc:///run/c.sock\"]\n"
      "state_dir: /var/lib/corral\nheartbeat_interval: 0.5\nnode_timeout: 30s\n"
      "max_batch: 100\nmax_attempts: 5\n",
      "s.yaml");
  REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message()));
  CHECK(c->endpoints.size() == 2);
  CHECK(c->heartbeat_interval_ms == 500);
  CHECK(c->node_timeout_ms == 30000);
  CHECK(c->max_batch == 100);
  CHECK(c->max_attempts == 5);
  CHECK(c->oversubscribe == 1);
}

TEST_CASE("config: consumables, site defaults and oversubscription") {
  auto c = ParseSchedulerConfig(
      "endpoints: [\"ipc:///x\"]\nstate_dir: /x\nconsumables: {matlab: 10, comsol: 2}\n"
      "default_h_rt: 1:00:00\ndefault_mem_per_core: 2G\noversubscribe: 2\n",
      "s.yaml");
  REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message()));
  CHECK(c->consumables == std::map<std::string, int64_t>{{"comsol", 2}, {"matlab", 10}});
  CHECK(c->default_h_rt_s == 3600);
  CHECK(c->default_mem_per_core_mb == 2048);
  CHECK(c->oversubscribe == 2);
  auto error = [](const std::string& extra) {
    auto bad = ParseSchedulerConfig("endpoints: [\"ipc:///x\"]\nstate_dir: /x\n" + extra, "s.yaml");
    REQUIRE_FALSE(bad.has_value());
    return bad.error().message();
  };
  CHECK(error("consumables: {matlab: -1}\n") ==
        "s.yaml:3: consumables.matlab: '-1' is not a non-negative integer");
  CHECK(error("consumables: {h_rt: 1}\n") ==
        "s.yaml:3: consumables.h_rt: 'h_rt' is not a valid consumable name");
  CHECK(error("consumables: [matlab]\n").find("must be a mapping") != std::string::npos);
  CHECK(error("oversubscribe: 0\n").find("positive") != std::string::npos);
}

TEST_CASE("config: bad scheduler configs name the file, line and key") {
  auto error = [](const std::string& yaml) {
    auto c = ParseSchedulerConfig(yaml, "s.yaml");
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().code() == Code::kInvalidArgument);
    return c.error().message();
  };
  const std::string base = "endpoints: [\"ipc:///x\"]\nstate_dir: /x\n";
  CHECK(error(base + "node_timout: 30\n").find("s.yaml:3: unknown key 'node_timout'") !=
        std::string::npos);
  CHECK(error(base + "node_timeout: [1\n").find("not valid YAML") != std::string::npos);
  CHECK(error(base + "node_timeout: soon\n").find("s.yaml:3: node_timeout") != std::string::npos);
  CHECK(error(base + "max_batch: -3\n").find("positive") != std::string::npos);
  CHECK(error("state_dir: /x\n").find("endpoints is required") != std::string::npos);
  CHECK(error("endpoints: [\"http://x\"]\nstate_dir: /x\n").find("tcp:// or ipc://") !=
        std::string::npos);
  CHECK(error(base + "heartbeat_interval: 10\nnode_timeout: 5\n").find("longer") !=
        std::string::npos);
  CHECK(error("- a\n- b\n").find("mapping") != std::string::npos);
}

TEST_CASE("config: execd config with GPUs, memory and the kill grace") {
  auto c = ParseExecdConfig(
      "scheduler: tcp://head:6444\nnode: n1\nspool_dir: /s\ncores: 8\nmemory: 16G\n"
      "gpus: [0, 1, 3]\nkill_grace: 0.25\n",
      "e.yaml");
  REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message()));
  CHECK(c->cores == 8);
  CHECK(c->mem_mb == 16384);
  CHECK(c->gpus == std::vector<int>{0, 1, 3});
  CHECK(c->kill_grace_ms == 250);
  CHECK(ParseExecdConfig("scheduler: x\n", "e.yaml")->kill_grace_ms == 5000);
  auto rich = ParseExecdConfig("features: [bigmem, avx512]\nconsumables: {scratch_gb: 800}\n", "e.yaml");
  REQUIRE(rich.has_value());
  CHECK(rich->features == std::vector<std::string>{"avx512", "bigmem"});
  CHECK(rich->consumables == std::map<std::string, int64_t>{{"scratch_gb", 800}});
  auto bad_feature = ParseExecdConfig("features: [\"a b\"]\n", "e.yaml");
  REQUIRE_FALSE(bad_feature.has_value());
  CHECK(bad_feature.error().message() == "e.yaml:1: features: 'a b' is not a valid name");
  auto dup = ParseExecdConfig("gpus: [0, 0]\n", "e.yaml");
  REQUIRE_FALSE(dup.has_value());
  CHECK(dup.error().message().find("listed twice") != std::string::npos);
  auto bad = ParseExecdConfig("cores: many\n", "e.yaml");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message().find("e.yaml:1: cores") != std::string::npos);
}

TEST_CASE("units: sizes and durations") {
  CHECK(ParseSizeBytes("4G").value() == int64_t{4} << 30);
  CHECK(ParseSizeBytes("512").value() == 512);
  CHECK(ParseSizeMb("1500K").value() == 2);  // rounded up
  CHECK_FALSE(ParseSizeBytes("4Q").has_value());
  CHECK_FALSE(ParseSizeBytes("-1G").has_value());
  CHECK(ParseDurationSeconds("1:30:00").value() == 5400);
  CHECK(ParseDurationSeconds("90").value() == 90);
  CHECK(ParseDurationSeconds("::30").value() == 30);
  CHECK(ParseDurationSeconds("5m").value() == 300);
  CHECK_FALSE(ParseDurationSeconds("1:2:3:4").has_value());
  CHECK_FALSE(ParseDurationSeconds("soon").has_value());
  CHECK(ParseDurationMs("0.5").value() == 500);
  CHECK(ParseDurationMs("2").value() == 2000);
  CHECK(ParseDurationMs(".25").value() == 250);
  CHECK(ParseDurationMs("1m").value() == 60000);
  CHECK_FALSE(ParseDurationMs("1.2.3").has_value());
  CHECK_FALSE(ParseDurationMs(".").has_value());
  CHECK(FormatDuration(5400) == "01:30:00");
}
