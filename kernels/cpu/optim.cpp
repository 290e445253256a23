// Fused Adam/AdamW update; see optim.hpp.
#include "kernels/cpu/optim.hpp"

#include <ATen/Parallel.h>

#include <cmath>

namespace mlsys::kernels::cpu {

namespace {

// One block of elements; branch-free so that GCC vectorises it (sqrt and division
// vectorise with -fno-math-errno, set for this library), cloned per ISA.
__attribute__((target_clones("avx512f", "avx2", "default"))) void adam_block(float* __restrict__ p,
                                                                             const float* __restrict__ g,
                                                                             float* __restrict__ m,
                                                                             float* __restrict__ v, int64_t n,
                                                                             AdamScalars s) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = m[i] * s.b1 + s.a1 * gi;
    const float vi = v[i] * s.b2 + s.a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * s.decay + s.step * mi / (std::sqrt(vi / s.bc2) + s.eps);
  }
}

}  // namespace

void adam_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamScalars& s) {
  at::parallel_for(0, n, 1 << 15, [&](int64_t i0, int64_t i1) { adam_block(p + i0, g + i0, m + i0, v + i0, i1 - i0, s); });
}

}  // namespace mlsys::kernels::cpu
