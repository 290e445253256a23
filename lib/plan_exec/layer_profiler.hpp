// `dynapipe-plan profile`: measures one decoder layer and the post-processing (final norm,
// LM head, loss) of the stage model on a grid of micro-batch sizes and sequence lengths:
// forward and backward wall time (median of the timed passes) and activation memory,
// counted through c10's CPU allocator (a counting allocator installed for the run): the
// stored activation is what the layer's forward leaves allocated (tensors saved for
// backward and its output), the peak the high-water of allocations during the forward,
// both above what was allocated before it. Scratch memory that BLAS or oneDNN allocate
// outside c10 is not seen.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "plan/measured_profile.hpp"
#include "plan/model_spec.hpp"

namespace mlsys::plan {

struct LayerProfileOptions {
  std::vector<int64_t> microbatch_sizes;
  std::vector<int64_t> seqlens;
  int repeats = 5;
  int warmup = 1;
  uint64_t seed = 1;
  at::ScalarType dtype = at::kFloat;
};

// One record per grid point (mbs-major), CPU only (core::UsageError for another device).
// `on_point` is called after each point (progress, core::poll_stop).
std::vector<ProfileRecord> profile_layers(const ModelSpec& model, const LayerProfileOptions& opt,
                                          const c10::Device& device,
                                          const std::function<void(size_t done, size_t total)>& on_point = {});

}  // namespace mlsys::plan
