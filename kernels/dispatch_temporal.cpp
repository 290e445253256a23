// The dispatch of the temporal-GNN kernels (see dispatch.hpp): the time encoding (TGN,
// arXiv 2006.10637), the per-root segment attention and the factored slot attention.
#include "kernels/dispatch.hpp"

#include "kernels/cpu/gather_scatter.hpp"
#include "kernels/cpu/gemm.hpp"
#include "kernels/cpu/rnn.hpp"
#include "kernels/cpu/temporal.hpp"

#include <ATen/MemoryOverlap.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/full.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/tanh.h>
#include <ATen/TensorOperators.h>
#include <c10/core/ScalarType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#ifdef MLSYS_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/gather_scatter.cuh"
#include "kernels/cuda/temporal.cuh"
#endif

#include <cmath>
#include <sstream>
#include <tuple>
#include <stdexcept>
#include <string>

#include "kernels/dispatch_detail.hpp"

namespace mlsys::kernels {

using namespace detail;

namespace {

// Offsets must be int64, R + 1 entries, 0 first, non-decreasing, S last (checked on the CPU).
at::Tensor offsets_arg(const char* fn, const at::Tensor& offsets_in, int64_t R, int64_t S, const at::Tensor& like,
                       const char* like_name, const char* rows_name) {
  check_defined(fn, "offsets", offsets_in);
  if (offsets_in.dim() != 1 || offsets_in.scalar_type() != at::kLong || offsets_in.numel() != R + 1) {
    fail(std::string(fn) + ": offsets must be 1-D int64 with " + std::to_string(R + 1) + " entries, got " +
         c10::toString(offsets_in.scalar_type()) + " of shape " + shape_of(offsets_in));
  }
  check_same_device(fn, like_name, like, "offsets", offsets_in);
  const at::Tensor host = offsets_in.cpu().contiguous();
  const int64_t* o = host.const_data_ptr<int64_t>();
  if (o[0] != 0 || o[R] != S) {
    fail(std::string(fn) + ": offsets must run from 0 to " + std::to_string(S) + " (" + rows_name + " rows), got " +
         std::to_string(o[0]) + " to " + std::to_string(o[R]));
  }
  for (int64_t r = 0; r < R; ++r) {
    if (o[r + 1] < o[r]) {
      fail(std::string(fn) + ": offsets decrease at entry " + std::to_string(r + 1) + " (" + std::to_string(o[r]) +
           " then " + std::to_string(o[r + 1]) + ")");
    }
  }
  return offsets_in.contiguous();
}

struct AttentionArgs {
  at::Tensor q, kv, offsets, keep;
  int64_t R = 0, S = 0, heads = 0, dh = 0;
};

AttentionArgs attention_args(const char* fn, const at::Tensor& q_in, const at::Tensor& kv_in, const at::Tensor& offsets,
                             int64_t heads, const at::Tensor& keep_in) {
  AttentionArgs a;
  a.q = float_arg(fn, "q", q_in, 2);
  a.kv = float_arg(fn, "kv", kv_in, 2);
  check_same_device(fn, "q", a.q, "kv", a.kv);
  a.R = a.q.size(0), a.S = a.kv.size(0), a.heads = heads;
  const int64_t de = a.q.size(1);
  if (heads <= 0 || de % heads != 0) {
    fail(std::string(fn) + ": heads must divide q's width " + std::to_string(de) + ", got " + std::to_string(heads));
  }
  a.dh = de / heads;
  check_size(fn, "kv", a.kv, 1, 2 * de);
  a.offsets = offsets_arg(fn, offsets, a.R, a.S, a.q, "q", "kv");
  if (keep_in.defined()) {
    a.keep = float_arg(fn, "keep", keep_in, 2);
    check_same_device(fn, "q", a.q, "keep", a.keep);
    check_size(fn, "keep", a.keep, 0, a.S);
    check_size(fn, "keep", a.keep, 1, heads);
  }
  return a;
}

}  // namespace

namespace {

// time_encode into cos_out (n x d, validated by the caller: row-strided on the CPU,
// contiguous on CUDA); returns the sine (n x d) when with_sin.
at::Tensor time_encode_to(const char* fn, const at::Tensor& delta_in, const at::Tensor& w_in, const at::Tensor& b_in,
                          bool with_sin, const at::Tensor& co) {
  const at::Tensor delta = float_arg(fn, "delta", delta_in, 1);
  const at::Tensor w = float_arg(fn, "w", w_in, 1), b = float_arg(fn, "b", b_in, 1);
  check_same_device(fn, "delta", delta, "w", w);
  check_same_device(fn, "delta", delta, "b", b);
  const int64_t n = delta.numel(), d = w.numel();
  check_size(fn, "b", b, 0, d);
  if (co.size(0) != n || co.size(1) != d) {
    fail(std::string(fn) + ": cos_out has shape " + shape_of(co) + "; expected [" + std::to_string(n) + ", " + std::to_string(d) + "]");
  }
  at::Tensor si = with_sin ? at::empty({n, d}, delta.options()) : at::Tensor();
  if (n == 0 || d == 0) return si;
  float* sp = with_sin ? si.mutable_data_ptr<float>() : nullptr;
  if (delta.is_cpu()) {
    cpu::time_encode_forward(delta.const_data_ptr<float>(), n, w.const_data_ptr<float>(), b.const_data_ptr<float>(), d,
                             static_cast<float*>(co.data_ptr()), co.stride(0), sp);
  } else {
#ifdef MLSYS_WITH_CUDA
    const c10::cuda::CUDAGuard guard(delta.device());
    cuda::time_encode_forward_cuda(delta.const_data_ptr<float>(), n, w.const_data_ptr<float>(),
                                   b.const_data_ptr<float>(), d, static_cast<float*>(co.data_ptr()), sp, stream_of(delta));
#endif
  }
  return si;
}

}  // namespace

std::pair<at::Tensor, at::Tensor> time_encode(const at::Tensor& delta_in, const at::Tensor& w_in, const at::Tensor& b_in,
                                              bool with_sin) {
  constexpr const char* fn = "time_encode";
  check_defined(fn, "delta", delta_in);
  check_defined(fn, "w", w_in);
  at::Tensor co = at::empty({delta_in.numel(), w_in.numel()}, delta_in.options());
  at::Tensor si = time_encode_to(fn, delta_in, w_in, b_in, with_sin, co);
  return {co, si};
}

at::Tensor time_encode_into(const at::Tensor& cos_out, const at::Tensor& delta, const at::Tensor& w, const at::Tensor& b,
                            bool with_sin) {
  constexpr const char* fn = "time_encode_into";
  check_defined(fn, "cos_out", cos_out);
  check_defined(fn, "delta", delta);
  if (cos_out.dim() != 2 || cos_out.scalar_type() != at::kFloat || !row_strided(cos_out)) {
    fail(std::string(fn) + ": cos_out must be a 2-D float32 tensor with unit column stride, got " +
         c10::toString(cos_out.scalar_type()) + " of shape " + shape_of(cos_out) + " and strides " + c10::str(cos_out.strides()));
  }
  check_same_device(fn, "cos_out", cos_out, "delta", delta);
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"delta", &delta}, {"w", &w}, {"b", &b}}) {
    if (t->defined() && cos_out.storage().is_alias_of(t->storage())) {
      fail(std::string(fn) + ": cos_out shares memory with " + name + "; expected a separate buffer");
    }
  }
  return write_into(cos_out, [&](const at::Tensor& target) { return time_encode_to(fn, delta, w, b, with_sin, target); });
}

