// What `dynapipe-plan run` executes per global batch and method: the micro-batches as
// tensors, the layout's stages, and each rank's instruction list with the simulator's
// prediction. DynaPipe's from its plan (record_timeline); a baseline's from its micro-batch
// shapes simulated under 1F1B on the linear layout (as `compare` judges it).
#pragma once

#include <cstdint>
#include <vector>

#include "plan/baselines.hpp"
#include "plan/dynapipe_planner.hpp"
#include "plan_exec/pipeline_executor.hpp"

namespace mlsys::plan {

struct PlannedIteration {
  ExecIteration exec;
  std::vector<RankPlan> ranks;
  double predicted_ms = 0;   // the simulator's makespan of these plans
  int64_t real_tokens = 0;   // tokens of the batch's samples
  int64_t padded_tokens = 0;
  int64_t microbatches = 0;
  std::string schedule, layout;
};

// The token ids of sample `index` (its input + target tokens), seeded by (seed, index).
at::Tensor sample_tokens(int64_t index, int64_t length, int64_t vocab, uint64_t seed);

// A DynaPipe plan (one replica; plan_batch with record_timeline) as tensors: each
// micro-batch's samples right-padded to its shape; loss scale 1 / the predicted tokens.
PlannedIteration dynapipe_iteration(const CostModel& cost, const BatchPlan& plan, const std::vector<SampleLength>& samples,
                                    uint64_t seed);

// A baseline's micro-batches (baseline_microbatches of `batch`), every row full of seeded
// tokens (the baseline's compute is that of its padded shapes), under 1F1B.
PlannedIteration baseline_iteration(const CostModel& cost, BaselineMethod m, int64_t knob,
                                    const std::vector<SampleLength>& samples, const std::vector<int64_t>& batch,
                                    const BaselineOptions& opt, uint64_t seed);

}  // namespace mlsys::plan
