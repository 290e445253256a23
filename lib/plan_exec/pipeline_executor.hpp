// Executing a rank's instruction list (plan::RankPlan, DynaPipe's execution plan) for real:
// forward and backward of the rank's virtual stages on a lib/nn LLaMA, activations and
// gradients exchanged with the other stages through c10d point-to-point transfers
// (tensor::ProcessGroup::send / recv: Gloo on CPU).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "nn/llama.hpp"
#include "plan/execution_plan.hpp"
#include "tensor/distributed.hpp"

namespace mlsys::plan {

struct ExecMicroBatch {
  at::Tensor ids;   // [B, L] int64
  at::Tensor mask;  // [B, L] int64, 1 = real token (right padding)
};

// One global batch as the ranks execute it.
struct ExecIteration {
  std::vector<std::pair<int, int>> stage_layers;  // virtual stage -> layers [first, last)
  std::vector<int> stage_device;                  // virtual stage -> rank
  std::vector<ExecMicroBatch> microbatches;       // by micro-batch id
  double loss_scale = 1.0;                        // loss = scale x sum of token cross-entropies
};

struct RankRun {
  double loss = 0;           // this rank's part: the scaled loss of the micro-batches it finished
  int64_t executed = 0;      // instructions executed (all of the plan's when it returns)
  int64_t forwards = 0, backwards = 0, sends = 0, recvs = 0;
};

// Runs `plan` (the instructions of rank pg->rank(), or of rank 0 when pg is null: a
// single process holding every stage), accumulating parameter gradients into `model`
// (whose parameters require grad). The tensors moved are [B, L, hidden] of the model's
// dtype. core::RuntimeFailure when an instruction finds no tensor to work on (a plan that
// does not fit the iteration) or a transfer fails.
RankRun execute_rank_plan(const nn::LlamaForCausalLM& model, const ExecIteration& it, const RankPlan& plan,
                          tensor::ProcessGroup* pg);

// The same micro-batches without a pipeline: forward and backward of the whole model on
// each, gradients accumulated; returns the scaled loss (the reference run of the tests).
double execute_unpipelined(const nn::LlamaForCausalLM& model, const ExecIteration& it);

}  // namespace mlsys::plan
