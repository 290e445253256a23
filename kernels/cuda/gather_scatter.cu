// CUDA row gather and row scatter-add (see gather_scatter.cuh). Grid-stride loops over
// the flattened (row, column) space; 64-bit offsets throughout.
#include "kernels/cuda/gather_scatter.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace mlsys::kernels::cuda {

namespace {

constexpr int kThreads = 256;
// Enough blocks to fill an H200 many times over; the grid-stride loops cover the rest.
constexpr int64_t kMaxBlocks = 65536;

int blocks_for(int64_t total) {
  return static_cast<int>(std::min<int64_t>((total + kThreads - 1) / kThreads, kMaxBlocks));
}

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": CUDA kernel launch failed: " +
                             cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// ---------------------------------------------------------------- gather
// A gather only moves bits, so it runs on an unsigned word of the element's size, or on
// 16-byte words (uint4) when rows allow.
template <typename Word, typename Index>
__global__ void gather_rows_kernel(const Word* __restrict__ src, int64_t words_per_row,
                                   const Index* __restrict__ index, int64_t total,
                                   Word* __restrict__ out) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += stride) {
    const int64_t i = t / words_per_row;
    const int64_t c = t - i * words_per_row;
    out[t] = src[static_cast<int64_t>(index[i]) * words_per_row + c];
  }
}

template <typename Elem, typename Index>
void gather_rows_launch(const void* src, int64_t cols, const Index* index, int64_t n,
                        void* out, cudaStream_t stream, const char* what) {
  if (n == 0 || cols == 0) return;
  const int64_t row_bytes = cols * static_cast<int64_t>(sizeof(Elem));
  if (row_bytes % 16 == 0 && aligned16(src) && aligned16(out)) {
    const int64_t words = row_bytes / 16;
    gather_rows_kernel<uint4, Index><<<blocks_for(n * words), kThreads, 0, stream>>>(
        static_cast<const uint4*>(src), words, index, n * words, static_cast<uint4*>(out));
  } else {
    gather_rows_kernel<Elem, Index><<<blocks_for(n * cols), kThreads, 0, stream>>>(
        static_cast<const Elem*>(src), cols, index, n * cols, static_cast<Elem*>(out));
  }
  check_launch(what);
}

// ---------------------------------------------------------------- scatter-add
template <typename T, typename Index>
__global__ void scatter_add_rows_kernel(T* __restrict__ dst, int64_t cols,
                                        const Index* __restrict__ index, int64_t total,
                                        const T* __restrict__ src) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += stride) {
    const int64_t i = t / cols;
    const int64_t c = t - i * cols;
    atomicAdd(dst + static_cast<int64_t>(index[i]) * cols + c, src[t]);
  }
}

// float rows in float4 steps: sm_90 has a 16-byte vector atomicAdd for global memory;
// older architectures do the four scalar atomics.
template <typename Index>
__global__ void scatter_add_rows_f32x4_kernel(float4* __restrict__ dst, int64_t vcols,
                                              const Index* __restrict__ index, int64_t total,
                                              const float4* __restrict__ src) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += stride) {
    const int64_t i = t / vcols;
    const int64_t c = t - i * vcols;
    float4* to = dst + static_cast<int64_t>(index[i]) * vcols + c;
    const float4 v = src[t];
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    atomicAdd(to, v);
#else
    float* f = reinterpret_cast<float*>(to);
    atomicAdd(f + 0, v.x);
    atomicAdd(f + 1, v.y);
    atomicAdd(f + 2, v.z);
    atomicAdd(f + 3, v.w);
#endif
  }
}

template <typename T, typename Index>
void scatter_add_rows_launch(T* dst, int64_t cols, const Index* index, int64_t n, const T* src,
                             cudaStream_t stream, const char* what) {
  if (n == 0 || cols == 0) return;
  scatter_add_rows_kernel<T, Index><<<blocks_for(n * cols), kThreads, 0, stream>>>(
      dst, cols, index, n * cols, src);
  check_launch(what);
}

