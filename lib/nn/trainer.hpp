// The trainer of every mini-batch program over LibTorch parameters (lora-finetune now;
// prolora-finetune, dot-reason, cdmpp-predict, ssrm-incremental next): named parameter
// groups each with its own AdamW, a learning-rate schedule with warm-up, gradient
// accumulation and clipping, a seeded shuffled data order, and the best parameters kept by
// validation. It is the core::LoopTask that core::run_training_loop drives; its checkpoint
// state (parameters, AdamW moments, data order and position, the CPU and device random
// generators, the kept best) makes --resume continue bit for bit.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "core/timer.hpp"
#include "core/training_loop.hpp"
#include "nn/optim.hpp"

namespace mlsys::nn {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Parameters optimised together: checkpoint names "<name>/<parameter name>".
struct ParamGroup {
  std::string name;        // "lora", "head"
  NamedTensors params;     // leaf tensors on the training device (requires_grad is set here)
  double lr = 1e-3;        // base learning rate (times the schedule's factor)
  double weight_decay = 0;
};

struct TrainSchedule {
  int64_t batch_size = 32;   // examples per micro-batch (at most the data set)
  int64_t grad_accum = 1;    // micro-batches per optimiser step
  int64_t total_steps = 0;   // optimiser steps
  double warmup_ratio = 0;   // of total_steps, linear warm-up
  std::string schedule = "linear";  // linear | cosine | constant (nn::lr_factor)
  double clip_norm = 0;      // 0 = no clipping
};

// One micro-batch's loss and what to record of it.
struct BatchLoss {
  at::Tensor loss;  // scalar, to back-propagate
  std::vector<std::pair<std::string, double>> parts;  // recorded per step, averaged over micro-batches
  int64_t tokens = 0;  // input tokens (tokens/s)
};

struct SupervisedTask {
  int64_t examples = 0;  // size of the training set (indices 0..examples-1)
  std::function<BatchLoss(const std::vector<size_t>& idx)> batch_loss;
  // Validation (eval mode); empty when there is no validation set. The trainer adds the
  // training tokens/s so far as "tokens_per_second".
  std::function<core::EvalReport()> evaluate;
};

class Trainer : public core::LoopTask {
 public:
  // The data order is a shuffle of 0..examples-1 by std::mt19937_64(seed), reshuffled when
  // used up. `device` is where the parameters live (its generator is checkpointed).
  Trainer(std::vector<ParamGroup> groups, TrainSchedule schedule, SupervisedTask task, uint64_t seed,
          c10::Device device);

  core::StepReport train_step(int64_t step) override;
  std::optional<core::EvalReport> evaluate(int64_t step) override;
  void keep_best() override;
  void save_state(core::H5Writer& w) const override;
  void load_state(const core::H5Reader& r) override;

  // Copies the kept best parameters back (no-op when none were kept).
  void restore_best();
  [[nodiscard]] int64_t trainable_parameters() const;
  [[nodiscard]] int64_t tokens() const { return tokens_; }
  // Training tokens per second of this invocation (evaluation time included).
  [[nodiscard]] double tokens_per_second() const;

 private:
  std::vector<ParamGroup> groups_;
  std::vector<AdamW> opts_;
  std::vector<at::Tensor> all_;  // every parameter, for clipping
  TrainSchedule sched_;
  SupervisedTask task_;
  c10::Device device_;
  std::vector<at::Tensor> best_;
  std::vector<int64_t> order_;
  int64_t cursor_ = 0;
  std::mt19937_64 rng_;
  int64_t warmup_ = 0;
  int64_t tokens_ = 0, tokens_here_ = 0;
  core::Timer timer_;
};

// The CPU generator's state and, on a CUDA device, that device's: checkpointed by every
// trainer so that dropout continues bit for bit.
void save_rng_state(core::H5Writer& w, const c10::Device& device, const std::string& group = "/rng");
void load_rng_state(const core::H5Reader& r, const c10::Device& device, const std::string& group = "/rng");

}  // namespace mlsys::nn
