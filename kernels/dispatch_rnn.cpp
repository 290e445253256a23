// The dispatch of the fused GRU cell and its backward pass (see dispatch.hpp).
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

struct GruShapes {
  int64_t U = 0, d = 0, hw = 0;
};

// gh (U x 3d or U x 4d) and m (U x d): defined, 2-D, matching; same device.
GruShapes gru_hidden(const char* fn, const at::Tensor& gh, const at::Tensor& m) {
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor*>{"gh", &gh}, {"m", &m}}) {
    check_defined(fn, name, *t);
    if (t->dim() != 2) fail(std::string(fn) + ": " + name + " must be 2-D, got shape " + shape_of(*t));
  }
  GruShapes s{m.size(0), m.size(1), gh.size(1)};
  if (gh.size(0) != s.U || (s.hw != 3 * s.d && s.hw != 4 * s.d)) {
    fail(std::string(fn) + ": gh has shape " + shape_of(gh) + "; expected [" + std::to_string(s.U) + ", " + std::to_string(3 * s.d) +
         " or " + std::to_string(4 * s.d) + "]");
  }
  check_same_device(fn, "m", m, "gh", gh);
  return s;
}

// a (U x cols): defined, that shape, m's device.
void gru_operand(const char* fn, const char* name, const at::Tensor& a, int64_t U, int64_t cols, const at::Tensor& m) {
  check_defined(fn, name, a);
  if (a.dim() != 2 || a.size(0) != U || a.size(1) != cols) {
    fail(std::string(fn) + ": " + name + " has shape " + shape_of(a) + "; expected [" + std::to_string(U) + ", " +
         std::to_string(cols) + "]");
  }
  check_same_device(fn, "m", m, name, a);
}

GruShapes gru_shapes(const char* fn, const at::Tensor& gi, const at::Tensor& gh, const at::Tensor& m) {
  const GruShapes s = gru_hidden(fn, gh, m);
  gru_operand(fn, "gi", gi, s.U, 3 * s.d, m);
  return s;
}

bool gru_fused(std::initializer_list<const at::Tensor*> ts) {
  for (const at::Tensor* t : ts) {
    if (!t->is_cpu() || t->scalar_type() != at::kFloat) return false;
  }
  return true;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_cell(const at::Tensor& gi_in, const at::Tensor& gh_in, const at::Tensor& m_in) {
  constexpr const char* fn = "gru_cell";
  const GruShapes s = gru_shapes(fn, gi_in, gh_in, m_in);
  const int64_t d = s.d;
  if (!gru_fused({&gi_in, &gh_in, &m_in})) {
    const at::Tensor rz = at::sigmoid(gi_in.narrow(1, 0, 2 * d) + gh_in.narrow(1, 0, 2 * d));
    at::Tensor pre = gi_in.narrow(1, 2 * d, d);
    if (s.hw == 4 * d) pre = pre + gh_in.narrow(1, 2 * d, d);
    const at::Tensor n = at::tanh(pre + rz.narrow(1, 0, d) * gh_in.narrow(1, s.hw - d, d));
    return {n + rz.narrow(1, d, d) * (m_in - n), rz, n};
  }
  const at::Tensor gi = gi_in.contiguous(), gh = gh_in.contiguous(), m = m_in.contiguous();
  at::Tensor rz = at::empty({s.U, 2 * d}, m.options()), n = at::empty({s.U, d}, m.options()), out = at::empty({s.U, d}, m.options());
  if (s.U == 0 || d == 0) return {out, rz, n};
  cpu::gru_gate_inputs(gi.const_data_ptr<float>(), gh.const_data_ptr<float>(), s.U, d, s.hw, rz.mutable_data_ptr<float>());
  rz.sigmoid_();
  cpu::gru_candidate_input(gi.const_data_ptr<float>(), gh.const_data_ptr<float>(), rz.const_data_ptr<float>(), s.U, d, s.hw,
                           n.mutable_data_ptr<float>());
  n.tanh_();
  cpu::gru_output(n.const_data_ptr<float>(), rz.const_data_ptr<float>(), m.const_data_ptr<float>(), s.U, d,
                  out.mutable_data_ptr<float>());
  return {out, rz, n};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_cell_backward(const at::Tensor& dout_in, const at::Tensor& rz_in,
                                                                 const at::Tensor& n_in, const at::Tensor& gh_in,
                                                                 const at::Tensor& m_in, bool with_dm) {
  constexpr const char* fn = "gru_cell_backward";
  const GruShapes s = gru_hidden(fn, gh_in, m_in);
  const int64_t U = s.U, d = s.d, hw = s.hw;
  gru_operand(fn, "dout", dout_in, U, d, m_in);
  gru_operand(fn, "rz", rz_in, U, 2 * d, m_in);
  gru_operand(fn, "n", n_in, U, d, m_in);
  if (!gru_fused({&dout_in, &rz_in, &n_in, &gh_in, &m_in})) {
    const at::Tensor r = rz_in.narrow(1, 0, d), z = rz_in.narrow(1, d, d);
    const at::Tensor dpre = dout_in * (1 - z) * (1 - n_in * n_in);
    const at::Tensor dar = dpre * gh_in.narrow(1, hw - d, d) * (1 - r) * r;
    const at::Tensor daz = dout_in * (m_in - n_in) * (1 - z) * z;
    std::vector<at::Tensor> h{dar, daz};
    if (hw == 4 * d) h.push_back(dpre);
    h.push_back(dpre * r);
    return {at::cat({dar, daz, dpre}, 1), at::cat(h, 1), with_dm ? dout_in * z : at::Tensor()};
  }
  const at::Tensor dout = dout_in.contiguous(), rz = rz_in.contiguous(), n = n_in.contiguous(), gh = gh_in.contiguous(),
                   m = m_in.contiguous();
  at::Tensor dgi = at::empty({U, 3 * d}, m.options()), dgh = at::empty({U, hw}, m.options());
  at::Tensor dm = with_dm ? at::empty({U, d}, m.options()) : at::Tensor();
  if (U == 0 || d == 0) return {dgi, dgh, dm};
  cpu::gru_backward(dout.const_data_ptr<float>(), rz.const_data_ptr<float>(), n.const_data_ptr<float>(), gh.const_data_ptr<float>(),
                    m.const_data_ptr<float>(), U, d, hw, dgi.mutable_data_ptr<float>(), dgh.mutable_data_ptr<float>(),
                    with_dm ? dm.mutable_data_ptr<float>() : nullptr);
  return {dgi, dgh, dm};
}

}  // namespace mlsys::kernels
