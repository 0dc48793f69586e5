// The pool under ClusterState's job maps (scheduler/node_pool.h): blocks are aligned,
// distinct and reused after a free, across chunk boundaries; maps that use it behave as
// std::maps (copy, move, swap, erase, compare).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "scheduler/core.h"
#include "scheduler/node_pool.h"

using namespace corral;

TEST_CASE("node pool: aligned, distinct blocks across chunks; a freed block is reused") {
  struct alignas(64) Big {
    char bytes[1000];
  };
  NodePool pool(sizeof(Big), alignof(Big));
  std::vector<void*> blocks;
  std::set<uintptr_t> seen;
  // 100,000 blocks of 1,024 bytes: ~100 MB of address space, so several chunks (untouched
  // pages of a chunk cost nothing; each block is written once to check it is usable).
  for (int i = 0; i < 100'000; ++i) {
    void* p = pool.Allocate();
    REQUIRE(reinterpret_cast<uintptr_t>(p) % alignof(Big) == 0);
    std::memset(p, i & 0xff, 8);
    blocks.push_back(p);
    seen.insert(reinterpret_cast<uintptr_t>(p));
  }
  CHECK(seen.size() == blocks.size());
  for (size_t i = 1; i < blocks.size(); ++i) {  // no two blocks overlap
    const auto a = reinterpret_cast<uintptr_t>(blocks[i - 1]);
    const auto b = reinterpret_cast<uintptr_t>(blocks[i]);
    CHECK((b >= a + sizeof(Big) || a >= b + sizeof(Big)));
  }
  pool.Free(blocks[500]);
  pool.Free(blocks[7]);
  void* again[2] = {pool.Allocate(), pool.Allocate()};
  // Under AddressSanitizer the pool hands blocks to operator new (NodePool::kPooled), which
  // does not reuse them at once.
  if (NodePool::kPooled) {
    CHECK(again[0] == blocks[7]);  // last freed, first reused
    CHECK(again[1] == blocks[500]);
  }
  blocks[7] = again[0];
  blocks[500] = again[1];
  for (void* p : blocks) pool.Free(p);
}

TEST_CASE("node pool: job maps on it copy, move, swap, erase and compare as std::maps do") {
  JobMap a;
  for (JobId id = 1; id <= 5000; ++id) {
    Job job;
    job.id = id;
    job.spec.name = "job" + std::to_string(id);
    job.spec.script = std::string(100, 'x');
    a.emplace_hint(a.end(), id, std::move(job));
  }
  JobMap b = a;
  CHECK(b == a);
  CHECK(b.size() == 5000);
  CHECK(b.at(4321).spec.name == "job4321");
  b.erase(10);
  CHECK(b != a);
  Job again;
  again.id = 10;
  again.spec.name = "job10";
  again.spec.script = std::string(100, 'x');
  b.emplace(10, again);
  CHECK(b == a);
  JobMap c = std::move(b);
  CHECK(c == a);
  JobMap d;
  d.swap(c);
  CHECK(d == a);
  CHECK(c.empty());

  TaskMap tasks;
  tasks.emplace(UnitKey{3, 2}, Job{});
  tasks.emplace(UnitKey{3, 1}, Job{});
  CHECK(tasks.begin()->first.task == 1);  // ordered by (job, task), as before
  ClusterState s1;
  s1.jobs = a;
  s1.tasks = tasks;
  ClusterState s2 = s1;  // states copy with their maps
  CHECK(s2.jobs == a);
  CHECK(s2.tasks == tasks);
}
