// The dispatch of the dense layers (see dispatch.hpp): y = x W^T + b on row blocks
// (kernels/cpu/gemm) and its backward pass.
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

// A 2-D float32 tensor (the GEMMs are float32 only).
void check_f32_matrix(const char* fn, const char* name, const at::Tensor& t) {
  check_defined(fn, name, t);
  if (t.dim() != 2) {
    fail(std::string(fn) + ": " + name + " must be 2-D (rows x cols), got a " + std::to_string(t.dim()) +
         "-D tensor of shape " + shape_of(t));
  }
  if (t.scalar_type() != at::kFloat) {
    fail(std::string(fn) + ": " + name + " must be float32, got " + c10::toString(t.scalar_type()));
  }
}

// t (rows x cols) as that shape, or a one-line error naming both.
void check_shape2(const char* fn, const char* name, const at::Tensor& t, int64_t rows, int64_t cols) {
  if (t.size(0) != rows || t.size(1) != cols) {
    fail(std::string(fn) + ": " + name + " has shape " + shape_of(t) + "; expected [" + std::to_string(rows) + ", " +
         std::to_string(cols) + "]");
  }
}

// x (M x K) and w (N x K), both float32 on one device.
void check_linear(const char* fn, const at::Tensor& x, const at::Tensor& w) {
  check_f32_matrix(fn, "x", x);
  check_f32_matrix(fn, "w", w);
  check_same_device(fn, "x", x, "w", w);
  if (w.size(1) != x.size(1)) {
    fail(std::string(fn) + ": w has shape " + shape_of(w) + " but x has " + std::to_string(x.size(1)) +
         " columns; expected w of shape [N, " + std::to_string(x.size(1)) + "]");
  }
}

// An operand as cpu::sgemm_rows reads it: in place when row-strided, else a contiguous copy.
at::Tensor gemm_operand(const at::Tensor& t) { return row_strided(t) ? t : t.contiguous(); }

}  // namespace

at::Tensor linear_rows(const at::Tensor& x_in, const at::Tensor& w_in, const at::Tensor& b_in) {
  constexpr const char* fn = "linear_rows";
  check_linear(fn, x_in, w_in);
  const int64_t M = x_in.size(0), K = x_in.size(1), N = w_in.size(0);
  if (b_in.defined()) {
    if (b_in.dim() != 1 || b_in.size(0) != N || b_in.scalar_type() != at::kFloat) {
      fail(std::string(fn) + ": b must be a 1-D float32 tensor of " + std::to_string(N) + " entries (w's rows), got " +
           c10::toString(b_in.scalar_type()) + " of shape " + shape_of(b_in));
    }
    check_same_device(fn, "x", x_in, "b", b_in);
  }
  if (!x_in.is_cpu()) return at::linear(x_in, w_in, b_in);
  // (clone, not contiguous(): with M == 1 the expanded bias is already contiguous, and
  // contiguous() would hand back the bias itself.)
  if (K == 0) return b_in.defined() ? b_in.unsqueeze(0).expand({M, N}).clone(at::MemoryFormat::Contiguous) : at::zeros({M, N}, x_in.options());
  const at::Tensor x = gemm_operand(x_in), w = gemm_operand(w_in);
  at::Tensor y = at::empty({M, N}, x.options());
  const at::Tensor b = b_in.defined() ? b_in.contiguous() : at::Tensor();
  // The bias is copied into y's rows by the GEMM tasks, so y never aliases b (a one-row
  // expanded bias once did, and the GEMM wrote into the parameter).
  cpu::sgemm_rows(false, true, M, N, K, x.const_data_ptr<float>(), x.stride(0), w.const_data_ptr<float>(), w.stride(0), 0.0F,
                  y.mutable_data_ptr<float>(), N, b.defined() ? b.const_data_ptr<float>() : nullptr);
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> linear_rows_backward(const at::Tensor& dy_in, const at::Tensor& x_in,
                                                                    const at::Tensor& w_in, bool with_dx, bool with_dw,
                                                                    bool with_db) {
  constexpr const char* fn = "linear_rows_backward";
  check_linear(fn, x_in, w_in);
  const int64_t M = x_in.size(0), K = x_in.size(1), N = w_in.size(0);
  check_f32_matrix(fn, "dy", dy_in);
  check_shape2(fn, "dy", dy_in, M, N);
  check_same_device(fn, "x", x_in, "dy", dy_in);
  at::Tensor dx, dw, db;
  if (!x_in.is_cpu()) {
    if (with_dx) dx = dy_in.mm(w_in);
    if (with_dw) dw = dy_in.t().mm(x_in);
    if (with_db) db = dy_in.sum(0);
    return {dx, dw, db};
  }
  const at::Tensor dy = dy_in.contiguous();
  if (with_dx) {  // dx = dy W: M x K, summed over N
    dx = N > 0 ? at::empty({M, K}, dy.options()) : at::zeros({M, K}, dy.options());
    if (N > 0) {
      const at::Tensor w = gemm_operand(w_in);
      cpu::sgemm_rows(false, false, M, K, N, dy.const_data_ptr<float>(), N, w.const_data_ptr<float>(), w.stride(0), 0.0F,
                      dx.mutable_data_ptr<float>(), K, nullptr);
    }
  }
  if (with_dw) {  // dw = dy^T x: N x K, summed over M
    dw = M > 0 ? at::empty({N, K}, dy.options()) : at::zeros({N, K}, dy.options());
    if (M > 0) {
      const at::Tensor x = gemm_operand(x_in);
      cpu::sgemm_rows(true, false, N, K, M, dy.const_data_ptr<float>(), N, x.const_data_ptr<float>(), x.stride(0), 0.0F,
                      dw.mutable_data_ptr<float>(), K, nullptr);
    }
  }
  if (with_db) db = dy.sum(0);
  return {dx, dw, db};
}

}  // namespace mlsys::kernels
