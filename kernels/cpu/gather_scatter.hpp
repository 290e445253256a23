// CPU reference kernels for row gather and row scatter-add over raw contiguous row-major
// buffers: the plain loops every CUDA version in kernels/cuda is checked against.
// The caller (kernels/dispatch.cpp) has validated shapes and index ranges.
#pragma once

#include <cstdint>

namespace mlsys::kernels::cpu {

// out[i * out_ld + c] = src[index[i] * cols + c] for i < n, c < cols (out_ld >= cols: out
// may be a column block of a wider matrix). Parallel over rows (at::parallel_for); every
// output element is a plain copy, so the result is exact.
// T: float, double, c10::Half, c10::BFloat16; Index: int32_t, int64_t.
template <typename T, typename Index>
void gather_rows(const T* src, int64_t rows, int64_t cols, const Index* index, int64_t n,
                 T* out, int64_t out_ld);

// dst[index[i] * cols + c] += src[i * src_ld + c] for i < n, c < cols (src_ld >= cols).
// Deterministic:
// parallel over blocks of columns only, each element summing its contributions serially
// in index order (the order at::index_add_ uses on the CPU).
template <typename T, typename Index>
void scatter_add_rows(T* dst, int64_t rows, int64_t cols, const Index* index, int64_t n,
                      const T* src, int64_t src_ld);

// The first i with index[i] outside [0, rows), or -1 when all are in range.
template <typename Index>
[[nodiscard]] int64_t first_out_of_range(const Index* index, int64_t n, int64_t rows);

}  // namespace mlsys::kernels::cpu
