// The analytical cost model written out on a (micro-batch size, sequence length) grid as
// profile records (the reference DynaPipe's profile format, planners.md §2.2), so that a
// second planner (the reference's ProfileBasedCostModel) and this one read identical costs.
#pragma once

#include <cstdint>
#include <vector>

#include "plan/cost_model.hpp"
#include "plan/measured_profile.hpp"

namespace mlsys::plan {

// One record per (mbs, seqlen), mbs-major: one layer's forward/backward time and stored and
// peak activation (CostModel::range_cost of layer 0, no recomputation), the LM head and
// loss's times (range_cost of no layer with the head), and parameter MB chosen so that a
// profile-driven CostModel (4 x parameter MB) charges the analytical model state exactly:
// model_encoder = state of one layer / 4, model_embedding = state of the embedding / 4.
// The head's transient memory has no profile line and is dropped. Decoder-only (gpt)
// models only (core::ConfigError otherwise).
std::vector<ProfileRecord> analytical_profile_records(const CostModel& cost, const std::vector<int64_t>& microbatch_sizes,
                                                      const std::vector<int64_t>& seqlens);

}  // namespace mlsys::plan
