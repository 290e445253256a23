// Autograd functions over the kernels (see autograd_ops.hpp).
#include "tgnn/autograd_ops.hpp"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <cblas.h>

#include <algorithm>
#include <limits>
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

namespace {

// y = x W^T (+ b) by OpenBLAS's sgemm, with W's row stride as its leading dimension so
// that column blocks of a weight (the K/V split by input) need no copy. On this project's
// CPUs OpenBLAS's sgemm runs these shapes ~10% faster than the MKL bundled with LibTorch
// (bench/tgnn/README.md); every other op stays ATen's.
int blas_int(int64_t v) {
  TORCH_CHECK(v <= std::numeric_limits<int>::max(), "tgnn: GEMM dimension ", v, " exceeds the BLAS int range");
  return static_cast<int>(v);
}

// C (m x n, ldc) = alpha op(A) op(B) + beta C with single-threaded OpenBLAS calls on row
// blocks of C spread over LibTorch's intra-op threads (at::parallel_for): OpenBLAS's own
// thread pool and LibTorch's OpenMP pool would spin against each other on shared cores
// (--threads 2 on 2 cores ran 2.4x slower than 1 thread). Row blocks of C are independent
// (no sums across tasks), but OpenBLAS may round a row differently with the block's row
// count, so results can differ in the last bits between thread counts.
// With `bias` (n floats), each task first writes it into its rows of C and accumulates onto
// it (beta is then ignored): C = op(A) op(B) + bias, the rows still in cache for the GEMM.
void sgemm_rows(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                int64_t ldb, float beta, float* c, int64_t ldc, const float* bias = nullptr) {
  if (m == 0 || n == 0) return;
  const int64_t grain = std::max<int64_t>(32, (int64_t{1} << 20) / std::max<int64_t>(1, n * k));  // rows per task
  TORCH_CHECK(bias == nullptr || beta == 0.0F, "tgnn: sgemm_rows takes a bias or a beta, not both");
  const float beta_c = bias != nullptr ? 1.0F : beta;
  at::parallel_for(0, m, grain, [&](int64_t r0, int64_t r1) {
    if (bias != nullptr) {
      for (int64_t r = r0; r < r1; ++r) std::copy(bias, bias + n, c + r * ldc);
    }
    // Row r of op(A) starts at a + r*lda (not transposed) or a + r (transposed).
    const float* a0 = trans_a ? a + r0 : a + r0 * lda;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, blas_int(r1 - r0),
                blas_int(n), blas_int(k), 1.0F, a0, blas_int(lda), b, blas_int(ldb), beta_c, c + r0 * ldc, blas_int(ldc));
  });
}

}  // namespace

at::Tensor gemm_rows(const at::Tensor& x) {
  return x.dim() == 2 && (x.size(1) <= 1 || x.stride(1) == 1) && x.stride(0) >= x.size(1) ? x : x.contiguous();
}

at::Tensor blas_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  TORCH_CHECK(w.stride(1) == 1 && w.size(1) == K && (K <= 1 || x.stride(1) == 1) && x.stride(0) >= K, "tgnn: blas_linear layout");
  // (clone, not contiguous(): with M == 1 the expanded bias is already contiguous, and
  // contiguous() would hand back the bias itself.)
  if (K == 0) return b.defined() ? b.unsqueeze(0).expand({M, N}).clone(at::MemoryFormat::Contiguous) : at::zeros({M, N});
  at::Tensor y = at::empty({M, N});
  const at::Tensor bc = b.defined() ? b.contiguous() : at::Tensor();
  // The bias is copied into y's rows by the GEMM tasks, so y never aliases b (a one-row
  // expanded bias once did, and the GEMM wrote into the parameter).
  sgemm_rows(false, true, M, N, K, x.const_data_ptr<float>(), x.stride(0), w.const_data_ptr<float>(), w.stride(0), 0.0F,
             y.mutable_data_ptr<float>(), N, b.defined() ? bc.const_data_ptr<float>() : nullptr);
  return y;
}

at::Tensor BlasLinearFn::forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& w, const at::Tensor& b) {
  // rows of x may be strided (a column block of a wider tensor), its columns not
  const at::Tensor x = gemm_rows(x_in);
  ctx->save_for_backward({x, w});
  ctx->saved_data["bias"] = b.numel() > 0;
  return blas_linear(x, w, b.numel() > 0 ? b : at::Tensor());
}
variable_list BlasLinearFn::backward(AutogradContext* ctx, variable_list grad) {
  const auto s = ctx->get_saved_variables();
  const at::Tensor &x = s[0], &w = s[1];
  const at::Tensor dy = grad[0].contiguous();
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  at::Tensor dx, dw, db;
  if (ctx->needs_input_grad(0)) {
    dx = N > 0 ? at::empty({M, K}) : at::zeros({M, K});
    if (N > 0) {
      sgemm_rows(false, false, M, K, N, dy.const_data_ptr<float>(), N, w.const_data_ptr<float>(), w.stride(0), 0.0F,
                 dx.mutable_data_ptr<float>(), K);
    }
  }
  if (ctx->needs_input_grad(1)) {
    dw = M > 0 ? at::empty({N, K}) : at::zeros({N, K});
    if (M > 0) {
      sgemm_rows(true, false, N, K, M, dy.const_data_ptr<float>(), N, x.const_data_ptr<float>(), x.stride(0), 0.0F,
                 dw.mutable_data_ptr<float>(), K);
    }
  }
  if (ctx->saved_data["bias"].toBool() && ctx->needs_input_grad(2)) db = dy.sum(0);
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