std::pair<at::Tensor, at::Tensor> time_encode_backward(const at::Tensor& delta_in, const at::Tensor& sin_in,
                                                       const at::Tensor& grad_in) {
  constexpr const char* fn = "time_encode_backward";
  const at::Tensor delta = float_arg(fn, "delta", delta_in, 1);
  const at::Tensor sin = float_arg(fn, "sin", sin_in, 2);
  // On the CPU grad may be row-strided (a column block of a wider gradient), uncopied.
  const bool strided_ok = grad_in.defined() && grad_in.is_cpu() && grad_in.scalar_type() == at::kFloat && row_strided(grad_in);
  const at::Tensor grad = strided_ok ? grad_in : float_arg(fn, "grad", grad_in, 2);
  check_same_device(fn, "delta", delta, "sin", sin);
  check_same_device(fn, "delta", delta, "grad", grad);
  const int64_t n = delta.numel(), d = sin.size(1);
  check_size(fn, "sin", sin, 0, n);
  check_size(fn, "grad", grad, 0, n);
  check_size(fn, "grad", grad, 1, d);
  at::Tensor dw = at::zeros({d}, delta.options()), db = at::zeros({d}, delta.options());
  if (n == 0 || d == 0) return {dw, db};
  if (delta.is_cpu()) {
    cpu::time_encode_backward(delta.const_data_ptr<float>(), n, d, sin.const_data_ptr<float>(),
                              grad.const_data_ptr<float>(), grad.stride(0), dw.mutable_data_ptr<float>(),
                              db.mutable_data_ptr<float>());
  } else {
#ifdef MLSYS_WITH_CUDA
    const c10::cuda::CUDAGuard guard(delta.device());
    cuda::time_encode_backward_cuda(delta.const_data_ptr<float>(), n, d, sin.const_data_ptr<float>(),
                                    grad.const_data_ptr<float>(), dw.mutable_data_ptr<float>(),
                                    db.mutable_data_ptr<float>(), stream_of(delta));
#endif
  }
  return {dw, db};
}

