// Linear shapes from config.json, parameter counts and the budget plan (prolora_plan.hpp).
#include "lora/prolora_plan.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/json.hpp"
#include "lora/prolora.hpp"
#include "nn/bert.hpp"
#include "nn/llama.hpp"

namespace mlsys::lora {

ModelLinears model_linears(const std::filesystem::path& folder) {
  const std::filesystem::path file = folder / "config.json";
  if (!std::filesystem::is_regular_file(file)) {
    throw core::InputError(file.string() + ": cannot open (expected a Hugging Face model folder's config.json)");
  }
  const nlohmann::json j = core::read_json_file(file);
  if (!j.is_object()) throw core::InputError(file.string() + ": expected a JSON object");
  const std::string type = j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "";
  ModelLinears out;
  out.model_type = type;
  if (type == "llama") {
    const nn::LlamaConfig c = nn::LlamaConfig::from_json(j, file.string());
    const int64_t H = c.hidden_size, I = c.intermediate_size, q = c.num_attention_heads * c.head_dim,
                  kv = c.num_key_value_heads * c.head_dim;
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      out.linears.push_back({p + "self_attn.q_proj", H, q});
      out.linears.push_back({p + "self_attn.k_proj", H, kv});
      out.linears.push_back({p + "self_attn.v_proj", H, kv});
      out.linears.push_back({p + "self_attn.o_proj", q, H});
      out.linears.push_back({p + "mlp.gate_proj", H, I});
      out.linears.push_back({p + "mlp.up_proj", H, I});
      out.linears.push_back({p + "mlp.down_proj", I, H});
    }
    out.linears.push_back({"lm_head", H, c.vocab_size});
    out.output_layer = "lm_head";
    return out;
  }
  if (type == "bert" || type == "roberta") {
    const nn::BertConfig c = nn::BertConfig::from_json(j, file.string());
    const int64_t H = c.hidden_size, I = c.intermediate_size;
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      const std::string p = c.prefix() + "encoder.layer." + std::to_string(i) + ".";
      for (const char* m : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
        out.linears.push_back({p + m, H, H});
      }
      out.linears.push_back({p + "intermediate.dense", H, I});
      out.linears.push_back({p + "output.dense", I, H});
    }
    if (c.is_roberta()) {
      out.output_layer = "classifier.out_proj";
    } else {
      out.linears.push_back({"bert.pooler.dense", H, H});
      out.output_layer = "classifier";
    }
    out.linears.push_back({out.output_layer, H, 0});
    return out;
  }
  throw core::InputError(file.string() + ": field 'model_type': expected bert, roberta or llama, found " +
                         (j.contains("model_type") ? core::short_json(j["model_type"]) : std::string("nothing")));
}

PlanCount count_parameters(const std::vector<LinearShape>& targets, int64_t r, int64_t u, int64_t m, int64_t n) {
  PlanCount c{r, u, m, n, 0, 0};
  for (const auto& t : targets) {
    c.parameters += prolora_layout(t.d_in, t.d_out, r, u, m, n, true).parameters();
    c.lora_parameters += lora_parameters(t.d_in, t.d_out, r);
  }
  return c;
}

std::vector<PlanCount> plan_budget(const std::vector<LinearShape>& targets, int64_t budget,
                                   const std::vector<int64_t>& ranks, const std::vector<int64_t>& rates,
                                   int64_t min_u) {
  int64_t min_in = INT64_MAX, min_out = INT64_MAX;
  for (const auto& t : targets) {
    min_in = std::min(min_in, t.d_in);
    min_out = std::min(min_out, t.d_out);
  }
  std::vector<int64_t> rs = ranks;
  std::sort(rs.begin(), rs.end(), std::greater<>());
  rs.erase(std::unique(rs.begin(), rs.end()), rs.end());
  std::vector<PlanCount> out;
  for (int64_t r : rs) {
    std::optional<PlanCount> best;
    for (int64_t u = std::min(min_u, r); u <= r; ++u) {
      for (int64_t m : rates) {
        for (int64_t n : rates) {
          if (m > min_in || n > min_out) continue;
          if (u == r && (m != 1 || n != 1)) continue;  // no shared ranks: m and n mean nothing
          const PlanCount c = count_parameters(targets, r, u, m, n);
          if (c.parameters > budget) continue;
          const bool better = !best || c.parameters > best->parameters ||
                              (c.parameters == best->parameters &&
                               (c.u > best->u || (c.u == best->u && c.m + c.n < best->m + best->n)));
          if (better) best = c;
        }
      }
    }
    if (best) out.push_back(*best);
  }
  return out;
}

}  // namespace mlsys::lora
