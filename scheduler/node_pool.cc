#include "scheduler/node_pool.h"

#include <sys/mman.h>

#include <cstdint>

namespace corral {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kChunk = size_t{32} << 20;  // 16 huge pages; untouched ones cost no memory

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

}  // namespace

NodePool::NodePool(size_t size, size_t align)
    : size_(RoundUp(size, align > alignof(FreeBlock) ? align : alignof(FreeBlock))) {}

void* NodePool::Allocate() {
  if constexpr (!NodePool::kPooled) return ::operator new(size_);
  std::lock_guard lock(mu_);
  if (free_ != nullptr) {
    FreeBlock* b = free_;
    free_ = b->next;
    return b;
  }
  if (static_cast<size_t>(end_ - next_) < size_) Grow();
  void* p = next_;
  next_ += size_;
  return p;
}

void NodePool::Free(void* p) {
  if (p == nullptr) return;
  if constexpr (!NodePool::kPooled) return ::operator delete(p);
  std::lock_guard lock(mu_);
  auto* b = static_cast<FreeBlock*>(p);
  b->next = free_;
  free_ = b;
}

void NodePool::Grow() {
  // The rest of the current chunk (less than one block) is left unused. The mapping is
  // over-sized by one huge page and trimmed, so that the chunk starts on a 2 MiB boundary
  // and every one of its huge pages can be backed by one.
  const size_t chunk = RoundUp(size_ > kChunk / 4 ? size_ * 4 : kChunk, kHugePage);
  void* m = mmap(nullptr, chunk + kHugePage, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
  auto* raw = static_cast<char*>(m);
  auto* start = reinterpret_cast<char*>(RoundUp(reinterpret_cast<uintptr_t>(raw), kHugePage));
  if (start > raw) munmap(raw, start - raw);
  if (char* tail = start + chunk; tail < raw + chunk + kHugePage) {
    munmap(tail, raw + chunk + kHugePage - tail);
  }
  // Advice only: where THP is off (or no huge page is free) the kernel gives 4 KiB pages.
  (void)madvise(start, chunk, MADV_HUGEPAGE);
  next_ = start;
  end_ = start + chunk;
}

}  // namespace corral
