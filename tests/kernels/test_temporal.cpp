// The temporal-GNN kernels (kernels/cpu/temporal.hpp) against their ATen formulation:
// the time encoding against cos/sin in double of the same float phases, its parameter
// gradient against the closed form in double; the segment attention and its backward
// against a per-root ATen implementation differentiated by autograd; the argument checks.
#include "tests/support/torch_catch.hpp"

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>

#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "kernels/dispatch.hpp"
#include "tests/support/expect_error.hpp"

namespace mk = mlsys::kernels;

namespace {

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// Roots owning consecutive slot ranges of the given lengths.
struct Segments {
  std::vector<int64_t> lengths, offsets{0};
  int64_t R = 0, S = 0;
  at::Tensor off;  // int64 offsets, R + 1 entries
  explicit Segments(std::vector<int64_t> l) : lengths(std::move(l)) {
    for (int64_t n : lengths) offsets.push_back(offsets.back() + n);
    R = static_cast<int64_t>(lengths.size());
    S = offsets.back();
    off = at::tensor(offsets, at::kLong);
  }
};

// out_r = sum_j softmax_j(LeakyReLU(q_r . K_j)) keep_j V_j per head, root by root.
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& kv, const std::vector<int64_t>& offsets,
                               int64_t heads, const at::Tensor& keep) {
  const int64_t R = q.size(0), de = q.size(1), dh = de / heads;
  std::vector<at::Tensor> rows;
  for (int64_t r = 0; r < R; ++r) {
    const int64_t j0 = offsets[static_cast<size_t>(r)], n = offsets[static_cast<size_t>(r) + 1] - j0;
    if (n == 0) {
      rows.push_back(at::zeros({de}));
      continue;
    }
    const at::Tensor K = kv.narrow(0, j0, n).narrow(1, 0, de).reshape({n, heads, dh});
    const at::Tensor V = kv.narrow(0, j0, n).narrow(1, de, de).reshape({n, heads, dh});
    const at::Tensor s = at::leaky_relu((K * q[r].reshape({1, heads, dh})).sum(-1), 0.2);
    at::Tensor a = at::softmax(s, 0);
    if (keep.defined()) a = a * keep.narrow(0, j0, n);
    rows.push_back((a.unsqueeze(-1) * V).sum(0).reshape({de}));
  }
  return at::stack(rows);
}

}  // namespace

TEST_CASE("time_encode matches cos/sin of the same phases, and its gradient the closed form", "[kernels][tgnn]") {
  at::manual_seed(3);
  const int64_t n = 300, d = 37;
  const at::Tensor w = at::pow(10.0, at::linspace(0, -9, d, at::kFloat));
  const at::Tensor b = at::randn({d}) * 0.5;
  // Small and large time gaps (up to 4e6 s: phases far beyond 2 pi at the top frequency),
  // negative ones and zero.
  at::Tensor delta = at::cat({at::rand({n / 3}) * 10, at::rand({n / 3}) * 4e6, -at::rand({n - 2 * (n / 3)}) * 1e3});
  delta[0] = 0.0F;
  auto [co, si] = mk::time_encode(delta, w, b, true);
  REQUIRE(co.sizes() == at::IntArrayRef({n, d}));
  // The kernel's phases: a float product, then a float sum.
  const at::Tensor phase = (delta.unsqueeze(1) * w.unsqueeze(0)) + b.unsqueeze(0);
  const at::Tensor pd = phase.to(at::kDouble);
  CHECK(max_abs_diff(co, pd.cos()) < 5e-7);
  CHECK(max_abs_diff(si, pd.sin()) < 5e-7);
  // Without sin: the same cosines.
  auto [co2, none] = mk::time_encode(delta, w, b, false);
  CHECK_FALSE(none.defined());
  CHECK(at::equal(co, co2));

  const at::Tensor g = at::randn({n, d});
  auto [dw, db] = mk::time_encode_backward(delta, si, g);
  const at::Tensor gd = -(g.to(at::kDouble) * si.to(at::kDouble));
  const at::Tensor dw_ref = (gd * delta.to(at::kDouble).unsqueeze(1)).sum(0), db_ref = gd.sum(0);
  CHECK(max_abs_diff(dw, dw_ref) < 1e-6 * dw_ref.abs().max().item<double>() + 1e-6);
  CHECK(max_abs_diff(db, db_ref) < 1e-5);
}

