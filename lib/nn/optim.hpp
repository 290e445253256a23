// Optimiser and schedule glue for the training loops: AdamW (decoupled weight decay, as
// torch.optim.AdamW), learning-rate schedules with linear warm-up, gradient-norm clipping.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mlsys::nn {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(std::vector<at::Tensor> params, AdamWConfig cfg);
  // One update with learning rate `lr` from the parameters' .grad(). A parameter whose
  // gradient is undefined (none) is skipped: neither its moments nor its value change, and
  // no weight decay is applied to it.
  void step(double lr);
  // Sets every gradient to none (torch's zero_grad(set_to_none=True), its default): the
  // next backward writes fresh gradients (0 + g == g exactly, so where every parameter
  // gets one this equals zeroing), and a parameter that gets none is skipped by step().
  void zero_grad();
  [[nodiscard]] int64_t steps() const { return t_; }
  // The moment estimates (same order as the parameters), for checkpoints.
  [[nodiscard]] const std::vector<at::Tensor>& first_moments() const { return m_; }
  [[nodiscard]] const std::vector<at::Tensor>& second_moments() const { return v_; }
  // Restores a checkpointed state; core::InputError naming `source` when the count or a
  // shape differs from the parameters'.
  void load_state(const std::vector<at::Tensor>& m, const std::vector<at::Tensor>& v, int64_t steps,
                  const std::string& source);

 private:
  std::vector<at::Tensor> params_, m_, v_;
  AdamWConfig cfg_;
  int64_t t_ = 0;
};

// Multiplier of the base learning rate at optimiser step `step` (0-based) of `total`:
// linear warm-up over `warmup` steps, then "linear" decay to 0, "cosine" to 0 or "constant".
[[nodiscard]] double lr_factor(int64_t step, int64_t total, int64_t warmup, const std::string& schedule);

// Scales gradients so their global L2 norm is at most max_norm; returns the norm before.
double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace mlsys::nn
