// The analytical per-stage cost model.
#include "plan/cost_model.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace mlsys::plan {

Recompute parse_recompute(const std::string& s) {
  if (s == "none") return Recompute::none;
  if (s == "selective") return Recompute::selective;
  if (s == "full") return Recompute::full;
  throw core::ConfigError("recompute: expected none, selective or full, found '" + s + "'");
}

std::string to_string(Recompute r) {
  switch (r) {
    case Recompute::none: return "none";
    case Recompute::selective: return "selective";
    case Recompute::full: return "full";
  }
  return "none";
}

CostModel::CostModel(ModelSpec model, ClusterSpec cluster) : model_(model), cluster_(cluster) {
  if (model_.total_layers() < cluster_.stages) {
    throw core::ConfigError("model has " + std::to_string(model_.total_layers()) + " layers, fewer than the " +
                            std::to_string(cluster_.stages) + " pipeline stages");
  }
}

CostModel::CostModel(ModelSpec model, ClusterSpec cluster, std::shared_ptr<const MeasuredProfile> profile)
    : CostModel(model, cluster) {
  profile_ = std::move(profile);
  if (!profile_) return;
  const ProfileMetadata& m = profile_->metadata();
  auto mismatch = [&](const char* key, int64_t want, int64_t found) {
    if (want != found) {
      throw core::ConfigError("model." + std::string(key) + ": the profile " + profile_->source() + " was measured with " +
                              std::to_string(found) + ", the config says " + std::to_string(want));
    }
  };
  if (model_.kind != ModelKind::gpt) {
    throw core::ConfigError("model.kind: a measured profile holds decoder-only layers; expected gpt, found t5");
  }
  mismatch("hidden", model_.hidden, m.hidden);
  mismatch("heads", model_.heads, m.heads);
  mismatch("kv_channels", model_.kv_channels, m.kv_channels);
  mismatch("ffn", model_.ffn, m.ffn);
}

std::pair<int, int> CostModel::stage_layers(int stage) const {
  const int L = model_.total_layers(), S = cluster_.stages;
  return {stage * L / S, (stage + 1) * L / S};
}

double CostModel::gemm_ms(double flops, double tokens) const {
  // Small micro-batches run far from peak: efficiency saturates with the token count.
  if (flops <= 0) return 0.0;
  const double eff = cluster_.efficiency * tokens / (tokens + cluster_.half_saturation_tokens);
  return flops / (cluster_.peak_tflops * 1e12 * eff) * 1e3;
}

StageCost CostModel::stage_cost(int stage, const MicroBatchShape& shape, Recompute rc) const {
  auto [first, last] = stage_layers(stage);
  return range_cost(first, last, stage == cluster_.stages - 1, shape, rc);
}

StageCost CostModel::profiled_range_cost(int first, int last, bool head, const MicroBatchShape& shape,
                                         Recompute rc) const {
  if (rc != Recompute::none) {
    throw core::ConfigError("planner.recompute: a measured profile holds no recomputation; expected [\"none\"], found " +
                            to_string(rc));
  }
  // The reference's stage formulas (planners.md §2.3): times and stored activation add up
  // over the stage's layers, the peak is a layer's peak above the earlier layers' stored.
  constexpr double kBlocked = 1e100;
  const auto b = static_cast<double>(shape.batch), s = static_cast<double>(shape.enc_len);
  auto get = [&](ProfileMetric m) { return profile_->at(m, b, s); };
  const auto fw = get(ProfileMetric::forward_encoder), bw = get(ProfileMetric::backward_encoder),
             st = get(ProfileMetric::encoder_activation), pk = get(ProfileMetric::peak_encoder_activation),
             hf = get(ProfileMetric::forward_postprocess), hb = get(ProfileMetric::backward_postprocess);
  StageCost c;
  c.send_mb = model_.bytes_per_value * b * static_cast<double>(model_.hidden) * s / 1e6;
  if (!fw || !bw || !st || !pk || !hf || !hb) {
    c.fw_ms = c.bw_ms = c.stored_mb = c.peak_mb = kBlocked;
    return c;
  }
  for (int l = first; l < last; ++l) {
    c.fw_ms += *fw;
    c.bw_ms += *bw;
    c.peak_mb = std::max(c.peak_mb, c.stored_mb + *pk);
    c.stored_mb += *st;
  }
  if (head) {
    c.fw_ms += *hf;
    c.bw_ms += *hb;
  }
  c.peak_mb = std::max(c.peak_mb, c.stored_mb);
  return c;
}

