// The hook by which parameter-efficient adapters (LoRA, PRoLoRA, ...) attach to a model's
// Linear layers without the model knowing them: y = x Wᵀ + b + adapter.delta(x).
#pragma once

#include <ATen/core/Tensor.h>

namespace mlsys::nn {

class LinearAdapter {
 public:
  virtual ~LinearAdapter() = default;
  // The adapter's additive output for input x [..., d_in] -> [..., d_out]; `training`
  // turns on its own input dropout. An adapter merged into the base weight returns an
  // undefined tensor (nothing to add).
  [[nodiscard]] virtual at::Tensor delta(const at::Tensor& x, bool training) const = 0;
};

}  // namespace mlsys::nn
