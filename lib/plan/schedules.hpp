// Pipeline schedules as per-device compute orders (DynaPipe, arXiv 2311.10418): 1F1B and
// interleaved 1F1B as in Megatron-LM, and DynaPipe's memory-aware cyclic schedule, whose
// order is then replayed wait-free by the event simulator ("wait-free-cyclic").
#pragma once

#include <vector>

#include "plan/simulator.hpp"

namespace mlsys::plan {

// Linear assignment (virtual stage i on device i): warm-up of (devices - d - 1) forwards,
// then one forward / one backward, then the remaining backwards.
Schedule one_f_one_b(const PipelineSpec& spec, int n_mb);

// Interleaved assignment (stage v on device v % devices, `chunks` = stages / devices):
// Megatron's warm-up 2(p - d - 1) + (chunks - 1) p and chunked micro-batch order.
// Requires n_mb to be a multiple of the device count (as Megatron does).
Schedule interleaved_one_f_one_b(const PipelineSpec& spec, int n_mb);

struct CyclicOptions {
  int max_in_flight = 0;  // micro-batches holding activations on a device (0 = unbounded)
  bool check_memory = true;
};

// Synchronous rounds: in each round every device runs at most one backward, then at most
// one forward, among the ops whose predecessor finished in an earlier round (lowest
// (micro-batch, stage) first). A forward is held back while current + peak activation
// would exceed the device's memory limit or the in-flight cap is reached; if no device
// can move, the oldest held-back forward runs anyway (the plan is then rejected on memory).
Schedule cyclic(const PipelineSpec& spec, const std::vector<MicroBatchWork>& mbs, const CyclicOptions& opt = {});

}  // namespace mlsys::plan