StageCost CostModel::range_cost(int first, int last, bool head, const MicroBatchShape& shape, Recompute rc) const {
  if (profile_) return profiled_range_cost(first, last, head, shape, rc);
  const double b = static_cast<double>(shape.batch);
  const double h = static_cast<double>(model_.hidden), d = static_cast<double>(model_.attention_width()),
               f = static_cast<double>(model_.ffn), a = static_cast<double>(model_.heads),
               V = static_cast<double>(model_.vocab);
  const double scale = model_.bytes_per_value / 2.0;  // the formulas count 16-bit values
  const double se = static_cast<double>(shape.enc_len), sd = static_cast<double>(shape.dec_len);
  const bool t5 = model_.kind == ModelKind::t5;

  StageCost c;
  double transient = 0;  // the largest working set of one layer beyond what it stores
  bool holds_decoder = false;
  for (int l = first; l < last; ++l) {
    const bool dec = t5 && l >= model_.encoder_layers;
    holds_decoder |= dec;
    const double s = dec ? sd : se;
    const double tokens = b * s;
    // Self-attention block + MLP (Megatron FLOP count, 2 per multiply-add). Each GEMM group
    // runs at the efficiency of its own token count (the cross-attention K/V projection of a
    // decoder layer sees the encoder's tokens).
    const double linear = 2 * tokens * (h * 3 * d + d * h + 2 * h * f);
    const double attn = 4 * b * s * s * d;
    double act_linear = tokens * (12 * h + 6 * d + 4 * f);
    double act_attn = 5 * a * s * s * b;
    double work = tokens * 4 * f + 4 * a * s * s * b;  // gradient buffers of MLP and scores
    double fw_core = gemm_ms(attn, tokens);          // recomputed by selective recomputation
    double fw_rest = gemm_ms(linear, tokens);
    if (dec) {
      // Cross-attention: Q from the decoder, K/V from the encoder output.
      const double te = b * se;
      fw_rest += gemm_ms(2 * tokens * (h * d + d * h), tokens) + gemm_ms(2 * te * h * 2 * d, te);
      fw_core += gemm_ms(4 * b * sd * se * d, std::max(tokens, te));
      act_linear += tokens * (5 * h + 6 * d) + te * (2 * h + 4 * d);
      act_attn += 5 * a * sd * se * b;
      work += 4 * a * sd * se * b;
    }
    const double overhead = cluster_.kernel_overhead_us * 1e-3;
    const double fw = fw_core + fw_rest + overhead;
    double bw = 2 * (fw_core + fw_rest) + overhead;
    double stored = 0, extra = 0;
    switch (rc) {
      case Recompute::none:
        stored = act_linear + act_attn;
        break;
      case Recompute::selective:  // recompute the attention core (Korthikanti's 34sbh)
        stored = act_linear;
        extra = act_attn;
        bw += fw_core;
        break;
      case Recompute::full:  // keep the layer input, rerun the whole forward in backward
        stored = 2 * tokens * h + (dec ? 2 * b * se * h : 0);
        extra = act_linear + act_attn;
        bw += fw - overhead;
        break;
    }
    c.fw_ms += fw;
    c.bw_ms += bw;
    c.stored_mb += stored * scale / 1e6;
    transient = std::max(transient, (work + extra) * scale / 1e6);
  }
  if (head) {
    // LM head + loss: logits in 16-bit and fp32 for the softmax, transient only.
    const double tokens = b * (t5 ? sd : se);
    c.fw_ms += gemm_ms(2 * tokens * h * V, tokens) + cluster_.kernel_overhead_us * 1e-3;
    c.bw_ms += gemm_ms(4 * tokens * h * V, tokens) + cluster_.kernel_overhead_us * 1e-3;
    transient = std::max(transient, tokens * V * 6 / 1e6);
  }
  c.peak_mb = c.stored_mb + transient;
  // The tensor crossing to the next stage: the hidden states, plus the encoder output once
  // the pipeline is inside the decoder (a T5 decoder stage needs it for cross-attention).
  const bool next_decoder = t5 && last > model_.encoder_layers;
  c.send_mb = model_.bytes_per_value * b * h * ((holds_decoder || next_decoder) && t5 ? (sd + se) : se) / 1e6;
  return c;
}

double CostModel::state_mb(int stage) const {
  auto [first, last] = stage_layers(stage);
  return range_state_mb(first, last, stage == 0, stage == cluster_.stages - 1);
}

double CostModel::range_state_mb(int first, int last, bool embedding, bool head) const {
  if (profile_) {
    double mb = (last - first) * profile_->layer_params_mb();
    if (embedding) mb += profile_->embedding_params_mb();
    if (head) mb += profile_->embedding_params_mb();  // untied LM head, the embedding's size
    const double dp = cluster_.data_parallel;
    return mb * (1.0 / (cluster_.zero_stage >= 3 ? dp : 1.0) + 1.0 / (cluster_.zero_stage >= 2 ? dp : 1.0) +
                 2.0 / (cluster_.zero_stage >= 1 ? dp : 1.0));
  }
  double params = 0;
  for (int l = first; l < last; ++l) {
    const bool dec = model_.kind == ModelKind::t5 && l >= model_.encoder_layers;
    params += dec ? model_.decoder_layer_params() : model_.encoder_layer_params();
  }
  const double emb = static_cast<double>(model_.vocab) * static_cast<double>(model_.hidden);
  if (embedding) params += emb;  // input embedding
  if (head) params += emb;       // output projection (a tied copy in Megatron)
  // Mixed-precision Adam: 16-bit weight and gradient, fp32 master weight and two moments.
  const double bv = model_.bytes_per_value;
  const double dp = cluster_.data_parallel;
  const double weight = bv / (cluster_.zero_stage >= 3 ? dp : 1.0);
  const double grad = bv / (cluster_.zero_stage >= 2 ? dp : 1.0);
  const double optim = 12.0 / (cluster_.zero_stage >= 1 ? dp : 1.0);
  return params * (weight + grad + optim) / 1e6;
}

}  // namespace mlsys::plan
