// See trainer.hpp.
#include "nn/trainer.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "core/error.hpp"
#include "tensor/h5_tensor.hpp"

namespace mlsys::nn {

namespace {

// The random generator dropout draws from on `dev` (CUDA has its own).
at::Generator device_generator(const c10::Device& dev) {
  return dev.is_cuda() ? at::globalContext().defaultGenerator(dev) : at::detail::getDefaultCPUGenerator();
}

}  // namespace

void save_rng_state(core::H5Writer& w, const c10::Device& device, const std::string& group) {
  tensor::write_tensor(w, group + "/cpu", at::detail::getDefaultCPUGenerator().get_state().to(at::kLong));
  if (device.is_cuda()) tensor::write_tensor(w, group + "/device", device_generator(device).get_state().to(at::kLong));
}

void load_rng_state(const core::H5Reader& r, const c10::Device& device, const std::string& group) {
  at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle on the shared generator
  gen.set_state(tensor::read_tensor(r, group + "/cpu").to(at::kByte));
  if (device.is_cuda()) {
    at::Generator dgen = device_generator(device);
    dgen.set_state(tensor::read_tensor(r, group + "/device").to(at::kByte));
  }
}

Trainer::Trainer(std::vector<ParamGroup> groups, TrainSchedule schedule, SupervisedTask task, uint64_t seed,
                 c10::Device device)
    : groups_(std::move(groups)), sched_(std::move(schedule)), task_(std::move(task)), device_(device), rng_(seed) {
  for (auto& g : groups_) {
    std::vector<at::Tensor> ps;
    for (auto& [name, p] : g.params) {
      p.set_requires_grad(true);
      ps.push_back(p);
      all_.push_back(p);
    }
    opts_.emplace_back(ps, AdamWConfig{0.9, 0.999, 1e-8, g.weight_decay});
  }
  order_.resize(static_cast<size_t>(task_.examples));
  std::iota(order_.begin(), order_.end(), 0);
  std::shuffle(order_.begin(), order_.end(), rng_);
  warmup_ = static_cast<int64_t>(sched_.warmup_ratio * static_cast<double>(sched_.total_steps));
}

int64_t Trainer::trainable_parameters() const {
  int64_t n = 0;
  for (const auto& p : all_) n += p.numel();
  return n;
}

double Trainer::tokens_per_second() const {
  return static_cast<double>(tokens_here_) / std::max(1e-9, timer_.seconds());
}

core::StepReport Trainer::train_step(int64_t step) {
  const int64_t N = task_.examples;
  const double lr_f = lr_factor(step, sched_.total_steps, warmup_, sched_.schedule);
  const auto accum = static_cast<double>(sched_.grad_accum);
  double loss_acc = 0;
  std::vector<std::pair<std::string, double>> parts;
  for (int64_t micro = 0; micro < sched_.grad_accum; ++micro) {
    std::vector<size_t> idx;
    while (static_cast<int64_t>(idx.size()) < std::min(sched_.batch_size, N)) {
      if (cursor_ == static_cast<int64_t>(order_.size())) {
        std::shuffle(order_.begin(), order_.end(), rng_);
        cursor_ = 0;
      }
      idx.push_back(static_cast<size_t>(order_[static_cast<size_t>(cursor_++)]));
    }
    BatchLoss b = task_.batch_loss(idx);
    (b.loss / accum).backward();
    loss_acc += b.loss.item<double>() / accum;
    if (parts.empty()) {
      for (const auto& [name, v] : b.parts) parts.emplace_back(name, 0.0);
    }
    for (size_t i = 0; i < b.parts.size() && i < parts.size(); ++i) parts[i].second += b.parts[i].second / accum;
    tokens_ += b.tokens;  // input tokens, once even when a loss runs two passes
    tokens_here_ += b.tokens;
  }
  if (!std::isfinite(loss_acc)) {
    throw core::RuntimeFailure("training loss is not finite at step " + std::to_string(step + 1));
  }
  const double gnorm = clip_grad_norm(all_, sched_.clip_norm);
  for (size_t g = 0; g < groups_.size(); ++g) {
    if (!groups_[g].params.empty()) opts_[g].step(groups_[g].lr * lr_f);
  }
  for (auto& o : opts_) o.zero_grad();
  core::StepReport r;
  r.values.emplace_back("loss", loss_acc);
  r.values.insert(r.values.end(), parts.begin(), parts.end());
  r.values.emplace_back("lr", (groups_.empty() ? 0.0 : groups_.front().lr) * lr_f);
  r.values.emplace_back("grad_norm", gnorm);
  std::ostringstream status;
  status.setf(std::ios::fixed);
  status.precision(3);
  status << "loss " << loss_acc;
  status.precision(0);
  status << " | " << tokens_per_second() << " tok/s";
  r.status = status.str();
  return r;
}

std::optional<core::EvalReport> Trainer::evaluate(int64_t /*step*/) {
  if (!task_.evaluate) return std::nullopt;
  core::EvalReport r = task_.evaluate();
  r.values.emplace_back("tokens_per_second", tokens_per_second());
  return r;
}

void Trainer::keep_best() {
  best_.clear();  // kept in memory (and in checkpoints); the program writes it once at the end
  for (const auto& p : all_) best_.push_back(p.detach().clone());
}

void Trainer::restore_best() {
  if (best_.empty()) return;
  c10::NoGradGuard ng;
  for (size_t i = 0; i < all_.size(); ++i) all_[i].copy_(best_[i]);
}

void Trainer::save_state(core::H5Writer& w) const {
  w.set_attr("/", "tokens", tokens_);
  w.set_attr("/", "cursor", cursor_);
  std::ostringstream rng;
  rng << rng_;
  w.set_attr("/", "data_rng", rng.str());
  w.write("/order", std::span<const int64_t>(order_));
  save_rng_state(w, device_);
  size_t i = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (const auto& [name, p] : groups_[g].params) {
      const std::string n = groups_[g].name + "/" + name;
      tensor::write_tensor(w, "/params/" + n, p);
      if (!best_.empty()) tensor::write_tensor(w, "/best/" + n, best_[i]);
      ++i;
    }
    const AdamW& o = opts_[g];
    w.set_attr("/", "adam_steps_" + groups_[g].name, o.steps());
    for (size_t k = 0; k < o.first_moments().size(); ++k) {
      tensor::write_tensor(w, "/adam/" + groups_[g].name + "/m/" + std::to_string(k), o.first_moments()[k]);
      tensor::write_tensor(w, "/adam/" + groups_[g].name + "/v/" + std::to_string(k), o.second_moments()[k]);
    }
  }
}

