// The edge-block pool: anonymous mappings, bump allocation, per-size free lists.
#include "graph/edge_pool.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <new>

namespace mlsys::graph {

EdgePool::EdgePool(size_t chunk_bytes, bool huge_pages)
    : chunk_bytes_(std::max<size_t>(rounded(chunk_bytes), 4096)), huge_pages_(huge_pages) {}

EdgePool::~EdgePool() {
  for (const Chunk& c : chunks_) munmap(c.base, c.size);
}

void* EdgePool::allocate(size_t bytes) {
  const size_t n = rounded(std::max<size_t>(bytes, 1));
  if (auto it = free_.find(n); it != free_.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    stats_.free_listed_bytes -= n;
    stats_.in_use_bytes += n;
    return p;
  }
  if (cursor_ == nullptr || static_cast<size_t>(limit_ - cursor_) < n) {
    // A new mapping; what was left of the previous one stays unused (counted as reserved).
    const size_t size = std::max(chunk_bytes_, (n + 4095) / 4096 * 4096);
    void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    auto* base = static_cast<char*>(m);
    chunks_.push_back({base, size});
    stats_.reserved_bytes += size;
    ++stats_.chunks;
#ifdef MADV_HUGEPAGE
    if (huge_pages_ && madvise(m, size, MADV_HUGEPAGE) == 0) ++stats_.huge_page_chunks;
#endif
    cursor_ = base;
    limit_ = base + size;
  }
  void* p = cursor_;
  cursor_ += n;
  stats_.in_use_bytes += n;
  return p;
}

void EdgePool::release(void* p, size_t bytes) {
  if (p == nullptr) return;
  const size_t n = rounded(std::max<size_t>(bytes, 1));
  free_[n].push_back(p);
  stats_.in_use_bytes -= n;
  stats_.free_listed_bytes += n;
}

}  // namespace mlsys::graph
