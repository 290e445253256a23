// kernels::linear_rows / linear_rows_backward and cpu::sgemm_rows (OpenBLAS on row blocks)
// against at::linear differentiated by autograd in float64, within the rounding bound
// written at their signatures: contiguous and column-block (strided) operands, with and
// without bias, every transpose combination of the raw kernel, one and several threads;
// plus the cases that once went wrong (a one-row batch aliasing the bias) and the checks.
#include "tests/support/torch_catch.hpp"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/gemm.hpp"
#include "kernels/dispatch.hpp"
#include "tests/support/expect_error.hpp"

namespace mk = mlsys::kernels;

namespace {

// 2^-23 (k + 1) (|A| |B| + |C0|): the entrywise bound of kernels/cpu/gemm.hpp for a
// float32 sum of k products onto C0.
at::Tensor rounding_bound(const at::Tensor& a_abs_times_b_abs, const at::Tensor& c0_abs, int64_t k) {
  return (a_abs_times_b_abs + c0_abs) * (static_cast<double>(k + 1) * 0x1p-23) + 1e-30;
}

// max(|got - want| - bound) over the entries (got float32, want and bound float64): <= 0
// when got is within the bound everywhere; +inf when the shapes differ.
double excess(const at::Tensor& got, const at::Tensor& want, const at::Tensor& bound) {
  if (got.sizes() != want.sizes()) return std::numeric_limits<double>::infinity();
  if (got.numel() == 0) return 0.0;
  return ((got.to(at::kDouble) - want).abs() - bound).max().item<double>();
}

// A rows x cols float32 matrix: contiguous, or a column block of a wider random matrix
// (row stride cols + 7), so the kernel reads it in place with a leading dimension.
at::Tensor random_matrix(int64_t rows, int64_t cols, bool strided) {
  if (!strided) return at::randn({rows, cols});
  const at::Tensor wide = at::randn({rows, cols + 7});
  at::Tensor block = wide.narrow(1, 3, cols);
  if (cols > 1) {
    REQUIRE(block.stride(0) == cols + 7);
  }
  return block;
}

// Reference y, dx, dw, db by at::linear in float64 under autograd.
struct Reference {
  at::Tensor y, dx, dw, db;
};
Reference reference_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& dy) {
  const at::Tensor xd = x.to(at::kDouble).set_requires_grad(true), wd = w.to(at::kDouble).set_requires_grad(true);
  const at::Tensor bd = b.defined() ? b.to(at::kDouble).set_requires_grad(true) : at::Tensor();
  Reference r;
  r.y = at::linear(xd, wd, bd);
  if (x.numel() > 0 && w.numel() > 0) {
    torch::autograd::backward({r.y}, {dy.to(at::kDouble)});
    r.dx = xd.grad();
    r.dw = wd.grad();
    if (bd.defined()) r.db = bd.grad();
  }
  if (!r.dx.defined()) r.dx = at::zeros_like(xd);
  if (!r.dw.defined()) r.dw = at::zeros_like(wd);
  if (bd.defined() && !r.db.defined()) r.db = dy.to(at::kDouble).sum(0);
  r.y = r.y.detach();
  return r;
}

// Sets LibTorch's intra-op threads for a scope (the suite runs with OMP_NUM_THREADS=1).
struct Threads {
  int before = at::get_num_threads();
  explicit Threads(int n) { at::set_num_threads(n); }
  ~Threads() { at::set_num_threads(before); }
  Threads(const Threads&) = delete;
  Threads& operator=(const Threads&) = delete;
};

}  // namespace