TEST_CASE("time_encode_into writes a column block; time_encode_backward reads one", "[kernels][tgnn]") {
  at::manual_seed(5);
  const at::Tensor delta = at::rand({33}) * 1e5, w = at::pow(10.0, at::linspace(0, -9, 20)), b = at::randn({20});
  const auto [co, si] = mk::time_encode(delta, w, b, true);
  at::Tensor wide = at::full({33, 27}, 7.0);
  const at::Tensor si2 = mk::time_encode_into(wide.narrow(1, 4, 20), delta, w, b, true);
  CHECK(at::equal(wide.narrow(1, 4, 20), co));
  CHECK(at::equal(si2, si));
  CHECK(at::equal(wide.narrow(1, 0, 4), at::full({33, 4}, 7.0)));
  CHECK(at::equal(wide.narrow(1, 24, 3), at::full({33, 3}, 7.0)));
  CHECK(!mk::time_encode_into(wide.narrow(1, 4, 20), delta, w, b, false).defined());
  const at::Tensor grad = at::randn({33, 27});
  const auto [dw, db] = mk::time_encode_backward(delta, si, grad.narrow(1, 4, 20));
  const auto [dw_c, db_c] = mk::time_encode_backward(delta, si, grad.narrow(1, 4, 20).contiguous());
  CHECK(at::equal(dw, dw_c));
  CHECK(at::equal(db, db_c));
  REQUIRE_THROWS_WITH(mk::time_encode_into(at::zeros({33, 19}), delta, w, b, false),
                      Catch::Contains("time_encode_into: cos_out has shape [33, 19]; expected [33, 20]"));
  REQUIRE_THROWS_WITH(mk::time_encode_into(at::zeros({20, 33}).t(), delta, w, b, false),
                      Catch::Contains("unit column stride"));
  at::Tensor buf = at::zeros({33, 21});  // delta stored in the buffer's last column
  buf.select(1, 20).copy_(delta);
  REQUIRE_THROWS_WITH(mk::time_encode_into(buf.narrow(1, 0, 20), buf.select(1, 20), w, b, false),
                      Catch::Contains("cos_out shares memory with delta"));
}

TEST_CASE("segment_attention and its backward match ATen with autograd", "[kernels][tgnn]") {
  at::manual_seed(5);
  // Roots with no slots, one slot, several, and one longer than 32.
  const Segments seg({0, 1, 3, 10, 0, 40, 2});
  const auto &lengths = seg.lengths, &offsets = seg.offsets;
  const int64_t R = seg.R, S = seg.S;
  const at::Tensor& off = seg.off;
  for (int64_t heads : {1, 2}) {
    for (bool with_keep : {false, true}) {
      DYNAMIC_SECTION("heads " << heads << (with_keep ? ", dropout" : "")) {
        const int64_t dh = 6, de = heads * dh;
        const at::Tensor q = (at::randn({R, de}) * 0.7).set_requires_grad(true);
        const at::Tensor kv = at::randn({S, 2 * de}).set_requires_grad(true);
        at::Tensor keep;
        if (with_keep) keep = at::bernoulli(at::full({S, heads}, 0.7)) / 0.7;
        at::Tensor out, att;
        {
          at::NoGradGuard ng;
          std::tie(out, att) = mk::segment_attention(q, kv, off, heads, 0.2, keep);
        }
        const at::Tensor ref = reference_attention(q, kv, offsets, heads, keep);
        CHECK(max_abs_diff(out, ref) < 1e-5);
        CHECK(out[0].abs().max().item<double>() == 0.0);  // no slots: zero
        // Softmax weights sum to one over each non-empty root and head.
        for (int64_t r = 0; r < R; ++r) {
          if (lengths[static_cast<size_t>(r)] == 0) continue;
          const at::Tensor sums = att.narrow(0, offsets[static_cast<size_t>(r)], lengths[static_cast<size_t>(r)]).sum(0);
          CHECK(max_abs_diff(sums, at::ones({heads})) < 1e-6);
        }
        const at::Tensor dout = at::randn({R, de});
        ref.backward(dout);
        auto [dq, dkv] = mk::segment_attention_backward(q.detach(), kv.detach(), off, heads, 0.2, keep, att, dout);
        CHECK(max_abs_diff(dq, q.grad()) < 1e-5);
        CHECK(max_abs_diff(dkv, kv.grad()) < 1e-5);
      }
    }
  }
}

