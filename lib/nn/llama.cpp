// LLaMA-style decoders (see llama.hpp): config.json fields, checkpoint loading through the
// shared Hugging Face helpers (checkpoint.hpp) and the hand-written forward pass.
#include "nn/llama.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "nn/checkpoint.hpp"
#include "tensor/safetensors.hpp"

namespace mlsys::nn {
namespace fs = std::filesystem;
using nlohmann::json;

LlamaConfig LlamaConfig::from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw core::InputError(source + ": expected a JSON object, found " + std::string(j.type_name()));
  auto found = [&](const std::string& key) { return j.contains(key) ? core::short_json(j[key]) : std::string("nothing"); };
  auto bad = [&](const std::string& key, const std::string& expected) {
    throw core::InputError(source + ": field '" + key + "': expected " + expected + ", found " + found(key));
  };
  auto has = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  if (!j.contains("model_type") || j["model_type"] != "llama") bad("model_type", "\"llama\"");
  LlamaConfig c;
  auto get_int = [&](const char* key, int64_t& out, bool required) {
    if (!has(key)) {
      if (required) bad(key, "a positive integer");
      return;
    }
    if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0) bad(key, "a positive integer");
    out = j[key].get<int64_t>();
  };
  auto get_number = [&](const json& obj, const char* key, double& out, const std::string& field) {
    if (!obj.contains(key) || obj[key].is_null()) return;
    if (!obj[key].is_number() || obj[key].get<double>() <= 0) bad(field, "a positive number");
    out = obj[key].get<double>();
  };
  auto require_false = [&](const char* key) {
    if (has(key) && !(j[key].is_boolean() && !j[key].get<bool>())) bad(key, "false (biases are not supported)");
  };
  get_int("vocab_size", c.vocab_size, true);
  get_int("hidden_size", c.hidden_size, true);
  get_int("intermediate_size", c.intermediate_size, true);
  get_int("num_hidden_layers", c.num_hidden_layers, true);
  get_int("num_attention_heads", c.num_attention_heads, true);
  c.num_key_value_heads = c.num_attention_heads;  // HF's default: no grouping
  get_int("num_key_value_heads", c.num_key_value_heads, false);
  get_int("max_position_embeddings", c.max_position_embeddings, false);
  if (c.num_attention_heads % c.num_key_value_heads != 0) bad("num_key_value_heads", "a divisor of num_attention_heads");
  if (has("head_dim")) {
    get_int("head_dim", c.head_dim, true);
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) bad("num_attention_heads", "a divisor of hidden_size");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0) bad("head_dim", "an even head dimension (RoPE rotates pairs)");
  get_number(j, "rms_norm_eps", c.rms_norm_eps, "rms_norm_eps");
  get_number(j, "rope_theta", c.rope_theta, "rope_theta");
  if (has("rope_parameters")) {  // transformers 5: {"rope_type": "default", "rope_theta": ...}
    const json& rp = j["rope_parameters"];
    if (!rp.is_object()) bad("rope_parameters", "an object");
    if (rp.contains("rope_type") && rp["rope_type"] != "default") {
      bad("rope_parameters", "rope_type \"default\" (RoPE scaling is not supported)");
    }
    get_number(rp, "rope_theta", c.rope_theta, "rope_parameters");
  }
  if (has("rope_scaling")) bad("rope_scaling", "null (RoPE scaling is not supported)");
  if (has("tie_word_embeddings")) {
    if (!j["tie_word_embeddings"].is_boolean()) bad("tie_word_embeddings", "true or false");
    c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  }
  if (has("hidden_act") && j["hidden_act"] != "silu") bad("hidden_act", "\"silu\"");
  require_false("attention_bias");
  require_false("mlp_bias");
  c.raw = j;
  return c;
}

json LlamaConfig::to_json() const {
  json j = raw.is_object() ? raw : json::object();
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    j["rope_parameters"]["rope_theta"] = rope_theta;
  } else {
    j["rope_theta"] = rope_theta;
  }
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  j["mlp_bias"] = false;
  if (!j.contains("bos_token_id")) j["bos_token_id"] = 1;
  if (!j.contains("eos_token_id")) j["eos_token_id"] = 2;
  return j;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> llama_tensor_shapes(const LlamaConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out = {{"model.embed_tokens.weight", {c.vocab_size, H}}};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    out.push_back({p + "input_layernorm.weight", {H}});
    out.push_back({p + "self_attn.q_proj.weight", {q, H}});
    out.push_back({p + "self_attn.k_proj.weight", {kv, H}});
    out.push_back({p + "self_attn.v_proj.weight", {kv, H}});
    out.push_back({p + "self_attn.o_proj.weight", {H, q}});
    out.push_back({p + "post_attention_layernorm.weight", {H}});
    out.push_back({p + "mlp.gate_proj.weight", {I, H}});
    out.push_back({p + "mlp.up_proj.weight", {I, H}});
    out.push_back({p + "mlp.down_proj.weight", {H, I}});
  }
  out.push_back({"model.norm.weight", {H}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, H}});
  return out;
}

