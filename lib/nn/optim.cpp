// AdamW, learning-rate schedules and gradient clipping (see optim.hpp).
#include "nn/optim.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>

#include "core/error.hpp"

namespace mlsys::nn {

AdamW::AdamW(std::vector<at::Tensor> params, AdamWConfig cfg) : params_(std::move(params)), cfg_(cfg) {
  for (const auto& p : params_) {
    m_.push_back(at::zeros_like(p));
    v_.push_back(at::zeros_like(p));
  }
}

void AdamW::load_state(const std::vector<at::Tensor>& m, const std::vector<at::Tensor>& v, int64_t steps,
                       const std::string& source) {
  if (m.size() != params_.size() || v.size() != params_.size()) {
    throw core::InputError(source + ": optimizer state for " + std::to_string(m.size()) + " tensors, expected " +
                           std::to_string(params_.size()));
  }
  c10::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!m[i].sizes().equals(params_[i].sizes()) || !v[i].sizes().equals(params_[i].sizes())) {
      throw core::InputError(source + ": optimizer state " + std::to_string(i) + " has shape " +
                             c10::str(m[i].sizes()) + ", expected " + c10::str(params_[i].sizes()));
    }
    m_[i].copy_(m[i]);
    v_[i].copy_(v[i]);
  }
  t_ = steps;
}

void AdamW::zero_grad() {
  for (auto& p : params_) p.mutable_grad() = at::Tensor();
}

void AdamW::step(double lr) {
  c10::NoGradGuard no_grad;
  ++t_;
  const double bc1 = 1.0 - std::pow(cfg_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(cfg_.beta2, static_cast<double>(t_));
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    // torch.optim.AdamW: decoupled decay, then the bias-corrected Adam step
    if (cfg_.weight_decay != 0) p.mul_(1.0 - lr * cfg_.weight_decay);
    m_[i].mul_(cfg_.beta1).add_(g, 1.0 - cfg_.beta1);
    v_[i].mul_(cfg_.beta2).addcmul_(g, g, 1.0 - cfg_.beta2);
    at::Tensor denom = (v_[i] / bc2).sqrt_().add_(cfg_.eps);
    p.addcdiv_(m_[i], denom, -lr / bc1);
  }
}

double lr_factor(int64_t step, int64_t total, int64_t warmup, const std::string& schedule) {
  if (warmup > 0 && step < warmup) return static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (schedule == "constant" || total <= warmup) return 1.0;
  const double progress = static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
  if (schedule == "cosine") return 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
  return std::max(0.0, 1.0 - progress);  // linear
}

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  c10::NoGradGuard no_grad;
  double total = 0;
  for (const auto& p : params) {
    if (p.grad().defined()) total += p.grad().pow(2).sum().item<double>();
  }
  const double norm = std::sqrt(total);
  if (max_norm > 0 && norm > max_norm) {
    const double s = max_norm / (norm + 1e-6);
    for (const auto& p : params) {
      if (p.grad().defined()) p.grad().mul_(s);
    }
  }
  return norm;
}

}  // namespace mlsys::nn
