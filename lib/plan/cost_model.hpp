// Analytical cost and memory model of one pipeline stage for one micro-batch (DynaPipe,
// arXiv 2311.10418): FLOPs over an effective device throughput that saturates with the tokens of
// the micro-batch, Korthikanti et al.'s activation formulas per recomputation mode, model
// state with mixed-precision Adam and ZeRO, and the p2p tensor between stages.
// Memory is in MB (1e6 bytes), time in milliseconds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "plan/cluster_spec.hpp"
#include "plan/measured_profile.hpp"
#include "plan/model_spec.hpp"

namespace mlsys::plan {

enum class Recompute { none, selective, full };
Recompute parse_recompute(const std::string& s);  // none|selective|full
std::string to_string(Recompute r);

// A padded micro-batch: `batch` rows of enc_len (GPT: the whole sequence) and dec_len
// (T5 decoder; 0 for GPT) tokens.
struct MicroBatchShape {
  int64_t batch = 0;
  int64_t enc_len = 0;
  int64_t dec_len = 0;
  [[nodiscard]] int64_t padded_tokens() const { return batch * (enc_len + dec_len); }
};

struct StageCost {
  double fw_ms = 0;
  double bw_ms = 0;
  double stored_mb = 0;  // activations kept from forward until backward
  double peak_mb = 0;    // stored + the transient working set of the stage's passes
  double send_mb = 0;    // the activation (and gradient) tensor sent to the next stage
};

class CostModel {
 public:
  CostModel(ModelSpec model, ClusterSpec cluster);
  // With a measured profile (`dynapipe-plan profile`, a decoder-only model of the profile's
  // widths, recomputation none only): layer and LM-head times and activation memory are
  // interpolated from it, model state is 4 x its parameter MB (fp32 weights, gradients and
  // AdamW's two moments, divided under ZeRO as below). A shape past the profile's largest
  // micro-batch size or sequence length costs 1e100 ms and MB (as the reference's padded
  // grid), so the planner never forms it. core::ConfigError when the model does not match.
  CostModel(ModelSpec model, ClusterSpec cluster, std::shared_ptr<const MeasuredProfile> profile);

  [[nodiscard]] int stages() const { return cluster_.stages; }
  [[nodiscard]] const ModelSpec& model() const { return model_; }
  [[nodiscard]] const ClusterSpec& cluster() const { return cluster_; }
  [[nodiscard]] const MeasuredProfile* profile() const { return profile_.get(); }
  // Layers [first, last) of the model held by `stage` (encoder layers come first).
  [[nodiscard]] std::pair<int, int> stage_layers(int stage) const;

  [[nodiscard]] StageCost stage_cost(int stage, const MicroBatchShape& shape, Recompute rc) const;
  // Model state (weights, gradients, optimizer, embeddings) resident on a stage's device.
  [[nodiscard]] double state_mb(int stage) const;
  // The same for any run of layers [first, last) (a chunk of an interleaved or zig-zag
  // layout): `head` adds the LM head and loss (the model's last chunk); the state adds
  // the input embedding (`embedding`) and the output projection (`head`).
  [[nodiscard]] StageCost range_cost(int first, int last, bool head, const MicroBatchShape& shape, Recompute rc) const;
  [[nodiscard]] double range_state_mb(int first, int last, bool embedding, bool head) const;
  // Device memory left for activations on a stage.
  [[nodiscard]] double available_mb(int stage) const { return cluster_.device_memory_mb - state_mb(stage); }

 private:
  // Milliseconds of `flops` of GEMMs over `tokens` rows, without the launch overhead.
  [[nodiscard]] double gemm_ms(double flops, double tokens) const;
  [[nodiscard]] StageCost profiled_range_cost(int first, int last, bool head, const MicroBatchShape& shape,
                                              Recompute rc) const;
  ModelSpec model_;
  ClusterSpec cluster_;
  std::shared_ptr<const MeasuredProfile> profile_;
};

}  // namespace mlsys::plan
