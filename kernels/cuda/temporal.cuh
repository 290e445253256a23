// CUDA versions of the temporal-GNN kernels of kernels/cpu/temporal.hpp (same arguments,
// same results up to float rounding, plus a stream), over raw contiguous float32 device
// buffers. No LibTorch here. Every launcher enqueues on `stream` and returns without
// synchronizing; a failed launch throws std::runtime_error with CUDA's message.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace mlsys::kernels::cuda {

// cos_out / sin_out (n x d; sin_out may be null) of phase = w[c] * delta[i] + b[c].
void time_encode_forward_cuda(const float* delta, int64_t n, const float* w, const float* b, int64_t d,
                              float* cos_out, float* sin_out, cudaStream_t stream);
// dw[c] = -sum_i grad[i,c] sin[i,c] delta[i], db[c] = -sum_i grad[i,c] sin[i,c] (d floats each).
void time_encode_backward_cuda(const float* delta, int64_t n, int64_t d, const float* sin, const float* grad,
                               float* dw, float* db, cudaStream_t stream);
// Segment attention forward/backward; offsets (R + 1 entries) is a device buffer.
void segment_attention_forward_cuda(const float* q, const float* kv, const int64_t* offsets, int64_t R,
                                    int64_t heads, int64_t dh, float slope, const float* keep, float* att,
                                    float* out, cudaStream_t stream);
void segment_attention_backward_cuda(const float* q, const float* kv, const int64_t* offsets, int64_t R,
                                     int64_t heads, int64_t dh, float slope, const float* keep, const float* att,
                                     const float* dout, float* dq, float* dkv, cudaStream_t stream);

// Factored segment attention (cpu::slot_attention_forward/backward); offsets is a device
// buffer; qk, ax, dqk, dax are heads x R x dx; c, asum, dc, dasum heads x R; x S x dx;
// dx_out S x dx_cols (the gradient of x's first dx_cols columns).
void slot_attention_forward_cuda(const float* qk, const float* c, const float* x, const int64_t* offsets, int64_t R,
                                 int64_t heads, int64_t dx, float slope, const float* keep, float* att, float* ax,
                                 float* asum, cudaStream_t stream);
void slot_attention_backward_cuda(const float* qk, const float* c, const float* x, const int64_t* offsets, int64_t R,
                                  int64_t heads, int64_t dx, float slope, const float* keep, const float* att,
                                  const float* dax, const float* dasum, float* dqk, float* dc, float* dx_out,
                                  int64_t dx_cols, cudaStream_t stream);

}  // namespace mlsys::kernels::cuda
