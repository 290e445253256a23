// CPU reference kernels of the temporal-GNN layers (lib/tgnn), over raw row-major float32
// buffers (contiguous unless a leading dimension is given: cos_ld, grad_ld, dx_cols): the time encoding phi(dt) = cos(w dt + b) with its parameter
// gradient, and the per-root ("segment") attention of TGN/TGL over each root's neighbour
// slots with its backward pass. Each replaces a dozen ATen ops and their intermediates.
// The caller (kernels/dispatch.cpp) has validated shapes and offsets.
#pragma once

#include <cstdint>

namespace mlsys::kernels::cpu {

// phase = w[c] * delta[i] + b[c] rounded as float (a product, then a sum: the rounding of
// ATen's addcmul, so the phases equal those of the ATen formulation);
// cos_out[i * cos_ld + c] = cos(phase) (cos_ld >= d: cos_out may be a column block of a
// wider matrix), and sin_out[i * d + c] = sin(phase) when sin_out is not null (the backward
// pass needs it). The cosine and sine come from one range reduction
// in double precision and single-precision minimax polynomials on [-pi/4, pi/4]: absolute
// error under 2e-7 for |phase| < 2^22, vectorised (AVX-512/AVX2 clones).
void time_encode_forward(const float* delta, int64_t n, const float* w, const float* b, int64_t d,
                         float* cos_out, int64_t cos_ld, float* sin_out);

// Gradients of sum(grad * cos(w delta + b)) with respect to w and b:
// dw[c] = -sum_i grad[i, c] sin[i, c] delta[i], db[c] = -sum_i grad[i, c] sin[i, c],
// accumulated in double in row order (deterministic), written as float. grad's rows are
// grad_ld apart (>= d).
void time_encode_backward(const float* delta, int64_t n, int64_t d, const float* sin,
                          const float* grad, int64_t grad_ld, float* dw, float* db);

// Segment attention: root r owns slots [offsets[r], offsets[r + 1]) (offsets has R + 1
// non-decreasing entries, offsets[0] = 0, offsets[R] = S). With de = heads * dh, q is
// R x de, kv is S x 2de (row j holds K_j in columns [0, de) and V_j in [de, 2de)), keep is
// S x heads (dropout scale per weight: 0 or 1/(1-p)) or null. Per root and head h:
//   score_j = LeakyReLU_slope(q_h . K_jh), att_j = softmax over the root's slots,
//   out_h = sum_j att_j keep_jh V_jh;
// att (S x heads) receives the softmax weights before dropout, out (R x de) the result; a
// root without slots gets out = 0. Parallel over roots.
void segment_attention_forward(const float* q, const float* kv, const int64_t* offsets, int64_t R,
                               int64_t heads, int64_t dh, float slope, const float* keep, float* att,
                               float* out);

// Backward of segment_attention_forward given dout (R x de) and the att it returned:
// writes dq (R x de) and dkv (S x 2de), both overwritten.
void segment_attention_backward(const float* q, const float* kv, const int64_t* offsets, int64_t R,
                                int64_t heads, int64_t dh, float slope, const float* keep,
                                const float* att, const float* dout, float* dq, float* dkv);

// Factored segment attention (TGN/TGL's temporal attention with K = W_k x + b_k and
// V = W_v x + b_v never formed per slot): for root r and head h, with X the S x dx slot
// inputs (rows [offsets[r], offsets[r+1]) belong to root r), qk = W_k,h^T q_r,h (heads x R x
// dx, head-major) and c = q_r,h . b_k,h (heads x R):
//   score_j = LeakyReLU_slope(qk_hr . x_j + c_hr), att_j = softmax over the root's slots,
//   ax_hr = sum_j att_j keep_jh x_j (heads x R x dx), asum_hr = sum_j att_j keep_jh
//   (heads x R), att (S x heads) the weights before dropout.
// The caller finishes with out_h = W_v,h ax_h + b_v,h asum_h (a GEMM on R rows instead of
// K and V on S rows). A root without slots gets ax = 0 and asum = 0. Parallel over roots.
void slot_attention_forward(const float* qk, const float* c, const float* x, const int64_t* offsets, int64_t R,
                            int64_t heads, int64_t dx, float slope, const float* keep, float* att, float* ax,
                            float* asum);

// Backward of slot_attention_forward given dax (heads x R x dx) and dasum (heads x R):
// writes dqk (heads x R x dx), dc (heads x R) and dx_out (S x dx_cols: the gradient of x's
// first dx_cols <= dx columns, for callers whose trailing inputs need none), all
// overwritten.
void slot_attention_backward(const float* qk, const float* c, const float* x, const int64_t* offsets, int64_t R,
                             int64_t heads, int64_t dx, float slope, const float* keep, const float* att,
                             const float* dax, const float* dasum, float* dqk, float* dc, float* dx_out,
                             int64_t dx_cols);

}  // namespace mlsys::kernels::cpu