TEST_CASE("slot_attention equals the K/V attention and its backward matches autograd", "[kernels][tgnn]") {
  at::manual_seed(7);
  const Segments seg({2, 0, 1, 12, 40, 0, 3});
  const auto &lengths = seg.lengths, &offsets = seg.offsets;
  const int64_t R = seg.R, S = seg.S;
  const at::Tensor& off = seg.off;
  // two heads take their own fused path in the kernels; 1 and 3 the general one
  for (int64_t heads : {1, 2, 3}) {
    for (bool with_keep : {false, true}) {
      DYNAMIC_SECTION("heads " << heads << (with_keep ? ", dropout" : "")) {
        const int64_t dh = 4, de = heads * dh, dx = 37;
        at::Tensor keep;
        if (with_keep) keep = at::bernoulli(at::full({S, heads}, 0.7)) / 0.7;
        // The same attention two ways: K/V per slot, and factored through qk and c.
        const at::Tensor q = at::randn({R, de}) * 0.5, x = at::randn({S, dx});
        const at::Tensor wk = at::randn({de, dx}) * 0.3, bk = at::randn({de}) * 0.3;
        const at::Tensor wv = at::randn({de, dx}) * 0.3, bv = at::randn({de}) * 0.3;
        const at::Tensor kv = at::cat({at::linear(x, wk, bk), at::linear(x, wv, bv)}, 1);
        const at::Tensor expect = mk::segment_attention(q, kv, off, heads, 0.2, keep).first;
        const at::Tensor qh = q.view({R, heads, dh}).transpose(0, 1);
        const at::Tensor qk = at::bmm(qh, wk.view({heads, dh, dx})).contiguous();
        const at::Tensor c = at::bmm(qh, bk.view({heads, dh, 1})).squeeze(-1).contiguous();
        auto [ax, asum, att] = mk::slot_attention(qk, c, x, off, 0.2, keep);
        const at::Tensor got = at::baddbmm(asum.unsqueeze(-1) * bv.view({heads, 1, dh}), ax,
                                           wv.view({heads, dh, dx}).transpose(1, 2)).transpose(0, 1).reshape({R, de});
        CHECK(max_abs_diff(got, expect) < 1e-5);
        CHECK(got[1].abs().max().item<double>() == 0.0);  // no slots: zero

        // Backward against autograd on the factored definition, root by root.
        const at::Tensor qk_v = qk.clone().set_requires_grad(true), c_v = c.clone().set_requires_grad(true);
        const at::Tensor x_v = x.clone().set_requires_grad(true);
        std::vector<at::Tensor> ax_rows, asum_rows;
        for (int64_t r = 0; r < R; ++r) {
          const int64_t j0 = offsets[static_cast<size_t>(r)], n = lengths[static_cast<size_t>(r)];
          if (n == 0) {
            ax_rows.push_back(at::zeros({heads, dx}));
            asum_rows.push_back(at::zeros({heads}));
            continue;
          }
          const at::Tensor xs = x_v.narrow(0, j0, n);                                         // n x dx
          const at::Tensor sc = at::leaky_relu(at::matmul(xs, qk_v.select(1, r).t()) + c_v.select(1, r), 0.2);  // n x H
          at::Tensor a = at::softmax(sc, 0);
          if (keep.defined()) a = a * keep.narrow(0, j0, n);
          ax_rows.push_back(at::matmul(a.t(), xs));  // H x dx
          asum_rows.push_back(a.sum(0));
        }
        const at::Tensor ax_ref = at::stack(ax_rows, 1), asum_ref = at::stack(asum_rows, 1);  // H x R x dx, H x R
        CHECK(max_abs_diff(ax, ax_ref) < 1e-5);
        CHECK(max_abs_diff(asum, asum_ref) < 1e-6);
        const at::Tensor dax = at::randn({heads, R, dx}), dasum = at::randn({heads, R});
        torch::autograd::backward({ax_ref, asum_ref}, {dax, dasum});
        auto [dqk, dc, dxo] = mk::slot_attention_backward(qk, c, x, off, 0.2, keep, att, dax, dasum);
        CHECK(max_abs_diff(dqk, qk_v.grad()) < 1e-5);
        CHECK(max_abs_diff(dc, c_v.grad()) < 1e-5);
        CHECK(max_abs_diff(dxo, x_v.grad()) < 1e-5);
        // The gradient of x's leading columns only: those columns, bit for bit; dqk and dc
        // unchanged.
        auto [dqk13, dc13, dxo13] = mk::slot_attention_backward(qk, c, x, off, 0.2, keep, att, dax, dasum, 13);
        REQUIRE(dxo13.sizes() == at::IntArrayRef{S, 13});
        CHECK(at::equal(dxo13, dxo.narrow(1, 0, 13)));
        CHECK(at::equal(dqk13, dqk));
        CHECK(at::equal(dc13, dc));
      }
    }
  }
}

