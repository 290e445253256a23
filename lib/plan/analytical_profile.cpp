// The analytical cost model sampled on a profile grid (see the header).
#include "plan/analytical_profile.hpp"

#include "core/error.hpp"

namespace mlsys::plan {

std::vector<ProfileRecord> analytical_profile_records(const CostModel& cost, const std::vector<int64_t>& microbatch_sizes,
                                                      const std::vector<int64_t>& seqlens) {
  if (cost.model().kind != ModelKind::gpt) {
    throw core::ConfigError("model.kind: profile files hold decoder-only layers; expected gpt, found t5");
  }
  if (cost.profile() != nullptr) {
    throw core::ConfigError("model.profile: export-profile writes the analytical model; expected \"\", found " +
                            cost.profile()->source());
  }
  const int L = cost.model().total_layers();
  // A profile-driven model charges 4 x parameter MB (fp32 weights, gradients, two moments);
  // dividing the analytical state by 4 makes it charge the analytical state exactly.
  const double layer_state = cost.range_state_mb(0, 1, false, false) / 4.0;
  const double embedding_state = cost.range_state_mb(0, 0, true, false) / 4.0;
  std::vector<ProfileRecord> out;
  for (int64_t b : microbatch_sizes) {
    for (int64_t s : seqlens) {
      const MicroBatchShape shape{b, s, 0};
      const StageCost layer = cost.range_cost(0, 1, false, shape, Recompute::none);
      const StageCost head = cost.range_cost(L, L, true, shape, Recompute::none);
      ProfileRecord r;
      r.mbs = b;
      r.seqlen = s;
      r.forward_encoder_ms = layer.fw_ms;
      r.backward_encoder_ms = layer.bw_ms;
      r.forward_postprocess_ms = head.fw_ms;
      r.backward_postprocess_ms = head.bw_ms;
      r.encoder_activation_mb = layer.stored_mb;
      r.peak_encoder_activation_mb = layer.peak_mb;
      r.model_embedding_mb = embedding_state;
      r.model_encoder_mb = layer_state;
      out.push_back(r);
    }
  }
  return out;
}

}  // namespace mlsys::plan
