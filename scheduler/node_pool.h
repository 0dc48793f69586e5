// Where the nodes of ClusterState's job maps live: fixed-size blocks carved from large
// anonymous mappings that ask the kernel for transparent huge pages (MADV_HUGEPAGE).
//
// Why: a restart with a million jobs builds ~1.1 GB of std::map nodes (one per Job). From
// malloc's heap that is ~280,000 first-touch page faults of 4 KiB, which were more than
// half the CPU time of Store::Load (docs/performance.md); in 2 MiB pages it is ~550. THP
// in "madvise" mode (the common default) gives huge pages only to memory that asks, and
// malloc's heap does not. No semantic change: the maps hold the same nodes, in the same
// order; only the memory under them differs. Freed nodes are kept on a free list for the
// next node of the same size (jobs are rarely erased), never returned to the system.
#pragma once

#include <cstddef>
#include <mutex>
#include <new>

#if defined(__SANITIZE_ADDRESS__)  // gcc
#define CORRAL_NODE_POOL_ASAN 1
#elif defined(__has_feature)  // clang
#if __has_feature(address_sanitizer)
#define CORRAL_NODE_POOL_ASAN 1
#endif
#endif
#ifndef CORRAL_NODE_POOL_ASAN
#define CORRAL_NODE_POOL_ASAN 0
#endif

namespace corral {

// Blocks of one size. Thread-safe (one mutex; the scheduler itself is single-threaded).
class NodePool {
 public:
  NodePool(size_t size, size_t align);
  NodePool(const NodePool&) = delete;
  NodePool& operator=(const NodePool&) = delete;

  void* Allocate();
  void Free(void* p);

  // Whether blocks come from the pool's mappings. Not under AddressSanitizer: there every
  // block comes from the sanitizer's own allocator, so that it sees overflows and uses
  // after free of a job map's nodes, and LeakSanitizer sees the pointers the jobs hold (it
  // does not scan our mappings, and reported every string and vector of a pooled Job as
  // leaked).
  static constexpr bool kPooled = !CORRAL_NODE_POOL_ASAN;

  // The pool for blocks of `size` bytes aligned to `align`: one per node type, created on
  // first use and never destroyed (a map with static storage may outlive any destructor).
  template <size_t Size, size_t Align>
  static NodePool& For() {
    static NodePool* pool = new NodePool(Size, Align);
    return *pool;
  }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  void Grow();  // maps a new chunk; under mu_

  const size_t size_;
  std::mutex mu_;
  FreeBlock* free_ = nullptr;
  char* next_ = nullptr;  // the unused rest of the current chunk
  char* end_ = nullptr;
};

// A std::allocator replacement that takes single nodes (what std::map allocates) from
// NodePool::For<sizeof(T), alignof(T)>() and anything else from operator new.
// Stateless: every instance is equal, so maps using it copy, move and swap as usual.
template <typename T>
struct NodePoolAllocator {
  using value_type = T;
  using is_always_equal = std::true_type;

  NodePoolAllocator() noexcept = default;
  template <typename U>
  NodePoolAllocator(const NodePoolAllocator<U>&) noexcept {}

  T* allocate(size_t n) {
    if (n == 1) return static_cast<T*>(Pool().Allocate());
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(alignof(T))));
  }
  void deallocate(T* p, size_t n) noexcept {
    if (n == 1) return Pool().Free(p);
    ::operator delete(p, std::align_val_t(alignof(T)));
  }
  friend bool operator==(const NodePoolAllocator&, const NodePoolAllocator&) { return true; }

 private:
  static NodePool& Pool() {
    constexpr size_t kMinSize = sizeof(void*);  // a free block holds the free list's link
    return NodePool::For<(sizeof(T) < kMinSize ? kMinSize : sizeof(T)), alignof(T)>();
  }
};

}  // namespace corral
