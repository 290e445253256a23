// BERT for sequence classification (see bert.hpp), Hugging Face checkpoint folders
// (checkpoint.hpp) and the structured-dropout operators the model applies at its
// positions (structured_dropout.hpp). One translation unit: LibTorch headers are costly.
#include "nn/bert.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <set>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "nn/checkpoint.hpp"
#include "tensor/safetensors.hpp"

namespace mlsys::nn {
namespace fs = std::filesystem;
using nlohmann::json;

// ------------------------------------------------------------------ checkpoints

json load_hf_config(const fs::path& dir) {
  const fs::path p = dir / "config.json";
  if (!fs::is_regular_file(p)) {
    throw core::InputError(p.string() + ": cannot open the model config (expected a Hugging Face folder)");
  }
  return core::read_json_file(p);
}

std::map<std::string, at::Tensor> load_hf_tensors(const fs::path& dir) {
  std::vector<fs::path> files;
  const fs::path single = dir / "model.safetensors";
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(single)) {
    files.push_back(single);
  } else if (fs::exists(index)) {
    const json j = core::read_json_file(index);
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
      throw core::InputError(index.string() + ": field 'weight_map': expected an object {tensor: shard file}, found " +
                             (j.is_object() && j.contains("weight_map") ? core::describe_json(j["weight_map"]) : "none"));
    }
    std::set<std::string> shards;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) {
        throw core::InputError(index.string() + ": field 'weight_map', tensor " + core::short_json(name) +
                               ": expected a shard file name, found " + core::describe_json(file));
      }
      shards.insert(file.get<std::string>());
    }
    for (const auto& s : shards) {
      if (!fs::exists(dir / s)) throw core::InputError(index.string() + ": shard '" + s + "' not found in " + dir.string());
      files.push_back(dir / s);
    }
  } else {
    throw core::InputError(dir.string() + ": no model.safetensors or model.safetensors.index.json");
  }
  std::map<std::string, at::Tensor> out;
  for (const auto& f : files) {
    for (auto& [name, t] : tensor::load_safetensors(f)) {
      out[name] = at::isFloatingType(t.scalar_type()) ? t.to(at::kFloat) : t;
    }
  }
  return out;
}

std::string hf_checkpoint_file(const fs::path& dir) {
  return (dir / (fs::exists(dir / "model.safetensors") ? "model.safetensors" : "model.safetensors.index.json")).string();
}