std::pair<at::Tensor, at::Tensor> segment_attention(const at::Tensor& q_in, const at::Tensor& kv_in,
                                                    const at::Tensor& offsets, int64_t heads, double slope,
                                                    const at::Tensor& keep_in) {
  constexpr const char* fn = "segment_attention";
  const AttentionArgs a = attention_args(fn, q_in, kv_in, offsets, heads, keep_in);
  at::Tensor out = at::empty({a.R, a.heads * a.dh}, a.q.options());
  at::Tensor att = at::empty({a.S, a.heads}, a.q.options());
  if (a.R == 0) return {out, att};
  if (a.q.is_cpu()) {
    cpu::segment_attention_forward(a.q.const_data_ptr<float>(), a.kv.const_data_ptr<float>(),
                                   a.offsets.const_data_ptr<int64_t>(), a.R, a.heads, a.dh, static_cast<float>(slope),
                                   ptr_or_null(a.keep), att.mutable_data_ptr<float>(), out.mutable_data_ptr<float>());
  } else {
#ifdef MLSYS_WITH_CUDA
    const c10::cuda::CUDAGuard guard(a.q.device());
    cuda::segment_attention_forward_cuda(a.q.const_data_ptr<float>(), a.kv.const_data_ptr<float>(),
                                         a.offsets.const_data_ptr<int64_t>(), a.R, a.heads, a.dh,
                                         static_cast<float>(slope), ptr_or_null(a.keep),
                                         att.mutable_data_ptr<float>(), out.mutable_data_ptr<float>(), stream_of(a.q));
#endif
  }
  return {out, att};
}

