// CUDA row gather and row scatter-add over raw contiguous row-major device buffers: the
// launchers kernels/dispatch.cpp calls, with the signatures of the CPU references in
// kernels/cpu/gather_scatter.hpp plus a stream. No LibTorch here, so nvcc stays simple.
//
// Every launcher enqueues on `stream` and returns without synchronizing; a failed launch
// throws std::runtime_error with CUDA's message. Index values must lie in [0, rows): the
// dispatcher checks that first with find_out_of_range_cuda.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

// CUDA's 16-bit float types (cuda_fp16.h, cuda_bf16.h); declared here so that host code
// including this header does not pull those headers in.
struct __half;
struct __nv_bfloat16;

namespace mlsys::kernels::cuda {

// out[i, :] = src[index[i], :] for i < n; src is rows x cols, out is n x cols.
// Copies 16 bytes per thread when every row's byte size is a multiple of 16 and both
// buffers are 16-byte aligned, else one element per thread.
void gather_rows_cuda_f32(const float* src, int64_t rows, int64_t cols, const int64_t* index,
                          int64_t n, float* out, cudaStream_t stream);
void gather_rows_cuda_f32(const float* src, int64_t rows, int64_t cols, const int32_t* index,
                          int64_t n, float* out, cudaStream_t stream);
void gather_rows_cuda_f64(const double* src, int64_t rows, int64_t cols,
                          const int64_t* index, int64_t n, double* out, cudaStream_t stream);
void gather_rows_cuda_f64(const double* src, int64_t rows, int64_t cols,
                          const int32_t* index, int64_t n, double* out, cudaStream_t stream);
void gather_rows_cuda_f16(const __half* src, int64_t rows, int64_t cols,
                          const int64_t* index, int64_t n, __half* out, cudaStream_t stream);
void gather_rows_cuda_f16(const __half* src, int64_t rows, int64_t cols,
                          const int32_t* index, int64_t n, __half* out, cudaStream_t stream);
void gather_rows_cuda_bf16(const __nv_bfloat16* src, int64_t rows, int64_t cols,
                           const int64_t* index, int64_t n, __nv_bfloat16* out,
                           cudaStream_t stream);
void gather_rows_cuda_bf16(const __nv_bfloat16* src, int64_t rows, int64_t cols,
                           const int32_t* index, int64_t n, __nv_bfloat16* out,
                           cudaStream_t stream);

// dst[index[i], :] += src[i, :] for i < n with atomicAdd, so repeated indices accumulate
// (in an order that may vary between runs); dst is rows x cols, src is n x cols.
// float rows that are a multiple of 4 and 16-byte aligned use one float4 atomicAdd per
// thread on sm_90 and later.
void scatter_add_rows_cuda_f32(float* dst, int64_t rows, int64_t cols, const int64_t* index,
                               int64_t n, const float* src, cudaStream_t stream);
void scatter_add_rows_cuda_f32(float* dst, int64_t rows, int64_t cols, const int32_t* index,
                               int64_t n, const float* src, cudaStream_t stream);
void scatter_add_rows_cuda_f64(double* dst, int64_t rows, int64_t cols,
                               const int64_t* index, int64_t n, const double* src,
                               cudaStream_t stream);
void scatter_add_rows_cuda_f64(double* dst, int64_t rows, int64_t cols,
                               const int32_t* index, int64_t n, const double* src,
                               cudaStream_t stream);
void scatter_add_rows_cuda_f16(__half* dst, int64_t rows, int64_t cols, const int64_t* index,
                               int64_t n, const __half* src, cudaStream_t stream);
void scatter_add_rows_cuda_f16(__half* dst, int64_t rows, int64_t cols, const int32_t* index,
                               int64_t n, const __half* src, cudaStream_t stream);
void scatter_add_rows_cuda_bf16(__nv_bfloat16* dst, int64_t rows, int64_t cols,
                                const int64_t* index, int64_t n, const __nv_bfloat16* src,
                                cudaStream_t stream);
void scatter_add_rows_cuda_bf16(__nv_bfloat16* dst, int64_t rows, int64_t cols,
                                const int32_t* index, int64_t n, const __nv_bfloat16* src,
                                cudaStream_t stream);

// Device-side range check: *first_bad (a device int64 that must hold n on entry) becomes
// the smallest i with index[i] outside [0, rows), and stays n when all are in range.
void find_out_of_range_cuda(const int64_t* index, int64_t n, int64_t rows, int64_t* first_bad,
                            cudaStream_t stream);
void find_out_of_range_cuda(const int32_t* index, int64_t n, int64_t rows, int64_t* first_bad,
                            cudaStream_t stream);

}  // namespace mlsys::kernels::cuda