TEST_CASE("linear_rows and its backward match at::linear under autograd", "[kernels][gemm]") {
  at::manual_seed(3);
  struct Shape {
    int64_t M, K, N;
  };
  // One row, thin and wide layers, K = 0 and 1, and row counts over the 32-row grain.
  const std::vector<Shape> shapes{{1, 8, 5}, {7, 1, 3}, {33, 16, 1}, {100, 40, 24}, {300, 65, 17}, {5, 0, 4}, {0, 6, 3}};
  for (const Shape& s : shapes) {
    for (bool strided : {false, true}) {
      for (bool bias : {false, true}) {
        DYNAMIC_SECTION("M " << s.M << " K " << s.K << " N " << s.N << (strided ? ", column blocks" : ", contiguous")
                             << (bias ? ", bias" : ", no bias")) {
          const at::Tensor x = random_matrix(s.M, s.K, strided), w = random_matrix(s.N, s.K, strided);
          const at::Tensor b = bias ? at::randn({s.N}) : at::Tensor(), dy = at::randn({s.M, s.N});
          const Reference ref = reference_linear(x, w, b, dy);
          const at::Tensor xa = x.to(at::kDouble).abs(), wa = w.to(at::kDouble).abs(), dya = dy.to(at::kDouble).abs();
          const at::Tensor y = mk::linear_rows(x, w, b);
          REQUIRE(y.is_contiguous());
          CHECK(0.0 >= excess(y, ref.y, rounding_bound(xa.mm(wa.t()), bias ? b.to(at::kDouble).abs().unsqueeze(0) : at::zeros({1}, at::kDouble), s.K)));
          const auto [dx, dw, db] = mk::linear_rows_backward(dy, x, w, true, true, bias);
          CHECK(0.0 >= excess(dx, ref.dx, rounding_bound(dya.mm(wa), at::zeros({1}, at::kDouble), s.N)));
          CHECK(0.0 >= excess(dw, ref.dw, rounding_bound(dya.t().mm(xa), at::zeros({1}, at::kDouble), s.M)));
          CHECK(db.defined() == bias);
          if (bias) {
            CHECK(0.0 >= excess(db, ref.db, rounding_bound(dya.sum(0), at::zeros({1}, at::kDouble), s.M)));
          }
          // A column block is read in place, with the result of its contiguous copy, bit for bit.
          if (strided) {
            CHECK(at::equal(y, mk::linear_rows(x.contiguous(), w.contiguous(), b)));
            const auto [dx2, dw2, db2] = mk::linear_rows_backward(dy, x.contiguous(), w.contiguous(), true, true, bias);
            CHECK(at::equal(dx, dx2));
            CHECK(at::equal(dw, dw2));
          }
          // Only the gradients asked for.
          const auto [dx3, dw3, db3] = mk::linear_rows_backward(dy, x, w, false, true, false);
          CHECK(!dx3.defined());
          CHECK(!db3.defined());
          CHECK(at::equal(dw3, dw));
        }
      }
    }
  }
}

TEST_CASE("linear_rows never aliases the bias", "[kernels][gemm]") {
  at::manual_seed(5);
  const at::Tensor b = at::randn({6}), keep = b.clone();
  for (int64_t K : {0, 4}) {
    at::Tensor y = mk::linear_rows(at::randn({1, K}), at::randn({6, K}), b);  // one row: the expanded bias is contiguous
    CHECK(y.data_ptr() != b.data_ptr());
    y.fill_(42.0F);
    CHECK(at::equal(b, keep));
  }
}

