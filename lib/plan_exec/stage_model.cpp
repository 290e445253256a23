// The stage model: a LLaMA of the config's widths, and its loss.
#include "plan_exec/stage_model.hpp"

#include <ATen/ATen.h>

namespace mlsys::plan {

nn::LlamaForCausalLM make_stage_model(const ModelSpec& m, int64_t max_len, uint64_t seed, at::ScalarType dtype,
                                      const c10::Device& device, int64_t layers) {
  nn::LlamaConfig cfg;
  cfg.vocab_size = m.vocab;
  cfg.hidden_size = m.hidden;
  cfg.intermediate_size = m.ffn;
  cfg.num_hidden_layers = layers >= 0 ? layers : m.encoder_layers;
  cfg.num_attention_heads = m.heads;
  cfg.num_key_value_heads = m.heads;
  cfg.head_dim = m.kv_channels;
  cfg.max_position_embeddings = max_len;
  cfg.tie_word_embeddings = false;
  nn::LlamaForCausalLM model = nn::LlamaForCausalLM::random(cfg, seed);
  for (auto& [name, t] : model.params()) t = t.to(device, dtype).requires_grad_(true);
  return model;
}

nn::LlamaForCausalLM::LayerContext masked_context(const nn::LlamaForCausalLM& model, const at::Tensor& mask) {
  nn::LlamaForCausalLM::LayerContext c = model.layer_context(mask);
  if (c.fused && !c.visible.defined()) {
    c.padded = true;
    c.visible = c.masked_key.logical_not();
  }
  return c;
}

at::Tensor causal_lm_loss_sum(const at::Tensor& logits, const at::Tensor& ids, const at::Tensor& mask) {
  const int64_t L = ids.size(1);
  const at::Tensor pred = logits.narrow(1, 0, L - 1).reshape({-1, logits.size(-1)});
  at::Tensor target = ids.narrow(1, 1, L - 1).clone();
  target.masked_fill_(mask.narrow(1, 1, L - 1).eq(0), -100);
  return at::cross_entropy_loss(pred, target.reshape({-1}), std::nullopt, at::Reduction::Sum, -100);
}

}  // namespace mlsys::plan
