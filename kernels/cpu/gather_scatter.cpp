// CPU reference kernels for row gather and row scatter-add (see gather_scatter.hpp).
#include "kernels/cpu/gather_scatter.hpp"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>

namespace mlsys::kernels::cpu {

namespace {

// Enough work per task that at::parallel_for's hand-off costs little next to it.
constexpr int64_t kElementsPerTask = 32768;
// Gather: how many rows ahead to prefetch.
constexpr int64_t kPrefetchRows = 8;
// Scatter-add splits the columns into blocks this wide; a thread owns a block for all rows.
constexpr int64_t kScatterColumnBlock = 64;

}  // namespace

template <typename T, typename Index>
void gather_rows(const T* src, int64_t rows, int64_t cols, const Index* index, int64_t n,
                 T* out, int64_t out_ld) {
  (void)rows;  // the dispatcher has checked every index against it
  if (n == 0 || cols == 0) return;
  const int64_t grain = std::max<int64_t>(1, kElementsPerTask / cols);
  const auto row_bytes = static_cast<int64_t>(sizeof(T)) * cols;
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      // Rows of a large table come from DRAM in random order: request row i + kPrefetchRows
      // now, so that its cache misses overlap the copies in between.
      if (i + kPrefetchRows < end) {
        const char* ahead = reinterpret_cast<const char*>(src + static_cast<int64_t>(index[i + kPrefetchRows]) * cols);
        for (int64_t b = 0; b < row_bytes; b += 64) __builtin_prefetch(ahead + b);
      }
      const T* from = src + static_cast<int64_t>(index[i]) * cols;
      T* to = out + i * out_ld;
      for (int64_t c = 0; c < cols; ++c) to[c] = from[c];
    }
  });
}

template <typename T, typename Index>
void scatter_add_rows(T* dst, int64_t rows, int64_t cols, const Index* index, int64_t n,
                      const T* src, int64_t src_ld) {
  (void)rows;
  if (n == 0 || cols == 0) return;
  const int64_t blocks = (cols + kScatterColumnBlock - 1) / kScatterColumnBlock;
  const int64_t per_block = n * std::min(cols, kScatterColumnBlock);
  const int64_t grain = std::max<int64_t>(1, kElementsPerTask / per_block);
  // Threads own disjoint column ranges and walk the index in order, so every element of
  // dst receives its contributions in the same order however many threads run.
  at::parallel_for(0, blocks, grain, [&](int64_t block_begin, int64_t block_end) {
    const int64_t c0 = block_begin * kScatterColumnBlock;
    const int64_t c1 = std::min(cols, block_end * kScatterColumnBlock);
    for (int64_t i = 0; i < n; ++i) {
      T* to = dst + static_cast<int64_t>(index[i]) * cols;
      const T* from = src + i * src_ld;
      for (int64_t c = c0; c < c1; ++c) to[c] += from[c];
    }
  });
}

template <typename Index>
int64_t first_out_of_range(const Index* index, int64_t n, int64_t rows) {
  for (int64_t i = 0; i < n; ++i) {
    const auto r = static_cast<int64_t>(index[i]);
    if (r < 0 || r >= rows) return i;
  }
  return -1;
}

#define MLSYS_INSTANTIATE(T, Index)                                                        \
  template void gather_rows<T, Index>(const T*, int64_t, int64_t, const Index*, int64_t,  \
                                      T*, int64_t);                                       \
  template void scatter_add_rows<T, Index>(T*, int64_t, int64_t, const Index*, int64_t,   \
                                           const T*, int64_t);
#define MLSYS_INSTANTIATE_BOTH_INDEX(T) \
  MLSYS_INSTANTIATE(T, int32_t)         \
  MLSYS_INSTANTIATE(T, int64_t)

MLSYS_INSTANTIATE_BOTH_INDEX(float)
MLSYS_INSTANTIATE_BOTH_INDEX(double)
MLSYS_INSTANTIATE_BOTH_INDEX(c10::Half)
MLSYS_INSTANTIATE_BOTH_INDEX(c10::BFloat16)

#undef MLSYS_INSTANTIATE_BOTH_INDEX
#undef MLSYS_INSTANTIATE

template int64_t first_out_of_range<int32_t>(const int32_t*, int64_t, int64_t);
template int64_t first_out_of_range<int64_t>(const int64_t*, int64_t, int64_t);

}  // namespace mlsys::kernels::cpu