std::string shape_str(at::IntArrayRef s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

at::Tensor checked_tensor(const std::map<std::string, at::Tensor>& tensors, const std::vector<std::string>& keys,
                          const std::vector<int64_t>& shape, const std::string& file, const std::string& why) {
  auto it = tensors.end();
  for (const auto& k : keys) {
    it = tensors.find(k);
    if (it != tensors.end()) break;
  }
  if (it == tensors.end()) throw core::InputError(file + ": tensor '" + keys.front() + "' not found (" + why + ")");
  // every parameter of these architectures is a float (load_hf_tensors made F16/BF16/F64
  // float32); integer or bool data read as weights would be nonsense
  if (!at::isFloatingType(it->second.scalar_type())) {
    throw core::InputError(file + ": tensor '" + it->first + "': expected a floating-point dtype (F32, F16, BF16 or "
                           "F64), found " + tensor::dtype_code(it->second.scalar_type()));
  }
  if (it->second.sizes() != at::IntArrayRef(shape)) {
    throw core::InputError(file + ": tensor '" + keys.front() + "': expected shape " + shape_str(shape) +
                           " (from config.json), found " + shape_str(it->second.sizes()));
  }
  return it->second.contiguous();
}

// ------------------------------------------------------------------ TransformerModel (model.hpp)

at::Tensor& TransformerModel::param(const std::string& name) {
  auto it = params_.find(name);
  if (it == params_.end()) throw core::RuntimeFailure("the model has no parameter '" + name + "'");
  return it->second;
}

const at::Tensor& TransformerModel::param(const std::string& name) const {
  return const_cast<TransformerModel*>(this)->param(name);
}

void TransformerModel::set_adapter(const std::string& linear, std::shared_ptr<LinearAdapter> adapter) {
  if (adapter) adapters_[linear] = std::move(adapter);
  else adapters_.erase(linear);
}

void TransformerModel::to(const c10::Device& device) {
  for (auto& [n, t] : params_) {
    const bool rg = t.requires_grad();
    t = t.detach().to(device);
    if (rg) t.set_requires_grad(true);
  }
}

at::Tensor TransformerModel::linear(const std::string& name, const at::Tensor& x, bool training) const {
  auto b = params_.find(name + ".bias");
  at::Tensor y = at::linear(x, param(name + ".weight"), b != params_.end() ? b->second : at::Tensor());
  if (auto it = adapters_.find(name); it != adapters_.end()) {
    at::Tensor d = it->second->delta(x, training);
    if (d.defined()) y = y + d;
  }
  return y;
}

// ------------------------------------------------------------------ structured dropout

std::string to_string(DropPosition p) {
  switch (p) {
    case DropPosition::lora_input: return "lora_input";
    case DropPosition::attn_logits: return "attn_logits";
    case DropPosition::attn_weights: return "attn_weights";
    case DropPosition::hidden: return "hidden";
  }
  return "?";
}
std::string to_string(DropPattern p) {
  switch (p) {
    case DropPattern::element: return "element";
    case DropPattern::column: return "column";
    case DropPattern::span: return "span";
  }
  return "?";
}
std::string to_string(DropCompensation c) {
  switch (c) {
    case DropCompensation::rescale: return "rescale";
    case DropCompensation::normalize: return "normalize";
    case DropCompensation::none: return "none";
  }
  return "?";
}
std::optional<DropPosition> parse_drop_position(const std::string& s) {
  for (auto p : {DropPosition::lora_input, DropPosition::attn_logits, DropPosition::attn_weights, DropPosition::hidden}) {
    if (to_string(p) == s) return p;
  }
  return std::nullopt;
}
std::optional<DropPattern> parse_drop_pattern(const std::string& s) {
  for (auto p : {DropPattern::element, DropPattern::column, DropPattern::span}) {
    if (to_string(p) == s) return p;
  }
  return std::nullopt;
}
std::optional<DropCompensation> parse_drop_compensation(const std::string& s) {
  for (auto c : {DropCompensation::rescale, DropCompensation::normalize, DropCompensation::none}) {
    if (to_string(c) == s) return c;
  }
  return std::nullopt;
}

at::Tensor sample_attention_keep(const DropSite& site, int64_t B, int64_t H, int64_t Lq, int64_t Lk,
                                 const at::TensorOptions& opts) {
  at::Tensor keep;
  if (site.pattern == DropPattern::column) {
    keep = at::rand({B, site.share_across_heads ? 1 : H, 1, Lk}, opts.dtype(at::kFloat)).ge(site.rate);
  } else {
    keep = at::rand({B, H, Lq, Lk}, opts.dtype(at::kFloat)).ge(site.rate);
  }
  keep.select(-1, 0).fill_(true);  // CLS/BOS always visible: no row is left without keys
  return keep;
}

at::Tensor mask_attention_logits(const at::Tensor& logits, const at::Tensor& keep) {
  return logits.masked_fill(keep.logical_not(), -std::numeric_limits<float>::infinity());
}

at::Tensor mask_attention_weights(const at::Tensor& probs, const at::Tensor& keep, DropCompensation comp,
                                  double rate) {
  at::Tensor kept = probs * keep.to(probs.scalar_type());
  if (comp == DropCompensation::normalize) return kept / kept.sum(-1, true).clamp_min(1e-30);
  if (comp == DropCompensation::rescale) return kept / (1.0 - rate);
  return kept;
}

at::Tensor drop_elements(const at::Tensor& x, double rate) {
  if (rate <= 0) return x;
  return at::dropout(x, rate, true);
}

at::Tensor drop_hidden(const at::Tensor& h, const DropSite& site, const at::Tensor& token_mask) {
  if (site.pattern != DropPattern::span) {
    if (site.compensation == DropCompensation::rescale) return at::dropout(h, site.rate, true);
    return h * at::rand_like(h).ge(site.rate).to(h.scalar_type());
  }
  const int64_t B = h.size(0), L = h.size(1);
  at::Tensor lens = token_mask.sum(1).to(at::kCPU);
  at::Tensor keep = at::ones({B, L}, at::kFloat);
  auto k = keep.accessor<float, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = lens[b].item<int64_t>();
    if (len <= 0) continue;
    const int64_t cut = std::max<int64_t>(1, static_cast<int64_t>(std::floor(site.rate * static_cast<double>(len))));
    const int64_t start = at::randint(0, len - cut + 1, {1}, at::kLong).item<int64_t>();
    for (int64_t t = start; t < start + cut && t < L; ++t) k[b][t] = 0.0F;
  }
  return h * keep.to(h.device(), h.scalar_type()).unsqueeze(-1);
}

