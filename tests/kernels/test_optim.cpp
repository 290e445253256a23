// kernels::adam_step: the fused CPU kernel against the update written out in double over
// several steps (with and without weight decay, sizes around the vector widths and the
// parallel block), the ATen fallback (non-contiguous tensors) against the same, and the
// argument checks.
#include "tests/torch_catch.hpp"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "kernels/dispatch.hpp"
#include "tests/expect_error.hpp"

namespace mk = mlsys::kernels;

namespace {

// AdamW's update (torch.optim.AdamW's formula) in double, element by element.
struct RefAdam {
  std::vector<double> p, m, v;
  void step(const std::vector<double>& g, const mk::AdamHyper& h, int64_t t) {
    const double bc1 = 1 - std::pow(h.beta1, static_cast<double>(t)), bc2 = 1 - std::pow(h.beta2, static_cast<double>(t));
    for (size_t i = 0; i < p.size(); ++i) {
      p[i] *= 1 - h.lr * h.weight_decay;
      m[i] = h.beta1 * m[i] + (1 - h.beta1) * g[i];
      v[i] = h.beta2 * v[i] + (1 - h.beta2) * g[i] * g[i];
      p[i] -= h.lr / bc1 * m[i] / (std::sqrt(v[i] / bc2) + h.eps);
    }
  }
};

std::vector<double> as_vec(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kDouble).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// Largest |got - want| / max(floor, |want|): relative, or absolute below `floor` (m changes
// sign, so its small entries carry the rounding of the large terms they cancel).
double max_rel_diff(const at::Tensor& got, const std::vector<double>& want, double floor) {
  const std::vector<double> g = as_vec(got);
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g[i] - want[i]) / std::max(floor, std::abs(want[i])));
  return worst;
}

}  // namespace

TEST_CASE("adam_step equals AdamW written out in double", "[kernels][optim]") {
  at::manual_seed(3);
  for (int64_t n : {1, 7, 16, 37, 100000}) {
    for (double wd : {0.0, 0.1}) {
      for (bool strided : {false, true}) {
        DYNAMIC_SECTION("n " << n << ", weight decay " << wd << (strided ? ", strided (ATen path)" : "")) {
          const mk::AdamHyper h{3e-3, 0.9, 0.999, 1e-8, wd};
          // strided: every other element of a 2n buffer, which the fused kernel does not take
          at::Tensor pb = at::randn({strided ? 2 * n : n}), mb = at::zeros_like(pb), vb = at::zeros_like(pb);
          const at::Tensor pb0 = pb.clone();
          at::Tensor p = strided ? pb.slice(0, 0, 2 * n, 2) : pb, m = strided ? mb.slice(0, 0, 2 * n, 2) : mb;
          at::Tensor v = strided ? vb.slice(0, 0, 2 * n, 2) : vb;
          RefAdam ref{as_vec(p), std::vector<double>(static_cast<size_t>(n), 0.0), std::vector<double>(static_cast<size_t>(n), 0.0)};
          for (int64_t t = 1; t <= 5; ++t) {
            const at::Tensor g = at::randn({n}) * (t == 3 ? 1e-3 : 1.0);
            mk::adam_step(p, g, m, v, h, t);
            ref.step(as_vec(g), h, t);
          }
          CHECK(max_rel_diff(p, ref.p, 1.0) < 1e-6);
          CHECK(max_rel_diff(m, ref.m, 1.0) < 1e-6);
          CHECK(max_rel_diff(v, ref.v, 0.0) < 1e-6);
          // the fallback wrote only the strided elements: the others keep their start values
          if (strided) CHECK(at::equal(pb.slice(0, 1, 2 * n, 2), pb0.slice(0, 1, 2 * n, 2)));
        }
      }
    }
  }
  // The first step moves every element by lr (m̂ / sqrt(v̂) = sign(g)), decay aside.
  at::Tensor p = at::full({5}, 2.0F), m = at::zeros({5}), v = at::zeros({5});
  mk::adam_step(p, at::tensor({1.0F, -2.0F, 3.0F, -4.0F, 0.5F}), m, v, {0.01, 0.9, 0.999, 1e-8, 0.0}, 1);
  CHECK(max_rel_diff(p, {1.99, 2.01, 1.99, 2.01, 1.99}, 0.0) < 1e-6);
}

TEST_CASE("adam_step rejects bad arguments with one line", "[kernels][optim]") {
  using mlsys::test::expect_error;
  at::Tensor p = at::zeros({3}), m = at::zeros({3}), v = at::zeros({3}), m2 = at::zeros({4});
  expect_error<std::invalid_argument>([&] { mk::adam_step(p, at::zeros({2}), m, v, {}, 1); },
                                      {"adam_step", "g has shape [2]", "p [3]"});
  expect_error<std::invalid_argument>([&] { mk::adam_step(p, at::zeros({3}), m2, v, {}, 1); }, {"adam_step", "m has shape [4]"});
  expect_error<std::invalid_argument>([&] { mk::adam_step(p, at::zeros({3}), m, v, {}, 0); }, {"adam_step", "t must be >= 1, got 0"});
}
