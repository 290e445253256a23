// CPU reference kernel of the fused Adam/AdamW update (kernels::adam_step): one pass over a
// parameter's elements instead of ATen's five tensor ops (mul_, add_, addcmul_, sqrt_,
// addcdiv_), each of which walks all of them. The caller (kernels/dispatch.cpp) has
// validated shapes, dtypes and contiguity.
#pragma once

#include <cstdint>

namespace mlsys::kernels::cpu {

// The update's scalars, rounded to float32 from the caller's doubles: decay = 1 - lr *
// weight_decay, b1 = beta1, a1 = 1 - beta1, b2 = beta2, a2 = 1 - beta2, bc2 the second
// bias correction, eps, step = -lr / bc1 (bc1 the first).
struct AdamScalars {
  float decay, b1, a1, b2, a2, bc2, eps, step;
};

// For i < n, in float32 and in the order of the ATen ops this replaces (mul_, add_,
// addcmul_, sqrt_, addcdiv_; torch.optim.AdamW itself uses lerp_ and sqrt(v)/sqrt(bc2)):
//   p = p * decay;  m = b1 m + a1 g;  v = b2 v + a2 g g;  p = p + step * m / (sqrt(v / bc2) + eps)
// Parallel over blocks of elements; every element is independent, so the result does not
// depend on the thread count.
void adam_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamScalars& s);

}  // namespace mlsys::kernels::cpu