// ------------------------------------------------------------------ BERT

BertConfig BertConfig::from_json(const json& j, const std::string& source) {
  auto bad = [&](const std::string& key, const std::string& expected) {
    throw core::InputError(source + ": field '" + key + "': expected " + expected + ", found " +
                           (j.contains(key) ? core::short_json(j[key]) : "nothing"));
  };
  const std::string type = j.is_object() && j.contains("model_type") && j["model_type"].is_string()
                               ? j["model_type"].get<std::string>() : "";
  if (type != "bert" && type != "roberta") bad("model_type", "\"bert\" or \"roberta\" (this tool's encoders)");
  BertConfig c = type == "roberta" ? roberta() : BertConfig{};
  auto get_int = [&](const char* key, int64_t& out, bool required) {
    if (!j.contains(key)) {
      if (required) bad(key, "a positive integer");
      return;
    }
    if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0) bad(key, "a positive integer");
    out = j[key].get<int64_t>();
  };
  get_int("vocab_size", c.vocab_size, true);
  get_int("hidden_size", c.hidden_size, true);
  get_int("num_hidden_layers", c.num_hidden_layers, true);
  get_int("num_attention_heads", c.num_attention_heads, true);
  get_int("intermediate_size", c.intermediate_size, true);
  get_int("max_position_embeddings", c.max_position_embeddings, false);
  get_int("type_vocab_size", c.type_vocab_size, false);
  if (j.contains("pad_token_id") && j["pad_token_id"].is_number_integer()) c.pad_token_id = j["pad_token_id"].get<int64_t>();
  if (j.contains("layer_norm_eps")) {
    if (!j["layer_norm_eps"].is_number()) bad("layer_norm_eps", "a number");
    c.layer_norm_eps = j["layer_norm_eps"].get<double>();
  }
  if (j.contains("hidden_act")) {
    if (!j["hidden_act"].is_string()) bad("hidden_act", "gelu, gelu_new or relu");
    c.hidden_act = j["hidden_act"].get<std::string>();
  }
  if (c.hidden_act != "gelu" && c.hidden_act != "gelu_new" && c.hidden_act != "relu") {
    bad("hidden_act", "gelu, gelu_new or relu");
  }
  if (c.hidden_size % c.num_attention_heads != 0) bad("num_attention_heads", "a divisor of hidden_size");
  if (c.pad_token_id < 0 || c.pad_token_id >= c.vocab_size) bad("pad_token_id", "an id below vocab_size");
  if (c.is_roberta() && c.max_length() < 1) bad("max_position_embeddings", "more than pad_token_id + 1");
  c.raw = j;
  return c;
}

BertConfig BertConfig::roberta() {
  BertConfig c;
  c.model_type = "roberta";
  c.vocab_size = 50265;
  c.hidden_size = 768;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 12;
  c.intermediate_size = 3072;
  c.max_position_embeddings = 514;
  c.type_vocab_size = 1;
  c.pad_token_id = 1;
  c.layer_norm_eps = 1e-5;
  return c;
}

namespace {

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const BertConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  const std::string pre = c.prefix();
  std::vector<std::pair<std::string, std::vector<int64_t>>> out = {
      {pre + "embeddings.word_embeddings.weight", {c.vocab_size, H}},
      {pre + "embeddings.position_embeddings.weight", {c.max_position_embeddings, H}},
      {pre + "embeddings.token_type_embeddings.weight", {c.type_vocab_size, H}},
      {pre + "embeddings.LayerNorm.weight", {H}},
      {pre + "embeddings.LayerNorm.bias", {H}},
  };
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = pre + "encoder.layer." + std::to_string(i) + ".";
    for (const char* m : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
      out.push_back({p + m + ".weight", {H, H}});
      out.push_back({p + m + ".bias", {H}});
    }
    out.push_back({p + "attention.output.LayerNorm.weight", {H}});
    out.push_back({p + "attention.output.LayerNorm.bias", {H}});
    out.push_back({p + "intermediate.dense.weight", {I, H}});
    out.push_back({p + "intermediate.dense.bias", {I}});
    out.push_back({p + "output.dense.weight", {H, I}});
    out.push_back({p + "output.dense.bias", {H}});
    out.push_back({p + "output.LayerNorm.weight", {H}});
    out.push_back({p + "output.LayerNorm.bias", {H}});
  }
  if (!c.is_roberta()) {  // RobertaForSequenceClassification has no pooler
    out.push_back({pre + "pooler.dense.weight", {H, H}});
    out.push_back({pre + "pooler.dense.bias", {H}});
  }
  return out;
}