LlamaForCausalLM LlamaForCausalLM::load(const fs::path& dir) {
  const LlamaConfig cfg = LlamaConfig::from_json(load_hf_config(dir), (dir / "config.json").string());
  return from_tensors(cfg, load_hf_tensors(dir), hf_checkpoint_file(dir));
}

LlamaForCausalLM LlamaForCausalLM::from_tensors(const LlamaConfig& cfg, const std::map<std::string, at::Tensor>& tensors,
                                                const std::string& source) {
  LlamaForCausalLM m;
  m.cfg_ = cfg;
  for (const auto& [name, shape] : llama_tensor_shapes(cfg)) {
    const char* why = name == "lm_head.weight" ? "config.json says tie_word_embeddings false" : "a LLaMA checkpoint needs it";
    m.params_[name] = checked_tensor(tensors, {name}, shape, source, why).to(at::kFloat);
  }
  return m;
}

LlamaForCausalLM LlamaForCausalLM::random(const LlamaConfig& cfg, uint64_t seed) {
  LlamaForCausalLM m;
  m.cfg_ = cfg;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (const auto& [name, shape] : llama_tensor_shapes(cfg)) {
    m.params_[name] = shape.size() == 1 ? at::ones(shape) : at::normal(0.0, 0.02, shape, gen);
  }
  return m;
}

at::Tensor& LlamaForCausalLM::param(const std::string& name) {
  if (cfg_.tie_word_embeddings && name == "lm_head.weight") return TransformerModel::param("model.embed_tokens.weight");
  return TransformerModel::param(name);
}

std::vector<std::string> LlamaForCausalLM::linear_names() const {
  std::vector<std::string> out;
  for (int64_t i = 0; i < cfg_.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    for (const char* m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                          "mlp.up_proj", "mlp.down_proj"}) {
      out.push_back(p + m);
    }
  }
  out.push_back("lm_head");
  return out;
}

namespace {

// HF LlamaRMSNorm: w · x / √(mean(x²) + ε), in float32.
at::Tensor llama_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  return w * (x * at::rsqrt(x.pow(2).mean(-1, true) + eps));
}

// rotate_half(x) = cat(-x[..., d/2:], x[..., :d/2]): HF pairs dimension i with i + d/2.
at::Tensor llama_rotate_half(const at::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return at::cat({x.narrow(-1, h, h).neg(), x.narrow(-1, 0, h)}, -1);
}

}  // namespace

LlamaForCausalLM::LayerContext LlamaForCausalLM::layer_context(const at::Tensor& attention_mask, const DropoutSites& drop,
                                                               bool training) const {
  const int64_t B = attention_mask.size(0), L = attention_mask.size(1);
  const int64_t hd = cfg_.head_dim;
  if (L > cfg_.max_position_embeddings) {
    throw core::InputError("sequence length " + std::to_string(L) + " exceeds max_position_embeddings " +
                           std::to_string(cfg_.max_position_embeddings));
  }
  LayerContext c;
  c.batch = B;
  c.length = L;
  c.attention_mask = attention_mask;
  const auto lopts = at::TensorOptions().dtype(at::kLong).device(attention_mask.device());
  const auto dtype = params_.at("model.embed_tokens.weight").scalar_type();
  // RoPE tables (HF LlamaRotaryEmbedding): θ_k = base^(-2k/d), emb = [pos·θ, pos·θ]
  at::Tensor inv_freq = 1.0 / at::pow(cfg_.rope_theta, at::arange(0, hd, 2, lopts).to(at::kFloat) / static_cast<double>(hd));
  at::Tensor freqs = at::outer(at::arange(L, lopts).to(at::kFloat), inv_freq);
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  c.cos = emb.cos().view({1, 1, L, hd}).to(dtype);
  c.sin = emb.sin().view({1, 1, L, hd}).to(dtype);
  // Visibility: causal, real keys only; rows before a row's first real token (left
  // padding) see the causal pads instead, so no row is empty.
  const at::Tensor real = attention_mask.ne(0);
  const at::Tensor first_real = real.to(at::kLong).argmax(1);  // 0 for an all-pad row
  const at::Tensor pos = at::arange(L, lopts);
  const at::Tensor causal = pos.view({L, 1}).ge(pos.view({1, L})).view({1, L, L});
  const at::Tensor before_first = pos.view({1, L}).lt(first_real.view({B, 1}));
  c.masked_key = causal.logical_and(real.view({B, 1, L}).logical_or(before_first.view({B, L, 1})))
                     .logical_not()
                     .unsqueeze(1);  // [B,1,L,L]
  c.first_key = pos.view({1, L}).eq(first_real.view({B, 1})).view({B, 1, 1, L});
  c.s_logits = training ? drop.at(DropPosition::attn_logits) : nullptr;
  c.s_weights = training ? drop.at(DropPosition::attn_weights) : nullptr;
  c.s_hidden = training ? drop.at(DropPosition::hidden) : nullptr;
  // Fused attention (SDPA) unless the weights themselves are dropped: is_causal alone when
  // nothing is padded and no key is dropped, else one boolean mask (true = may attend): the
  // visibility above (built once), ANDed per layer with a DropKey keep-mask. Every row keeps
  // key 0 or its first real key, as in the hand path, so no row is empty.
  c.fused = c.s_weights == nullptr && forward_path_ == ForwardPath::fast;
  c.padded = c.fused && !real.all().item<bool>();
  if (c.fused && (c.padded || c.s_logits != nullptr)) c.visible = c.masked_key.logical_not();
  return c;
}

