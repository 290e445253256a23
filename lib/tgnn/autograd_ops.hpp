// Autograd functions over the kernels (kernels/dispatch.hpp) for lib/tgnn's model: each
// forward calls a kernel, each backward its hand-written gradient kernel, in place of the
// dozen ATen ops (and autograd nodes) the same layer would otherwise record. Internal to
// the module's LibTorch sources.
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>

namespace mlsys::tgnn::detail {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// phi(delta) = cos(w delta + b) by kernels::time_encode (one pass for cos and the sin its
// backward needs); gradients for w and b only (delta is data).
struct TimeEncodeFn : torch::autograd::Function<TimeEncodeFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& delta, const at::Tensor& w, const at::Tensor& b);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

// Per-root softmax attention over slots (kernels::segment_attention, LeakyReLU 0.2):
// gradients for q and kv. `keep` is the dropout scale per slot and head, or an empty
// tensor for none (autograd's apply takes no undefined tensors).
struct SegmentAttentionFn : torch::autograd::Function<SegmentAttentionFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& kv, const at::Tensor& offsets,
                            const at::Tensor& keep, int64_t heads);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

// y = x W^T (+ b) by kernels::linear_rows (OpenBLAS on row blocks; rows of x may be
// strided, a column block of a wider tensor) with its backward kernel: dx = dy W, dW = dy^T
// x, db = the column sums of dy. `b` is an empty tensor for none (autograd's apply takes no
// undefined tensors).
struct LinearRowsFn : torch::autograd::Function<LinearRowsFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

// out = src[index] by kernels::gather_rows; backward: kernels::scatter_add_rows of the
// gradient into zeros (deterministic; ATen's index_select backward goes through a generic
// scatter that took ~6% of a TGN epoch).
struct GatherRowsFn : torch::autograd::Function<GatherRowsFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& src, const at::Tensor& index);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

// src[index] along dimension 0 (any trailing shape), with gradient when autograd records.
at::Tensor gather(const at::Tensor& src, const at::Tensor& index);

// The factored per-root attention (kernels::slot_attention) with its slot inputs built in
// place: x = [h[pair] || phi(delta) || edges[eid]] (S x (dm + dt + De); the columns with a
// gradient first) written block by block into one buffer by kernels::gather_rows_into and
// kernels::time_encode_into, with no per-block tensors and no concatenation. Outputs {ax,
// asum}; gradients for qk, c, h (the slots' rows scatter-added by pair) and the time
// encoder's w and b (the edge features are data). `grad` (0/1): whether a backward pass
// may follow (the forward of a custom function runs with grad mode off).
struct SlotAttentionFn : torch::autograd::Function<SlotAttentionFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& qk, const at::Tensor& c, const at::Tensor& h,
                               const at::Tensor& w, const at::Tensor& b, const at::Tensor& pair, const at::Tensor& delta,
                               const at::Tensor& edges, const at::Tensor& eid, const at::Tensor& offsets, const at::Tensor& keep,
                               int64_t grad);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

// torch.nn.GRUCell's arithmetic from its pre-activations (kernels::gru_cell: gi U x 3d, gh
// U x 3d or 4d, m U x d), with the backward pass written out (kernels::gru_cell_backward)
// instead of autograd's dozen elementwise nodes.
struct GruCellFn : torch::autograd::Function<GruCellFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gi, const at::Tensor& gh, const at::Tensor& m);
  static variable_list backward(AutogradContext* ctx, variable_list grad);
};

}  // namespace mlsys::tgnn::detail
