// The distribution distances of SSRM (§B.3; the code of Shift-Robust GNNs' mmd.py that
// NGIL_Evolve copies), between two sets of representations (rows):
//   MMD^2 (biased) = mean k(X,X) - 2 mean k(X,Y) + mean k(Y,Y),
//     k(x,y) = sum_{gamma in {1, 0.1, 0.001}} exp(-gamma ||x - y||^2);
//   CMD_K = ||E[X] - E[Y]||_2 + sum_{k=2..K} ||E[(X - E X)^k] - E[(Y - E Y)^k]||_2, K = 5.
// Both are differentiable (autograd), symmetric and 0 for identical sets; for bitwise
// identical inputs they are exactly 0.0 (each term is computed the same way on both sides).
#pragma once

#include <ATen/ATen.h>

namespace mlsys::gil {

at::Tensor mmd(const at::Tensor& x, const at::Tensor& y);
at::Tensor cmd(const at::Tensor& x, const at::Tensor& y, int64_t moments = 5);

}  // namespace mlsys::gil