std::pair<at::Tensor, at::Tensor> segment_attention_backward(const at::Tensor& q_in, const at::Tensor& kv_in,
                                                             const at::Tensor& offsets, int64_t heads, double slope,
                                                             const at::Tensor& keep_in, const at::Tensor& att_in,
                                                             const at::Tensor& dout_in) {
  constexpr const char* fn = "segment_attention_backward";
  const AttentionArgs a = attention_args(fn, q_in, kv_in, offsets, heads, keep_in);
  const at::Tensor att = float_arg(fn, "att", att_in, 2), dout = float_arg(fn, "dout", dout_in, 2);
  check_same_device(fn, "q", a.q, "att", att);
  check_same_device(fn, "q", a.q, "dout", dout);
  check_size(fn, "att", att, 0, a.S);
  check_size(fn, "att", att, 1, a.heads);
  check_size(fn, "dout", dout, 0, a.R);
  check_size(fn, "dout", dout, 1, a.heads * a.dh);
  at::Tensor dq = at::empty_like(a.q), dkv = at::empty_like(a.kv);  // every slot row is written
  if (a.R == 0) return {dq, dkv};
  if (a.q.is_cpu()) {
    cpu::segment_attention_backward(a.q.const_data_ptr<float>(), a.kv.const_data_ptr<float>(),
                                    a.offsets.const_data_ptr<int64_t>(), a.R, a.heads, a.dh, static_cast<float>(slope),
                                    ptr_or_null(a.keep), att.const_data_ptr<float>(), dout.const_data_ptr<float>(),
                                    dq.mutable_data_ptr<float>(), dkv.mutable_data_ptr<float>());
  } else {
#ifdef MLSYS_WITH_CUDA
    const c10::cuda::CUDAGuard guard(a.q.device());
    cuda::segment_attention_backward_cuda(a.q.const_data_ptr<float>(), a.kv.const_data_ptr<float>(),
                                          a.offsets.const_data_ptr<int64_t>(), a.R, a.heads, a.dh,
                                          static_cast<float>(slope), ptr_or_null(a.keep), att.const_data_ptr<float>(),
                                          dout.const_data_ptr<float>(), dq.mutable_data_ptr<float>(),
                                          dkv.mutable_data_ptr<float>(), stream_of(a.q));
#endif
  }
  return {dq, dkv};
}

