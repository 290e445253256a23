// The kernel dispatch API (DESIGN.md, Kernels): one function per operation; each checks
// its arguments, then runs the CPU reference (kernels/cpu) or the CUDA version
// (kernels/cuda) according to the device of the tensors.
//
// Argument errors are the caller's programming errors, not bad user input: they throw
// std::invalid_argument with a message that names the function, the argument, what was
// expected and what was found. Running a CUDA tensor through a build without CUDA throws
// std::runtime_error (gru_cell excepted: off the CPU it is ATen ops and runs wherever
// ATen does). These functions bypass autograd: use them on tensors that do not
// require grad (or under at::NoGradGuard).
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>
#include <utility>

namespace mlsys::kernels {

// out[i, :] = src[index[i], :] for a 2-D src (rows x cols) and a 1-D int64 or int32 index
// of length n with 0 <= index[i] < rows; returns a new contiguous (n x cols) tensor of
// src's dtype on src's device. Dtypes: float32, float64, float16, bfloat16.
at::Tensor gather_rows(const at::Tensor& src, const at::Tensor& index);
// gather_rows writing into out (n x cols, src's dtype and device, unit column stride: e.g.
// a column block of a wider matrix, written in place).
void gather_rows_into(const at::Tensor& out, const at::Tensor& src, const at::Tensor& index);

// dst[index[i], :] += src[i, :] for i in [0, n); repeated indices accumulate. dst is
// (rows x cols), src is (n x cols) of dst's dtype, index is 1-D int64 or int32 of length n
// with 0 <= index[i] < rows. On the CPU the result is deterministic (each element sums its
// contributions in index order, like at::index_add_); on CUDA the order of the atomic
// additions, and so the rounding, may vary between runs. On the CPU a src with unit column
// stride (a column block of a wider matrix) is read in place.
void scatter_add_rows(at::Tensor& dst, const at::Tensor& index, const at::Tensor& src);

// ---- Temporal-GNN kernels (kernels/cpu/temporal.hpp): float32; inputs are copied to
// contiguous unless a function says it reads a column block in place.

// phi = cos(w[c] * delta[i] + b[c]) for a 1-D delta (n) and 1-D w, b (d): returns
// {cos (n x d), sin (n x d), the latter undefined unless with_sin}.
std::pair<at::Tensor, at::Tensor> time_encode(const at::Tensor& delta, const at::Tensor& w, const at::Tensor& b,
                                              bool with_sin);
// time_encode writing the cosines into cos_out (n x d float32, unit column stride: e.g. a
// column block of a wider matrix); returns the sine (n x d) when with_sin.
at::Tensor time_encode_into(const at::Tensor& cos_out, const at::Tensor& delta, const at::Tensor& w, const at::Tensor& b,
                            bool with_sin);
// {dw, db} (d each) of sum(grad * phi) given the sin that time_encode returned (on the CPU
// a grad with unit column stride is read in place).
std::pair<at::Tensor, at::Tensor> time_encode_backward(const at::Tensor& delta, const at::Tensor& sin,
                                                       const at::Tensor& grad);

// Per-root attention over slots: q (R x heads*dh), kv (S x 2*heads*dh: K then V),
// offsets (int64, R + 1 entries, non-decreasing from 0 to S), keep (S x heads dropout
// scales) or undefined. Returns {out (R x heads*dh), att (S x heads, softmax before
// dropout)}; see cpu::segment_attention_forward for the formula.
std::pair<at::Tensor, at::Tensor> segment_attention(const at::Tensor& q, const at::Tensor& kv,
                                                    const at::Tensor& offsets, int64_t heads, double slope,
                                                    const at::Tensor& keep);
// {dq, dkv} given dout (R x heads*dh) and the att that segment_attention returned.
std::pair<at::Tensor, at::Tensor> segment_attention_backward(const at::Tensor& q, const at::Tensor& kv,
                                                             const at::Tensor& offsets, int64_t heads,
                                                             double slope, const at::Tensor& keep,
                                                             const at::Tensor& att, const at::Tensor& dout);

// Factored per-root attention (cpu::slot_attention_forward): qk (heads x R x dx), c
// (heads x R), x (S x dx), offsets (int64, R + 1 entries from 0 to S), keep (S x heads)
// or undefined. Returns {ax (heads x R x dx), asum (heads x R), att (S x heads)}.
std::tuple<at::Tensor, at::Tensor, at::Tensor> slot_attention(const at::Tensor& qk, const at::Tensor& c,
                                                              const at::Tensor& x, const at::Tensor& offsets,
                                                              double slope, const at::Tensor& keep);
// {dqk, dc, dx} given dax (heads x R x dx), dasum (heads x R) and the att it returned; dx
// is S x dx_cols, the gradient of x's first dx_cols columns (-1: all of them).
std::tuple<at::Tensor, at::Tensor, at::Tensor> slot_attention_backward(const at::Tensor& qk, const at::Tensor& c,
                                                                       const at::Tensor& x, const at::Tensor& offsets,
                                                                       double slope, const at::Tensor& keep,
                                                                       const at::Tensor& att, const at::Tensor& dax,
                                                                       const at::Tensor& dasum, int64_t dx_cols = -1);

// ---- Recurrent cells (kernels/cpu/rnn.hpp).

// One GRU cell step in torch.nn.GRUCell's arithmetic from its pre-activations: gi (U x 3d,
// input parts of r, z, n with their bias), gh (U x 3d: hidden parts of r, z, n; or U x 4d:
// r, z, a hidden-side n-input part, n), m (U x d, the previous state):
//   r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z),
//   n = tanh(gi_n (+ gh_nin) + r gh_n), out = n + z (m - n).
// Returns {out, rz (U x 2d: r then z), n}, the last two for gru_cell_backward. Float32 CPU
// tensors take the fused passes (sigmoid and tanh stay ATen's); others the same formulas
// as ATen ops.
std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_cell(const at::Tensor& gi, const at::Tensor& gh, const at::Tensor& m);
// {dgi, dgh, dm} of gru_cell from dout (U x d) and its rz and n; dm undefined unless
// with_dm.
std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_cell_backward(const at::Tensor& dout, const at::Tensor& rz,
                                                                 const at::Tensor& n, const at::Tensor& gh,
                                                                 const at::Tensor& m, bool with_dm = true);

// ---- Dense layers (kernels/cpu/gemm.hpp): float32.

// y = x W^T + b for x (M x K), w (N x K) and b (N) or undefined: returns y (M x N), a new
// contiguous tensor that never aliases b. On the CPU: OpenBLAS's sgemm on row blocks of y
// over LibTorch's intra-op threads (cpu::sgemm_rows; its rounding contract: |y - y_exact| <=
// (K + 1) 2^-23 (|x| |W|^T + |b|) entrywise, deterministic for fixed shapes and thread
// count, last bits may change with the thread count). x and w are read in place when their
// rows have unit column stride (a column block of a wider matrix: the K/V blocks of a
// fused weight need no copy), else copied to contiguous. Off the CPU: at::linear.
at::Tensor linear_rows(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);
// The gradients of linear_rows given dy (M x N): {dx = dy W (M x K), dw = dy^T x (N x K),
// db = the column sums of dy (N, ATen's sum)}, each only when asked for (else undefined);
// the same layouts, threads and rounding contract as linear_rows (the sums run over N for
// dx and over M for dw).
std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_rows_backward(const at::Tensor& dy, const at::Tensor& x,
                                                                    const at::Tensor& w, bool with_dx, bool with_dw,
                                                                    bool with_db);

// Whether this build compiled kernels/cuda (MLSYS_WITH_CUDA).
[[nodiscard]] bool built_with_cuda() noexcept;

}  // namespace mlsys::kernels
