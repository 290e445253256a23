// LLaMA-style decoders (LlamaForCausalLM): RMSNorm, rotary position embeddings in Hugging
// Face's rotate-half convention, grouped key/value heads, SwiGLU MLP, a tied or untied
// lm_head; loaded from a Hugging Face folder with its tensor names ("model.layers.0.
// self_attn.q_proj.weight"), attention written by hand so structured dropout reaches it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "nn/model.hpp"

namespace mlsys::nn {

struct LlamaConfig {
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;
  int64_t head_dim = 128;  // hidden_size / num_attention_heads unless config.json says
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  nlohmann::json raw;  // the whole config.json, written back on save (empty: built from the fields)

  // HF config.json fields (§7.2 of the method notes): model_type "llama"; rope_theta at the
  // top level or in rope_parameters (transformers 5) with rope_type "default"; no
  // rope_scaling, hidden_act silu, attention_bias/mlp_bias false. core::InputError naming
  // `source` and the field otherwise.
  static LlamaConfig from_json(const nlohmann::json& j, const std::string& source);
  // The config.json of this model (raw with the fields overwritten, or built from them).
  [[nodiscard]] nlohmann::json to_json() const;
};

// The HF tensor names and shapes a checkpoint of `cfg` holds (lm_head.weight only when untied).
[[nodiscard]] std::vector<std::pair<std::string, std::vector<int64_t>>> llama_tensor_shapes(const LlamaConfig& cfg);

class LlamaForCausalLM : public TransformerModel {
 public:
  // Loads `dir` (config.json + model.safetensors or a sharded index). A missing tensor or
  // a shape that differs from the config is a core::InputError naming the file and tensor.
  static LlamaForCausalLM load(const std::filesystem::path& dir);
  // From tensors in memory (HF names), checked like load with `source` in messages.
  static LlamaForCausalLM from_tensors(const LlamaConfig& cfg, const std::map<std::string, at::Tensor>& tensors,
                                       const std::string& source);
  // A randomly initialised model (N(0, 0.02) weights, unit norms): tests.
  static LlamaForCausalLM random(const LlamaConfig& cfg, uint64_t seed);

  // logits [B, L, vocab] for input_ids/attention_mask [B, L]. Positions are 0..L-1 (as HF's
  // forward without position_ids), so pad on the right. Real tokens attend causally to
  // the real tokens; the sites in `drop` act when `training` (attn_logits / attn_weights
  // keep masks, hidden = the MLP output before the residual). The first real key of every
  // row is never dropped and rows before the first real token see the (causal) pads, so
  // no row is left without keys: no NaN with padding or on causal row 0.
  [[nodiscard]] at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                   const DropoutSites& drop = {}, bool training = false) const override;

  // forward() in pieces, for running a run of layers alone (a pipeline stage, one layer
  // profiled): forward(ids, mask) == head(layer(n-1, ... layer(0, embed(ids), ctx) ..., ctx))
  // with ctx = layer_context(mask, drop, training). The context holds the RoPE tables and
  // the attention visibility of the [B, L] mask, shared by every layer; it points into
  // `drop`, which must outlive it.
  struct LayerContext {
    int64_t batch = 0, length = 0;
    at::Tensor attention_mask, cos, sin, masked_key, first_key, visible;
    bool fused = true, padded = false;
    const DropSite* s_logits = nullptr;
    const DropSite* s_weights = nullptr;
    const DropSite* s_hidden = nullptr;
  };
  [[nodiscard]] LayerContext layer_context(const at::Tensor& attention_mask, const DropoutSites& drop = {},
                                           bool training = false) const;
  [[nodiscard]] at::Tensor embed(const at::Tensor& input_ids) const;
  // Decoder layer `i` ("model.layers.{i}.") on hidden states x [B, L, hidden].
  [[nodiscard]] at::Tensor layer(int64_t i, const at::Tensor& x, const LayerContext& ctx, bool training = false) const;
  // The final norm and lm_head: logits [B, L, vocab].
  [[nodiscard]] at::Tensor head(const at::Tensor& x, bool training = false) const;

  // "model.layers.{i}.self_attn.{q,k,v,o}_proj", "model.layers.{i}.mlp.{gate,up,down}_proj",
  // then "lm_head".
  [[nodiscard]] std::vector<std::string> linear_names() const override;
  [[nodiscard]] std::string output_layer() const override { return "lm_head"; }
  [[nodiscard]] std::string task_type() const override { return "CAUSAL_LM"; }
  // save_hf (the base's) writes no lm_head.weight when tied: params() holds none then.
  [[nodiscard]] nlohmann::json config_json() const override { return cfg_.to_json(); }
  // With tied embeddings "lm_head.weight" is the embedding matrix.
  [[nodiscard]] at::Tensor& param(const std::string& name) override;
  using TransformerModel::param;

  [[nodiscard]] const LlamaConfig& config() const { return cfg_; }

  // Which forward pass this model runs (ForwardPath in structured_dropout.hpp): fast unless
  // set; reference for comparisons.
  void set_forward_path(ForwardPath p) { forward_path_ = p; }
  [[nodiscard]] ForwardPath forward_path() const { return forward_path_; }

 private:
  LlamaConfig cfg_;
  ForwardPath forward_path_ = ForwardPath::fast;
};

}  // namespace mlsys::nn