namespace {

struct SlotTensors {
  at::Tensor qk, c, x, offsets, keep;
  int64_t heads = 0, R = 0, S = 0, dx = 0;
};

SlotTensors slot_args(const char* fn, const at::Tensor& qk_in, const at::Tensor& c_in, const at::Tensor& x_in,
                      const at::Tensor& offsets, const at::Tensor& keep_in) {
  SlotTensors a;
  a.qk = float_arg(fn, "qk", qk_in, 3);
  a.c = float_arg(fn, "c", c_in, 2);
  a.x = float_arg(fn, "x", x_in, 2);
  check_same_device(fn, "qk", a.qk, "c", a.c);
  check_same_device(fn, "qk", a.qk, "x", a.x);
  a.heads = a.qk.size(0), a.R = a.qk.size(1), a.dx = a.qk.size(2), a.S = a.x.size(0);
  check_size(fn, "c", a.c, 0, a.heads);
  check_size(fn, "c", a.c, 1, a.R);
  check_size(fn, "x", a.x, 1, a.dx);
  a.offsets = offsets_arg(fn, offsets, a.R, a.S, a.qk, "qk", "x");
  if (keep_in.defined()) {
    a.keep = float_arg(fn, "keep", keep_in, 2);
    check_same_device(fn, "qk", a.qk, "keep", a.keep);
    check_size(fn, "keep", a.keep, 0, a.S);
    check_size(fn, "keep", a.keep, 1, a.heads);
  }
  return a;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> slot_attention(const at::Tensor& qk, const at::Tensor& c,
                                                              const at::Tensor& x, const at::Tensor& offsets,
                                                              double slope, const at::Tensor& keep) {
  constexpr const char* fn = "slot_attention";
  const SlotTensors a = slot_args(fn, qk, c, x, offsets, keep);
  at::Tensor ax = at::empty({a.heads, a.R, a.dx}, a.qk.options());
  at::Tensor asum = at::empty({a.heads, a.R}, a.qk.options());
  at::Tensor att = at::empty({a.S, a.heads}, a.qk.options());
  if (a.R == 0 || a.heads == 0) return {ax, asum, att};
  if (a.qk.is_cpu()) {
    cpu::slot_attention_forward(a.qk.const_data_ptr<float>(), a.c.const_data_ptr<float>(), a.x.const_data_ptr<float>(),
                                a.offsets.const_data_ptr<int64_t>(), a.R, a.heads, a.dx, static_cast<float>(slope),
                                ptr_or_null(a.keep), att.mutable_data_ptr<float>(), ax.mutable_data_ptr<float>(),
                                asum.mutable_data_ptr<float>());
  } else {
#ifdef MLSYS_WITH_CUDA
    const c10::cuda::CUDAGuard guard(a.qk.device());
    cuda::slot_attention_forward_cuda(a.qk.const_data_ptr<float>(), a.c.const_data_ptr<float>(),
                                      a.x.const_data_ptr<float>(), a.offsets.const_data_ptr<int64_t>(), a.R, a.heads,
                                      a.dx, static_cast<float>(slope), ptr_or_null(a.keep),
                                      att.mutable_data_ptr<float>(), ax.mutable_data_ptr<float>(),
                                      asum.mutable_data_ptr<float>(), stream_of(a.qk));
#endif
  }
  return {ax, asum, att};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> slot_attention_backward(const at::Tensor& qk, const at::Tensor& c,
                                                                       const at::Tensor& x, const at::Tensor& offsets,
                                                                       double slope, const at::Tensor& keep,
                                                                       const at::Tensor& att_in, const at::Tensor& dax_in,
                                                                       const at::Tensor& dasum_in, int64_t dx_cols) {
  constexpr const char* fn = "slot_attention_backward";
  const SlotTensors a = slot_args(fn, qk, c, x, offsets, keep);
  const at::Tensor att = float_arg(fn, "att", att_in, 2), dax = float_arg(fn, "dax", dax_in, 3),
                   dasum = float_arg(fn, "dasum", dasum_in, 2);
  check_same_device(fn, "qk", a.qk, "att", att);
  check_same_device(fn, "qk", a.qk, "dax", dax);
  check_same_device(fn, "qk", a.qk, "dasum", dasum);
  check_size(fn, "att", att, 0, a.S);
  check_size(fn, "att", att, 1, a.heads);
  if (dax.sizes() != a.qk.sizes()) fail(std::string(fn) + ": dax has shape " + shape_of(dax) + ", qk " + shape_of(a.qk));
  if (dasum.sizes() != a.c.sizes()) fail(std::string(fn) + ": dasum has shape " + shape_of(dasum) + ", c " + shape_of(a.c));
  // Every slot row belongs to one root, which writes it; so do the per-root outputs.
  if (dx_cols == -1) dx_cols = a.dx;
  if (dx_cols < 0 || dx_cols > a.dx) {
    fail(std::string(fn) + ": dx_cols must be -1 (all) or in [0, " + std::to_string(a.dx) + "] (x's columns), got " +
         std::to_string(dx_cols));
  }
  at::Tensor dqk = at::empty_like(a.qk), dc = at::empty_like(a.c), dxo = at::empty({a.S, dx_cols}, a.x.options());
  if (a.R == 0 || a.heads == 0) return {dqk.zero_(), dc.zero_(), dxo.zero_()};
  if (a.qk.is_cpu()) {
    cpu::slot_attention_backward(a.qk.const_data_ptr<float>(), a.c.const_data_ptr<float>(), a.x.const_data_ptr<float>(),
                                 a.offsets.const_data_ptr<int64_t>(), a.R, a.heads, a.dx, static_cast<float>(slope),
                                 ptr_or_null(a.keep), att.const_data_ptr<float>(), dax.const_data_ptr<float>(),
                                 dasum.const_data_ptr<float>(), dqk.mutable_data_ptr<float>(),
                                 dc.mutable_data_ptr<float>(), dxo.mutable_data_ptr<float>(), dx_cols);
  } else {
#ifdef MLSYS_WITH_CUDA
    const c10::cuda::CUDAGuard guard(a.qk.device());
    cuda::slot_attention_backward_cuda(a.qk.const_data_ptr<float>(), a.c.const_data_ptr<float>(),
                                       a.x.const_data_ptr<float>(), a.offsets.const_data_ptr<int64_t>(), a.R, a.heads,
                                       a.dx, static_cast<float>(slope), ptr_or_null(a.keep),
                                       att.const_data_ptr<float>(), dax.const_data_ptr<float>(),
                                       dasum.const_data_ptr<float>(), dqk.mutable_data_ptr<float>(),
                                       dc.mutable_data_ptr<float>(), dxo.mutable_data_ptr<float>(), dx_cols,
                                       stream_of(a.qk));
#endif
  }
  return {dqk, dc, dxo};
}

}  // namespace mlsys::kernels