// The head's tensors: BERT classifier [C,H]; RoBERTa classifier.dense [H,H], classifier.out_proj [C,H].
std::vector<std::pair<std::string, std::vector<int64_t>>> head_tensors(const BertConfig& c, int64_t C) {
  const int64_t H = c.hidden_size;
  if (!c.is_roberta()) return {{"classifier.weight", {C, H}}, {"classifier.bias", {C}}};
  return {{"classifier.dense.weight", {H, H}},
          {"classifier.dense.bias", {H}},
          {"classifier.out_proj.weight", {C, H}},
          {"classifier.out_proj.bias", {C}}};
}

// The head tensors found in `from` with the expected shape; the others drawn N(0, 0.02), bias 0.
void init_head(std::map<std::string, at::Tensor>& p, const BertConfig& c, int64_t C, uint64_t seed,
               const std::map<std::string, at::Tensor>& from = {}) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (const auto& [name, shape] : head_tensors(c, C)) {
    auto it = from.find(name);
    at::Tensor drawn = name.ends_with(".bias") ? at::zeros(shape) : at::normal(0.0, 0.02, shape, gen);
    p[name] = (it != from.end() && it->second.sizes() == at::IntArrayRef(shape)) ? it->second.contiguous() : drawn;
  }
}

}  // namespace

BertClassifier BertClassifier::load(const fs::path& dir, int64_t num_labels, uint64_t head_seed) {
  BertClassifier m;
  m.cfg_ = BertConfig::from_json(load_hf_config(dir), (dir / "config.json").string());
  m.num_labels_ = num_labels;
  auto tensors = load_hf_tensors(dir);
  const std::string pre = m.cfg_.prefix();
  const bool prefixed = tensors.count(pre + "embeddings.word_embeddings.weight") > 0;
  const std::string file = hf_checkpoint_file(dir);
  const std::string why = m.cfg_.is_roberta() ? "a RoBERTa checkpoint needs it" : "a BERT checkpoint needs it";
  for (const auto& [name, shape] : expected_tensors(m.cfg_)) {
    std::string key = prefixed ? name : name.substr(pre.size());
    // old checkpoints: LayerNorm.gamma / LayerNorm.beta
    std::string alt = key;
    if (alt.ends_with("LayerNorm.weight")) alt.replace(alt.size() - 6, 6, "gamma");
    else if (alt.ends_with("LayerNorm.bias")) alt.replace(alt.size() - 4, 4, "beta");
    m.params_[name] = checked_tensor(tensors, {key, alt}, shape, file, why);
  }
  init_head(m.params_, m.cfg_, num_labels, head_seed, tensors);
  return m;
}

BertClassifier BertClassifier::random(const BertConfig& cfg, int64_t num_labels, uint64_t seed) {
  BertClassifier m;
  m.cfg_ = cfg;
  if (m.cfg_.raw.is_null()) {
    m.cfg_.raw = {{"model_type", cfg.model_type},
                  {"vocab_size", cfg.vocab_size},
                  {"hidden_size", cfg.hidden_size},
                  {"num_hidden_layers", cfg.num_hidden_layers},
                  {"num_attention_heads", cfg.num_attention_heads},
                  {"intermediate_size", cfg.intermediate_size},
                  {"max_position_embeddings", cfg.max_position_embeddings},
                  {"type_vocab_size", cfg.type_vocab_size},
                  {"pad_token_id", cfg.pad_token_id},
                  {"layer_norm_eps", cfg.layer_norm_eps},
                  {"hidden_act", cfg.hidden_act}};
  }
  m.num_labels_ = num_labels;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (const auto& [name, shape] : expected_tensors(cfg)) {
    if (name.ends_with("LayerNorm.weight")) m.params_[name] = at::ones(shape);
    else if (name.ends_with("bias")) m.params_[name] = at::zeros(shape);
    else m.params_[name] = at::normal(0.0, 0.02, shape, gen);
  }
  init_head(m.params_, cfg, num_labels, seed + 1);
  return m;
}

std::vector<std::string> BertClassifier::head_names() const {
  std::vector<std::string> out;
  for (const auto& [name, shape] : head_tensors(cfg_, num_labels_)) out.push_back(name);
  return out;
}

