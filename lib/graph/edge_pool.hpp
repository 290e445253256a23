// The pool the time-indexed block store takes its edge blocks from (GNNFlow §1 uses RMM
// pools): large anonymous mappings (madvise(MADV_HUGEPAGE) where the kernel allows, so a
// sampler's pointer chases miss the TLB less), carved by a bump pointer, with freed blocks
// kept on per-capacity free lists for reuse. Every byte is accounted for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace mlsys::graph {

struct EdgePoolStats {
  size_t reserved_bytes = 0;     // mapped chunks
  size_t in_use_bytes = 0;       // handed out and not released (payload + alignment padding)
  size_t free_listed_bytes = 0;  // released, kept for reuse
  size_t chunks = 0;
  size_t huge_page_chunks = 0;   // chunks for which madvise(MADV_HUGEPAGE) succeeded
};

class EdgePool {
 public:
  // `chunk_bytes`: the size of each mapping (a larger request gets a mapping of its own);
  // `huge_pages`: ask for transparent huge pages on each mapping (harmless when refused).
  explicit EdgePool(size_t chunk_bytes = size_t{32} << 20, bool huge_pages = true);
  ~EdgePool();
  EdgePool(const EdgePool&) = delete;
  EdgePool& operator=(const EdgePool&) = delete;

  // 64-byte aligned storage of `bytes` (rounded up to 64); std::bad_alloc when the OS
  // refuses a mapping.
  void* allocate(size_t bytes);
  // Returns storage from allocate(bytes) (the same `bytes`) for reuse.
  void release(void* p, size_t bytes);

  [[nodiscard]] const EdgePoolStats& stats() const { return stats_; }
  [[nodiscard]] static size_t rounded(size_t bytes) { return (bytes + 63) / 64 * 64; }

 private:
  struct Chunk {
    char* base;
    size_t size;
  };
  size_t chunk_bytes_;
  bool huge_pages_;
  std::vector<Chunk> chunks_;
  char* cursor_ = nullptr;  // bump pointer in the newest chunk
  char* limit_ = nullptr;
  std::unordered_map<size_t, std::vector<void*>> free_;  // rounded size -> blocks
  EdgePoolStats stats_;
};

}  // namespace mlsys::graph
