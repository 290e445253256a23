// kernels::gru_cell / gru_cell_backward: the fused CPU passes against torch.nn.GRUCell's
// formulas in ATen differentiated by autograd (both gh layouts: 3d and 4d columns), the
// ATen fallback (float64 tensors) against the same, and the shape checks.
#include "tests/support/torch_catch.hpp"

#include <torch/csrc/autograd/autograd.h>

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "kernels/dispatch.hpp"
#include "tests/support/expect_error.hpp"

namespace mk = mlsys::kernels;

namespace {

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace

TEST_CASE("gru_cell and its backward match GRUCell's formulas under autograd", "[kernels][rnn]") {
  at::manual_seed(11);
  const int64_t U = 37, d = 19;
  for (int64_t hw : {3 * d, 4 * d}) {
    for (auto dtype : {at::kFloat, at::kDouble}) {
      DYNAMIC_SECTION("gh " << hw << " columns, " << c10::toString(dtype)) {
        const at::Tensor gi = (at::randn({U, 3 * d}) * 2).to(dtype), gh = (at::randn({U, hw}) * 2).to(dtype);
        const at::Tensor m = at::randn({U, d}).to(dtype), dout = at::randn({U, d}).to(dtype);
        // reference: torch.nn.GRUCell's gates on the same pre-activations
        const at::Tensor gi_v = gi.clone().set_requires_grad(true), gh_v = gh.clone().set_requires_grad(true);
        const at::Tensor m_v = m.clone().set_requires_grad(true);
        const auto ic = gi_v.split(d, 1), hc = gh_v.split(d, 1);
        const at::Tensor r = at::sigmoid(ic[0] + hc[0]), z = at::sigmoid(ic[1] + hc[1]);
        const at::Tensor n = at::tanh((hw == 4 * d ? ic[2] + hc[2] : ic[2]) + r * hc[hw == 4 * d ? 3 : 2]);
        const at::Tensor ref = n + z * (m_v - n);
        torch::autograd::backward({ref}, {dout});

        const auto [out, rz, nn] = mk::gru_cell(gi, gh, m);
        CHECK(max_abs_diff(out, ref) < 1e-6);
        CHECK(max_abs_diff(rz, at::cat({r, z}, 1)) < 1e-6);
        CHECK(max_abs_diff(nn, n) < 1e-6);
        const auto [dgi, dgh, dm] = mk::gru_cell_backward(dout, rz, nn, gh, m);
        CHECK(max_abs_diff(dgi, gi_v.grad()) < 1e-5);
        CHECK(max_abs_diff(dgh, gh_v.grad()) < 1e-5);
        CHECK(max_abs_diff(dm, m_v.grad()) < 1e-5);
        const auto [dgi2, dgh2, dm2] = mk::gru_cell_backward(dout, rz, nn, gh, m, false);  // no dm wanted
        CHECK(!dm2.defined());
        CHECK(at::equal(dgi2, dgi));
        CHECK(at::equal(dgh2, dgh));
      }
    }
  }
}

TEST_CASE("gru_cell rejects bad shapes with one line", "[kernels][rnn]") {
  using mlsys::test::expect_error;
  expect_error<std::invalid_argument>([] { (void)mk::gru_cell(at::zeros({4, 8}), at::zeros({4, 9}), at::zeros({4, 3})); },
                                      {"gru_cell", "gi has shape [4, 8]", "expected [4, 9]"});
  expect_error<std::invalid_argument>([] { (void)mk::gru_cell(at::zeros({4, 9}), at::zeros({4, 10}), at::zeros({4, 3})); },
                                      {"gru_cell", "gh has shape [4, 10]", "9 or 12"});
  expect_error<std::invalid_argument>(
      [] { (void)mk::gru_cell_backward(at::zeros({4, 3}), at::zeros({4, 5}), at::zeros({4, 3}), at::zeros({4, 9}), at::zeros({4, 3})); },
      {"gru_cell_backward", "rz has shape [4, 5]", "expected [4, 6]"});
}