void Trainer::load_state(const core::H5Reader& r) {
  const std::string src = r.path().string();
  tokens_ = r.attr_int("/", "tokens");
  cursor_ = r.attr_int("/", "cursor");
  std::istringstream rng(r.attr_string("/", "data_rng"));
  rng >> rng_;
  if (!rng) throw core::InputError(src + ": attribute 'data_rng': expected a mt19937_64 state, found unreadable text");
  std::vector<int64_t> order = r.read_i64("/order");
  if (order.size() != order_.size()) {
    throw core::InputError(src + ": data order of " + std::to_string(order.size()) + " examples, but the training set has " +
                           std::to_string(order_.size()));
  }
  {
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i < sorted.size(); ++i) {
      if (sorted[i] != static_cast<int64_t>(i)) {
        throw core::InputError(src + ": /order: expected a permutation of 0.." + std::to_string(sorted.size()) +
                               " - 1, found a repeated or out-of-range index");
      }
    }
  }
  order_ = std::move(order);
  if (cursor_ < 0 || cursor_ > static_cast<int64_t>(order_.size())) {
    throw core::InputError(src + ": attribute 'cursor' " + std::to_string(cursor_) + " outside the data order");
  }
  load_rng_state(r, device_);
  c10::NoGradGuard ng;
  best_.clear();
  const bool has_best = r.has("/best");
  auto read_checked = [&](const std::string& name, const at::Tensor& like) {
    at::Tensor t = tensor::read_tensor(r, name);
    if (!t.sizes().equals(like.sizes())) {
      throw core::InputError(src + ": " + name + " has shape " + c10::str(t.sizes()) + ", expected " +
                             c10::str(like.sizes()));
    }
    return t;
  };
  for (size_t g = 0; g < groups_.size(); ++g) {
    for (auto& [name, p] : groups_[g].params) {
      const std::string n = groups_[g].name + "/" + name;
      p.copy_(read_checked("/params/" + n, p));
      if (has_best) best_.push_back(read_checked("/best/" + n, p).to(device_));
    }
    AdamW& o = opts_[g];
    std::vector<at::Tensor> m, v;
    for (size_t k = 0; k < o.first_moments().size(); ++k) {
      m.push_back(tensor::read_tensor(r, "/adam/" + groups_[g].name + "/m/" + std::to_string(k)));
      v.push_back(tensor::read_tensor(r, "/adam/" + groups_[g].name + "/v/" + std::to_string(k)));
    }
    o.load_state(m, v, r.attr_int("/", "adam_steps_" + groups_[g].name), src);
  }
}

}  // namespace mlsys::nn
