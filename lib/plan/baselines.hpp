// The batching baselines DynaPipe is compared against (arXiv 2311.10418), each swept over
// its knob with the best (lowest simulated iteration time over all batches) kept:
// padding the whole batch, packing to max length with a fixed micro-batch size, a fixed
// micro-batch size after sorting, and a fixed token budget. Each runs under 1F1B; every
// feasible setting is simulated and the fastest simulated one is reported.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plan/dynapipe_planner.hpp"

namespace mlsys::plan {

enum class BaselineMethod { padding, packing, fixed_mbs, fixed_tokens };
std::string to_string(BaselineMethod m);
BaselineMethod parse_baseline(const std::string& s);  // padding|packing|fixed_mbs|fixed_tokens

struct BaselineOptions {
  std::vector<int64_t> microbatch_sizes = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
  std::vector<int64_t> token_budgets = {512, 1024, 2048, 4096, 8192, 16384, 32768, 65536};
  int64_t max_seqlen = 2048;  // packing row length
  int round_multiple = 8;
  int decoder_offset = 2;
  std::vector<Recompute> recompute = {Recompute::none, Recompute::selective, Recompute::full};
};

// The micro-batch shapes one method makes of one global batch with knob value `knob`.
std::vector<MicroBatchShape> baseline_microbatches(BaselineMethod m, const ModelSpec& model,
                                                   const std::vector<SampleLength>& samples,
                                                   const std::vector<int64_t>& ids, int64_t knob,
                                                   const BaselineOptions& opt);

struct BaselineResult {
  BaselineMethod method = BaselineMethod::padding;
  bool feasible = false;
  int64_t knob = 0;
  Recompute recompute = Recompute::none;
  int64_t microbatches = 0;   // over all batches
  int64_t real_tokens = 0;
  int64_t padded_tokens = 0;
  double estimate_ms = 0;     // sum over batches of (S-1) max t + sum t (slowest replica)
  double time_ms = 0;         // simulated 1F1B, sum over batches
  double peak_mb = 0;
};

// One setting of `m` (knob, recomputation) over the global batches, simulated under 1F1B
// per replica; feasible = false when some replica's micro-batches do not fit in memory.
BaselineResult evaluate_baseline(BaselineMethod m, const CostModel& cost, const std::vector<SampleLength>& samples,
                                 const std::vector<std::vector<int64_t>>& batches, int64_t knob, Recompute rc,
                                 const BaselineOptions& opt);

// Sweeps every (knob, recomputation) setting of `m`, simulates each feasible one and keeps
// the fastest simulated (DynaPipe is judged by its simulated makespan too).
BaselineResult run_baseline(BaselineMethod m, const CostModel& cost, const std::vector<SampleLength>& samples,
                            const std::vector<std::vector<int64_t>>& batches, const BaselineOptions& opt);

}  // namespace mlsys::plan
