// Autograd functions over the kernels (see autograd_ops.hpp).
#include "tgnn/autograd_ops.hpp"

#include <ATen/core/grad_mode.h>

#include <vector>

#include "kernels/dispatch.hpp"

namespace mlsys::tgnn::detail {

at::Tensor TimeEncodeFn::forward(AutogradContext* ctx, const at::Tensor& delta, const at::Tensor& w, const at::Tensor& b) {
  auto [co, si] = kernels::time_encode(delta, w, b, true);
  ctx->save_for_backward({delta, si});
  return co;
}
variable_list TimeEncodeFn::backward(AutogradContext* ctx, variable_list grad) {
  const auto saved = ctx->get_saved_variables();
  auto [dw, db] = kernels::time_encode_backward(saved[0], saved[1], grad[0]);
  return {at::Tensor(), dw, db};
}

at::Tensor SegmentAttentionFn::forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& kv, const at::Tensor& offsets,
                                       const at::Tensor& keep, int64_t heads) {
  auto [out, att] = kernels::segment_attention(q, kv, offsets, heads, 0.2, keep.numel() > 0 ? keep : at::Tensor());
  ctx->save_for_backward({q, kv, offsets, keep, att});
  ctx->saved_data["heads"] = heads;
  return out;
}
variable_list SegmentAttentionFn::backward(AutogradContext* ctx, variable_list grad) {
  const auto s = ctx->get_saved_variables();
  auto [dq, dkv] = kernels::segment_attention_backward(s[0], s[1], s[2], ctx->saved_data["heads"].toInt(), 0.2,
                                                       s[3].numel() > 0 ? s[3] : at::Tensor(), s[4], grad[0]);
  return {dq, dkv, at::Tensor(), at::Tensor(), at::Tensor()};
}

at::Tensor LinearRowsFn::forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  ctx->save_for_backward({x, w});
  ctx->saved_data["bias"] = b.numel() > 0;
  return kernels::linear_rows(x, w, b.numel() > 0 ? b : at::Tensor());
}
variable_list LinearRowsFn::backward(AutogradContext* ctx, variable_list grad) {
  const auto s = ctx->get_saved_variables();
  auto [dx, dw, db] = kernels::linear_rows_backward(grad[0], s[0], s[1], ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                                    ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2));
  return {dx, dw, db};
}

at::Tensor GatherRowsFn::forward(AutogradContext* ctx, const at::Tensor& src, const at::Tensor& index) {
  ctx->save_for_backward({index});
  ctx->saved_data["rows"] = src.size(0);
  return kernels::gather_rows(src, index);
}
variable_list GatherRowsFn::backward(AutogradContext* ctx, variable_list grad) {
  const at::Tensor index = ctx->get_saved_variables()[0];
  at::Tensor dsrc = at::zeros({ctx->saved_data["rows"].toInt(), grad[0].size(1)}, grad[0].options());
  kernels::scatter_add_rows(dsrc, index, grad[0].contiguous());
  return {dsrc, at::Tensor()};
}

at::Tensor gather(const at::Tensor& src, const at::Tensor& index) {
  if (src.dim() != 2) {
    std::vector<int64_t> shape(src.sizes().begin(), src.sizes().end());
    shape[0] = index.size(0);
    return gather(src.reshape({src.size(0), -1}), index).view(shape);
  }
  if (!at::GradMode::is_enabled() || !src.requires_grad()) return kernels::gather_rows(src, index);
  return GatherRowsFn::apply(src, index);
}

variable_list SlotAttentionFn::forward(AutogradContext* ctx, const at::Tensor& qk, const at::Tensor& c, const at::Tensor& h,
                                       const at::Tensor& w, const at::Tensor& b, const at::Tensor& pair, const at::Tensor& delta,
                                       const at::Tensor& edges, const at::Tensor& eid, const at::Tensor& offsets,
                                       const at::Tensor& keep, int64_t grad) {
  const int64_t S = pair.size(0), dm = h.size(1), dt = w.size(0), De = edges.dim() == 2 ? edges.size(1) : 0;
  at::Tensor x = at::empty({S, dm + dt + De});
  kernels::gather_rows_into(x.narrow(1, 0, dm), h, pair);
  const at::Tensor si = kernels::time_encode_into(x.narrow(1, dm, dt), delta, w, b, grad != 0);
  if (De > 0) kernels::gather_rows_into(x.narrow(1, dm + dt, De), edges, eid);
  auto [ax, asum, att] = kernels::slot_attention(qk, c, x, offsets, 0.2, keep.numel() > 0 ? keep : at::Tensor());
  if (grad != 0) {
    ctx->save_for_backward({qk, c, x, offsets, keep, att, pair, delta, si});
    ctx->saved_data["rows"] = h.size(0);
    ctx->saved_data["dm"] = dm;
  }
  return {ax, asum};
}
variable_list SlotAttentionFn::backward(AutogradContext* ctx, variable_list grad) {
  const auto s = ctx->get_saved_variables();
  const at::Tensor dax = grad[0].defined() ? grad[0] : at::zeros_like(s[0]);
  const at::Tensor dasum = grad[1].defined() ? grad[1] : at::zeros_like(s[1]);
  const int64_t dm = ctx->saved_data["dm"].toInt(), dt = s[8].size(1);
  auto [dqk, dc, dx] = kernels::slot_attention_backward(s[0], s[1], s[2], s[3], 0.2, s[4].numel() > 0 ? s[4] : at::Tensor(), s[5],
                                                        dax, dasum, dm + dt);
  at::Tensor dh = at::zeros({ctx->saved_data["rows"].toInt(), dm});
  kernels::scatter_add_rows(dh, s[6], dx.narrow(1, 0, dm));
  auto [dw, db] = kernels::time_encode_backward(s[7], s[8], dx.narrow(1, dm, dt));
  return {dqk, dc, dh, dw, db, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
}

at::Tensor GruCellFn::forward(AutogradContext* ctx, const at::Tensor& gi, const at::Tensor& gh, const at::Tensor& m) {
  auto [out, rz, n] = kernels::gru_cell(gi, gh, m);
  ctx->save_for_backward({rz, n, gh, m});
  return out;
}
variable_list GruCellFn::backward(AutogradContext* ctx, variable_list grad) {
  const auto s = ctx->get_saved_variables();
  auto [dgi, dgh, dm] = kernels::gru_cell_backward(grad[0], s[0], s[1], s[2], s[3], ctx->needs_input_grad(2));
  return {dgi, dgh, dm};
}

}  // namespace mlsys::tgnn::detail