TEST_CASE("sgemm_rows: every transpose, beta and bias against float64 matmul", "[kernels][gemm]") {
  at::manual_seed(7);
  const int64_t m = 90, n = 21, k = 37;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (int mode : {0, 1, 2}) {  // 0: beta 0; 1: beta 0.5 onto C; 2: bias
        DYNAMIC_SECTION("trans_a " << ta << " trans_b " << tb << " mode " << mode) {
          // A stored m x k (k x m when transposed), B stored k x n (n x k when transposed),
          // each a column block of a wider matrix; C a column block too.
          const at::Tensor a = random_matrix(ta ? k : m, ta ? m : k, true), b = random_matrix(tb ? n : k, tb ? k : n, true);
          const at::Tensor opa = ta ? a.t() : a, opb = tb ? b.t() : b;
          at::Tensor c_wide = at::randn({m, n + 5});
          at::Tensor c = c_wide.narrow(1, 2, n);
          const at::Tensor left = c_wide.narrow(1, 0, 2).clone(), right = c_wide.narrow(1, n + 2, 3).clone();
          const at::Tensor c0 = c.to(at::kDouble);
          const at::Tensor bias = at::randn({n});
          const float beta = mode == 1 ? 0.5F : 0.0F;
          mk::cpu::sgemm_rows(ta, tb, m, n, k, a.const_data_ptr<float>(), a.stride(0), b.const_data_ptr<float>(), b.stride(0), beta,
                              c.mutable_data_ptr<float>(), c.stride(0), mode == 2 ? bias.const_data_ptr<float>() : nullptr);
          at::Tensor want = opa.to(at::kDouble).mm(opb.to(at::kDouble));
          at::Tensor c0_abs = at::zeros({1}, at::kDouble);
          if (mode == 1) {
            want = want + 0.5 * c0;
            c0_abs = 0.5 * c0.abs();
          } else if (mode == 2) {
            want = want + bias.to(at::kDouble).unsqueeze(0);
            c0_abs = bias.to(at::kDouble).abs().unsqueeze(0);
          }
          CHECK(0.0 >= excess(c, want, rounding_bound(opa.to(at::kDouble).abs().mm(opb.to(at::kDouble).abs()), c0_abs, k)));
          // the columns around C's block are untouched
          CHECK(at::equal(c_wide.narrow(1, 0, 2), left));
          CHECK(at::equal(c_wide.narrow(1, n + 2, 3), right));
        }
      }
    }
  }
}

TEST_CASE("linear_rows over several threads: within the bound, deterministic per thread count", "[kernels][gemm]") {
  at::manual_seed(9);
  // n k = 64 x 256: a 64-row grain, so 700 rows make several blocks per thread count.
  const at::Tensor x = random_matrix(700, 256, true), w = at::randn({64, 256}), b = at::randn({64}), dy = at::randn({700, 64});
  const Reference ref = reference_linear(x, w, b, dy);
  const at::Tensor xa = x.to(at::kDouble).abs(), wa = w.to(at::kDouble).abs(), dya = dy.to(at::kDouble).abs();
  for (int threads : {1, 2, 3}) {
    DYNAMIC_SECTION(threads << " threads") {
      const Threads scope(threads);
      const at::Tensor y = mk::linear_rows(x, w, b);
      const auto [dx, dw, db] = mk::linear_rows_backward(dy, x, w, true, true, true);
      CHECK(0.0 >= excess(y, ref.y, rounding_bound(xa.mm(wa.t()), b.to(at::kDouble).abs().unsqueeze(0), 256)));
      CHECK(0.0 >= excess(dx, ref.dx, rounding_bound(dya.mm(wa), at::zeros({1}, at::kDouble), 64)));
      CHECK(0.0 >= excess(dw, ref.dw, rounding_bound(dya.t().mm(xa), at::zeros({1}, at::kDouble), 700)));
      // the same call again: the same bits
      CHECK(at::equal(y, mk::linear_rows(x, w, b)));
      const auto [dx2, dw2, db2] = mk::linear_rows_backward(dy, x, w, true, true, true);
      CHECK(at::equal(dx, dx2));
      CHECK(at::equal(dw, dw2));
      CHECK(at::equal(db, db2));
    }
  }
}

TEST_CASE("linear_rows rejects bad arguments with one line", "[kernels][gemm]") {
  using mlsys::test::expect_error;
  const at::Tensor x = at::randn({4, 3}), w = at::randn({5, 3});
  expect_error<std::invalid_argument>([&] { (void)mk::linear_rows(x, at::randn({5, 2}), {}); },
                                      {"linear_rows", "w has shape", "[N, 3]"});
  expect_error<std::invalid_argument>([&] { (void)mk::linear_rows(x.to(at::kDouble), w, {}); }, {"linear_rows", "x", "float32"});
  expect_error<std::invalid_argument>([&] { (void)mk::linear_rows(x, w, at::randn({4})); }, {"linear_rows", "b", "5 entries"});
  expect_error<std::invalid_argument>([&] { (void)mk::linear_rows(at::randn({4}), w, {}); }, {"linear_rows", "x", "2-D"});
  expect_error<std::invalid_argument>([&] { (void)mk::linear_rows_backward(at::randn({4, 4}), x, w, true, true, true); },
                                      {"linear_rows_backward", "dy", "[4, 5]"});
}