TEST_CASE("temporal kernels reject bad arguments with one line", "[kernels][tgnn]") {
  using mlsys::test::expect_error;
  const at::Tensor q = at::zeros({2, 4}), kv = at::zeros({3, 8});
  expect_error<std::invalid_argument>([&] { (void)mk::segment_attention(q, kv, at::tensor({0L, 2L, 1L}), 2, 0.2, {}); },
                                      {"segment_attention", "offsets", "to 3"});
  expect_error<std::invalid_argument>([&] { (void)mk::segment_attention(q, kv, at::tensor({0L, 2L}), 2, 0.2, {}); },
                                      {"offsets", "3 entries"});
  expect_error<std::invalid_argument>([&] { (void)mk::segment_attention(q, kv, at::tensor({0L, 4L, 3L}), 2, 0.2, {}); },
                                      {"offsets decrease", "entry 2"});
  expect_error<std::invalid_argument>([&] { (void)mk::segment_attention(q, at::zeros({3, 6}), at::tensor({0L, 1L, 3L}), 2, 0.2, {}); },
                                      {"kv", "expected 8"});
  expect_error<std::invalid_argument>([&] { (void)mk::segment_attention(q, kv, at::tensor({0L, 1L, 3L}), 3, 0.2, {}); },
                                      {"heads must divide"});
  expect_error<std::invalid_argument>(
      [&] { (void)mk::slot_attention(at::zeros({2, 3, 5}), at::zeros({2, 4}), at::zeros({6, 5}), at::tensor({0L, 1L, 2L, 6L}), 0.2, {}); },
      {"slot_attention", "c", "expected 3"});
  expect_error<std::invalid_argument>(
      [&] { (void)mk::slot_attention(at::zeros({2, 3, 5}), at::zeros({2, 3}), at::zeros({6, 4}), at::tensor({0L, 1L, 2L, 6L}), 0.2, {}); },
      {"slot_attention", "x", "expected 5"});
  expect_error<std::invalid_argument>(
      [&] {
        (void)mk::slot_attention_backward(at::zeros({2, 3, 5}), at::zeros({2, 3}), at::zeros({6, 5}), at::tensor({0L, 1L, 2L, 6L}), 0.2, {},
                                          at::zeros({6, 2}), at::zeros({2, 3, 5}), at::zeros({2, 3}), 6);
      },
      {"slot_attention_backward", "dx_cols must be -1 (all) or in [0, 5]", "got 6"});
  expect_error<std::invalid_argument>(
      [&] { (void)mk::time_encode(at::zeros({4}, at::kDouble), at::zeros({3}), at::zeros({3}), false); },
      {"time_encode", "delta", "float32"});
  expect_error<std::invalid_argument>([&] { (void)mk::time_encode(at::zeros({4}), at::zeros({3}), at::zeros({2}), false); },
                                      {"time_encode", "b", "expected 3"});
}
