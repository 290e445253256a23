// MMD (multi-bandwidth RBF, biased estimator) and CMD (central moment discrepancy).
#include "gil/distance.hpp"

namespace mlsys::gil {
namespace {

// ||a_i - b_j||^2, clamped at 0 (the expansion can round below it).
at::Tensor squared_distances(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor an = (a * a).sum(1).unsqueeze(1), bn = (b * b).sum(1).unsqueeze(0);
  return at::clamp_min(an + bn - 2.0 * at::matmul(a, b.t()), 0.0);
}

at::Tensor rbf_mean(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor d = squared_distances(a, b);
  at::Tensor k = at::zeros_like(d);
  for (double gamma : {1.0, 0.1, 0.001}) k = k + at::exp(-gamma * d);
  return k.mean();
}

}  // namespace

at::Tensor mmd(const at::Tensor& x, const at::Tensor& y) {
  // XX + YY - 2 XY: for x == y the three means are the same number, so the sum is exactly 0.
  return rbf_mean(x, x) + rbf_mean(y, y) - 2.0 * rbf_mean(x, y);
}

at::Tensor cmd(const at::Tensor& x, const at::Tensor& y, int64_t moments) {
  const at::Tensor mx = x.mean(0), my = y.mean(0);
  at::Tensor out = (mx - my).norm();
  const at::Tensor cx = x - mx, cy = y - my;
  for (int64_t k = 2; k <= moments; ++k) out = out + (cx.pow(k).mean(0) - cy.pow(k).mean(0)).norm();
  return out;
}

}  // namespace mlsys::gil