template <typename Index>
void scatter_add_rows_f32_launch(float* dst, int64_t cols, const Index* index, int64_t n,
                                 const float* src, cudaStream_t stream) {
  if (n == 0 || cols == 0) return;
  if (cols % 4 == 0 && aligned16(dst) && aligned16(src)) {
    const int64_t vcols = cols / 4;
    scatter_add_rows_f32x4_kernel<Index><<<blocks_for(n * vcols), kThreads, 0, stream>>>(
        reinterpret_cast<float4*>(dst), vcols, index, n * vcols,
        reinterpret_cast<const float4*>(src));
    check_launch("scatter_add_rows_cuda_f32");
  } else {
    scatter_add_rows_launch<float, Index>(dst, cols, index, n, src, stream,
                                          "scatter_add_rows_cuda_f32");
  }
}

// ---------------------------------------------------------------- range check
template <typename Index>
__global__ void find_out_of_range_kernel(const Index* __restrict__ index, int64_t n,
                                         int64_t rows, long long* first_bad) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const auto r = static_cast<int64_t>(index[i]);
    if (r < 0 || r >= rows) atomicMin(first_bad, static_cast<long long>(i));
  }
}

template <typename Index>
void find_out_of_range_launch(const Index* index, int64_t n, int64_t rows, int64_t* first_bad,
                              cudaStream_t stream) {
  if (n == 0) return;
  static_assert(sizeof(long long) == sizeof(int64_t));
  find_out_of_range_kernel<Index><<<blocks_for(n), kThreads, 0, stream>>>(
      index, n, rows, reinterpret_cast<long long*>(first_bad));
  check_launch("find_out_of_range_cuda");
}

}  // namespace

// ---------------------------------------------------------------- launchers
#define MLSYS_GATHER(SUFFIX, T, Index)                                                     \
  void gather_rows_cuda_##SUFFIX(const T* src, int64_t /*rows*/, int64_t cols,            \
                                 const Index* index, int64_t n, T* out,                   \
                                 cudaStream_t stream) {                                   \
    gather_rows_launch<T, Index>(src, cols, index, n, out, stream,                        \
                                 "gather_rows_cuda_" #SUFFIX);                            \
  }
#define MLSYS_SCATTER(SUFFIX, T, Index)                                                    \
  void scatter_add_rows_cuda_##SUFFIX(T* dst, int64_t /*rows*/, int64_t cols,             \
                                      const Index* index, int64_t n, const T* src,        \
                                      cudaStream_t stream) {                              \
    scatter_add_rows_launch<T, Index>(dst, cols, index, n, src, stream,                   \
                                      "scatter_add_rows_cuda_" #SUFFIX);                  \
  }

MLSYS_GATHER(f32, float, int64_t)
MLSYS_GATHER(f32, float, int32_t)
MLSYS_GATHER(f64, double, int64_t)
MLSYS_GATHER(f64, double, int32_t)
MLSYS_GATHER(f16, __half, int64_t)
MLSYS_GATHER(f16, __half, int32_t)
MLSYS_GATHER(bf16, __nv_bfloat16, int64_t)
MLSYS_GATHER(bf16, __nv_bfloat16, int32_t)

MLSYS_SCATTER(f64, double, int64_t)
MLSYS_SCATTER(f64, double, int32_t)
MLSYS_SCATTER(f16, __half, int64_t)
MLSYS_SCATTER(f16, __half, int32_t)
MLSYS_SCATTER(bf16, __nv_bfloat16, int64_t)
MLSYS_SCATTER(bf16, __nv_bfloat16, int32_t)

#undef MLSYS_SCATTER
#undef MLSYS_GATHER

void scatter_add_rows_cuda_f32(float* dst, int64_t /*rows*/, int64_t cols, const int64_t* index,
                               int64_t n, const float* src, cudaStream_t stream) {
  scatter_add_rows_f32_launch<int64_t>(dst, cols, index, n, src, stream);
}
void scatter_add_rows_cuda_f32(float* dst, int64_t /*rows*/, int64_t cols, const int32_t* index,
                               int64_t n, const float* src, cudaStream_t stream) {
  scatter_add_rows_f32_launch<int32_t>(dst, cols, index, n, src, stream);
}

void find_out_of_range_cuda(const int64_t* index, int64_t n, int64_t rows, int64_t* first_bad,
                            cudaStream_t stream) {
  find_out_of_range_launch<int64_t>(index, n, rows, first_bad, stream);
}
void find_out_of_range_cuda(const int32_t* index, int64_t n, int64_t rows, int64_t* first_bad,
                            cudaStream_t stream) {
  find_out_of_range_launch<int32_t>(index, n, rows, first_bad, stream);
}

}  // namespace mlsys::kernels::cuda