std::vector<std::string> BertClassifier::linear_names() const {
  std::vector<std::string> out;
  for (int64_t i = 0; i < cfg_.num_hidden_layers; ++i) {
    const std::string p = cfg_.prefix() + "encoder.layer." + std::to_string(i) + ".";
    for (const char* m : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                          "intermediate.dense", "output.dense"}) {
      out.push_back(p + m);
    }
  }
  if (cfg_.is_roberta()) {
    out.push_back("classifier.out_proj");
  } else {
    out.push_back("bert.pooler.dense");
    out.push_back("classifier");
  }
  return out;
}

at::Tensor BertClassifier::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                   const DropoutSites& drop, bool training) const {
  const int64_t B = input_ids.size(0), L = input_ids.size(1);
  const int64_t H = cfg_.hidden_size, nh = cfg_.num_attention_heads, dh = H / nh;
  if (L > cfg_.max_length()) {
    throw core::InputError("sequence length " + std::to_string(L) + " exceeds the model's " +
                           std::to_string(cfg_.max_length()) + " positions (max_position_embeddings " +
                           std::to_string(cfg_.max_position_embeddings) + ")");
  }
  const auto& P = params_;
  const std::string pre = cfg_.prefix();
  at::Tensor pos_emb;
  if (cfg_.is_roberta()) {
    // HF's create_position_ids_from_input_ids: padding keeps padding_idx, real tokens count from it
    const at::Tensor real = input_ids.ne(cfg_.pad_token_id).to(at::kLong);
    const at::Tensor pos = at::cumsum(real, 1) * real + cfg_.pad_token_id;
    pos_emb = at::embedding(P.at(pre + "embeddings.position_embeddings.weight"), pos);
  } else {
    pos_emb = at::embedding(P.at(pre + "embeddings.position_embeddings.weight"), at::arange(L, input_ids.options()))
                  .unsqueeze(0);
  }
  at::Tensor x = at::embedding(P.at(pre + "embeddings.word_embeddings.weight"), input_ids) + pos_emb +
                 P.at(pre + "embeddings.token_type_embeddings.weight")[0];
  x = at::layer_norm(x, {H}, P.at(pre + "embeddings.LayerNorm.weight"), P.at(pre + "embeddings.LayerNorm.bias"),
                     cfg_.layer_norm_eps);
  const DropSite* s_logits = training ? drop.at(DropPosition::attn_logits) : nullptr;
  const DropSite* s_weights = training ? drop.at(DropPosition::attn_weights) : nullptr;
  const DropSite* s_hidden = training ? drop.at(DropPosition::hidden) : nullptr;
  const double inv_sqrt = 1.0 / std::sqrt(static_cast<double>(dh));
  // The fast path (structured_dropout.hpp's ForwardPath): SDPA unless the weights themselves
  // are dropped. Its mask is boolean (true = may attend), [B,1,1,L] for the padding, built
  // once; none without padding. A DropKey keep-mask is ANDed in per layer; key 0 is real and
  // never dropped, so no row is empty.
  const bool fast = forward_path_ == ForwardPath::fast;
  const bool fused = fast && s_weights == nullptr;
  const at::Tensor key_pad = attention_mask.eq(0).view({B, 1, 1, L});
  at::Tensor key_visible;
  if (fused && key_pad.any().item<bool>()) key_visible = key_pad.logical_not();
  auto has_adapter = [&](const std::string& name) { return adapters_.count(name) != 0; };
  for (int64_t i = 0; i < cfg_.num_hidden_layers; ++i) {
    const std::string p = pre + "encoder.layer." + std::to_string(i) + ".";
    // The head reads only the first token's final state, so on the fast path the last layer
    // computes only that row past the keys and values (Lq = 1), unless, in training, one of
    // the row-wise Linears carries an adapter (its own input dropout would draw over fewer
    // rows). Masks are drawn full-size and sliced, so the random stream is the reference path's.
    const bool row_adapters = training && (has_adapter(p + "attention.output.dense") ||
                                           has_adapter(p + "intermediate.dense") || has_adapter(p + "output.dense"));
    const bool first_row_only = fast && L > 1 && i == cfg_.num_hidden_layers - 1 && !row_adapters;
    const at::Tensor xq = first_row_only ? x.narrow(1, 0, 1) : x;  // the rows carried on
    const int64_t Lq = xq.size(1);
    auto heads = [&](const at::Tensor& t) { return t.view({B, t.size(1), nh, dh}).transpose(1, 2); };
    auto rows = [&](const at::Tensor& keep) { return keep.size(2) > Lq ? keep.narrow(2, 0, Lq) : keep; };
    const bool q_all_rows = !first_row_only || (training && has_adapter(p + "attention.self.query"));
    at::Tensor q = heads(linear(p + "attention.self.query", q_all_rows ? x : xq, training));
    if (q.size(2) != Lq) q = q.narrow(2, 0, Lq);
    at::Tensor k = heads(linear(p + "attention.self.key", x, training));
    at::Tensor v = heads(linear(p + "attention.self.value", x, training));
    at::Tensor ctx;
    if (fused) {
      at::Tensor mask = key_visible;
      if (s_logits != nullptr) {
        at::Tensor keep = rows(sample_attention_keep(*s_logits, B, nh, L, L, q.options()));
        mask = mask.defined() ? keep.logical_and(mask) : keep;
      }
      ctx = at::scaled_dot_product_attention(q, k, v, mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt,
                                             0.0, false, inv_sqrt);
    } else {
      at::Tensor S = at::matmul(q, k.transpose(-1, -2)) * inv_sqrt;
      S = S.masked_fill(key_pad, -std::numeric_limits<float>::infinity());  // padding apart from the drop mask
      if (s_logits != nullptr) S = mask_attention_logits(S, rows(sample_attention_keep(*s_logits, B, nh, L, L, S.options())));
      at::Tensor A = at::softmax(S, -1);
      if (s_weights != nullptr) {
        A = mask_attention_weights(A, rows(sample_attention_keep(*s_weights, B, nh, L, L, A.options())),
                                   s_weights->compensation, s_weights->rate);
      }
      ctx = at::matmul(A, v);
    }
    ctx = ctx.transpose(1, 2).reshape({B, Lq, H});
    at::Tensor a = linear(p + "attention.output.dense", ctx, training);
    x = at::layer_norm(a + xq, {H}, P.at(p + "attention.output.LayerNorm.weight"),
                       P.at(p + "attention.output.LayerNorm.bias"), cfg_.layer_norm_eps);
    at::Tensor inter = linear(p + "intermediate.dense", x, training);
    if (cfg_.hidden_act == "gelu") inter = at::gelu(inter);
    else if (cfg_.hidden_act == "gelu_new") inter = at::gelu(inter, "tanh");
    else inter = at::relu(inter);
    at::Tensor o = linear(p + "output.dense", inter, training);
    if (s_hidden != nullptr) {  // HiddenCut position: before residual+LN
      if (Lq == L) {
        o = drop_hidden(o, *s_hidden, attention_mask);
      } else {  // every pattern is o * mask(shape, RNG): the full-size mask, first row
        o = o * drop_hidden(at::ones({B, L, H}, o.options()), *s_hidden, attention_mask).narrow(1, 0, Lq);
      }
    }
    x = at::layer_norm(o + x, {H}, P.at(p + "output.LayerNorm.weight"), P.at(p + "output.LayerNorm.bias"),
                       cfg_.layer_norm_eps);
  }
  if (cfg_.is_roberta()) {  // RobertaClassificationHead on <s>
    at::Tensor h = at::tanh(linear("classifier.dense", x.select(1, 0), training));
    return linear("classifier.out_proj", h, training);
  }
  at::Tensor pooled = at::tanh(linear("bert.pooler.dense", x.select(1, 0), training));
  return linear("classifier", pooled, training);
}

json BertClassifier::config_json() const {
  json cfg = cfg_.raw;
  cfg["architectures"] = {cfg_.is_roberta() ? "RobertaForSequenceClassification" : "BertForSequenceClassification"};
  cfg["num_labels"] = num_labels_;
  json id2label = json::object(), label2id = json::object();
  for (int64_t i = 0; i < num_labels_; ++i) {
    id2label[std::to_string(i)] = "LABEL_" + std::to_string(i);
    label2id["LABEL_" + std::to_string(i)] = i;
  }
  cfg["id2label"] = id2label;
  cfg["label2id"] = label2id;
  return cfg;
}

void TransformerModel::save_hf(const fs::path& dir) const {
  fs::create_directories(dir);
  tensor::NamedTensors named;
  for (const auto& [n, t] : params_) named.emplace_back(n, t.detach().to(at::kCPU).contiguous());
  tensor::save_safetensors(dir / "model.safetensors", named, {{"format", "pt"}});
  core::write_file_atomic(dir / "config.json", config_json().dump(2) + "\n");
}

}  // namespace mlsys::nn