at::Tensor LlamaForCausalLM::embed(const at::Tensor& input_ids) const {
  return at::embedding(params_.at("model.embed_tokens.weight"), input_ids);
}

at::Tensor LlamaForCausalLM::layer(int64_t i, const at::Tensor& x_in, const LayerContext& c, bool training) const {
  const int64_t B = c.batch, L = c.length;
  const int64_t nh = cfg_.num_attention_heads, nkv = cfg_.num_key_value_heads, hd = cfg_.head_dim;
  const auto& P = params_;
  const auto fopts = at::TensorOptions().dtype(at::kFloat).device(x_in.device());
  // the first real key is never dropped (sample_attention_keep keeps key 0; with left
  // padding that is a pad), so every real row keeps a key
  auto keep_mask = [&](const DropSite& s) {
    return sample_attention_keep(s, B, nh, L, L, fopts).logical_or(c.first_key);
  };
  const double inv_sqrt = 1.0 / std::sqrt(static_cast<double>(hd));
  at::Tensor x = x_in;
  const std::string p = "model.layers." + std::to_string(i) + ".";
  at::Tensor h = llama_rms_norm(x, P.at(p + "input_layernorm.weight"), cfg_.rms_norm_eps);
  at::Tensor q = linear(p + "self_attn.q_proj", h, training).view({B, L, nh, hd}).transpose(1, 2);
  at::Tensor k = linear(p + "self_attn.k_proj", h, training).view({B, L, nkv, hd}).transpose(1, 2);
  at::Tensor v = linear(p + "self_attn.v_proj", h, training).view({B, L, nkv, hd}).transpose(1, 2);
  q = q * c.cos + llama_rotate_half(q) * c.sin;
  k = k * c.cos + llama_rotate_half(k) * c.sin;
  if (nkv != nh) {  // grouped KV heads: query head j reads KV head j / (nh/nkv) (HF repeat_kv)
    k = k.repeat_interleave(nh / nkv, 1);
    v = v.repeat_interleave(nh / nkv, 1);
  }
  at::Tensor ctx;
  if (c.fused) {
    std::optional<at::Tensor> mask;
    if (c.s_logits != nullptr) mask = keep_mask(*c.s_logits).logical_and(c.visible);
    else if (c.padded) mask = c.visible;
    ctx = at::scaled_dot_product_attention(q, k, v, mask, 0.0, !mask.has_value(), inv_sqrt);
  } else {
    at::Tensor S = at::matmul(q, k.transpose(-1, -2)) * inv_sqrt;
    S = S.masked_fill(c.masked_key, -std::numeric_limits<float>::infinity());
    if (c.s_logits != nullptr) S = mask_attention_logits(S, keep_mask(*c.s_logits));
    at::Tensor A = at::softmax(S, -1);
    if (c.s_weights != nullptr) {
      A = mask_attention_weights(A, keep_mask(*c.s_weights), c.s_weights->compensation, c.s_weights->rate);
    }
    ctx = at::matmul(A, v);
  }
  ctx = ctx.transpose(1, 2).reshape({B, L, nh * hd});
  x = x + linear(p + "self_attn.o_proj", ctx, training);
  h = llama_rms_norm(x, P.at(p + "post_attention_layernorm.weight"), cfg_.rms_norm_eps);
  at::Tensor g = linear(p + "mlp.gate_proj", h, training);
  at::Tensor u = linear(p + "mlp.up_proj", h, training);
  at::Tensor o = linear(p + "mlp.down_proj", at::silu(g) * u, training);
  if (c.s_hidden != nullptr) o = drop_hidden(o, *c.s_hidden, c.attention_mask);  // the FFN output, before the residual
  return x + o;
}

at::Tensor LlamaForCausalLM::head(const at::Tensor& x, bool training) const {
  return linear("lm_head", llama_rms_norm(x, params_.at("model.norm.weight"), cfg_.rms_norm_eps), training);
}

at::Tensor LlamaForCausalLM::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                     const DropoutSites& drop, bool training) const {
  const LayerContext ctx = layer_context(attention_mask, drop, training);
  at::Tensor x = embed(input_ids);
  for (int64_t i = 0; i < cfg_.num_hidden_layers; ++i) x = layer(i, x, ctx, training);
  return head(x, training);
}

}  // namespace mlsys::nn
