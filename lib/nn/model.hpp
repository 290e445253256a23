// What lib/lora needs from a transformer: parameters by Hugging Face name, the Linear
// modules adapters may target, a forward pass that takes the structured-dropout sites, and
// the Hugging Face folder it saves to. BertClassifier and LlamaForCausalLM implement it.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "nn/linear_adapter.hpp"
#include "nn/structured_dropout.hpp"

namespace mlsys::nn {

class TransformerModel {
 public:
  TransformerModel() = default;
  TransformerModel(const TransformerModel&) = default;
  TransformerModel(TransformerModel&&) noexcept = default;
  TransformerModel& operator=(const TransformerModel&) = default;
  TransformerModel& operator=(TransformerModel&&) noexcept = default;
  virtual ~TransformerModel() = default;

  // Logits for input_ids/attention_mask [B, L] (int64): [B, C] for a sequence classifier,
  // [B, L, V] for a causal LM. With `training` the sites in `drop` are active; at eval
  // nothing is dropped or rescaled.
  [[nodiscard]] virtual at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                           const DropoutSites& drop = {}, bool training = false) const = 0;
  // HF module paths of every Linear, the output layer last.
  [[nodiscard]] virtual std::vector<std::string> linear_names() const = 0;
  // The Linear "all-linear" leaves out: "classifier" (BERT), "lm_head" (LLaMA).
  [[nodiscard]] virtual std::string output_layer() const = 0;
  // PEFT's task_type: "SEQ_CLS" (a trainable head saved with the adapter) or "CAUSAL_LM".
  [[nodiscard]] virtual std::string task_type() const = 0;
  // The config.json save_hf writes.
  [[nodiscard]] virtual nlohmann::json config_json() const = 0;
  // Writes a Hugging Face folder (config_json() as config.json + every parameter in
  // model.safetensors), atomically per file.
  virtual void save_hf(const std::filesystem::path& dir) const;

  // core::RuntimeFailure for a name the model does not hold. (LLaMA with tied embeddings
  // answers "lm_head.weight" with the embedding matrix.)
  [[nodiscard]] virtual at::Tensor& param(const std::string& name);
  [[nodiscard]] const at::Tensor& param(const std::string& name) const;
  [[nodiscard]] std::map<std::string, at::Tensor>& params() { return params_; }
  [[nodiscard]] const std::map<std::string, at::Tensor>& params() const { return params_; }
  // Attaches (or, with nullptr, removes) the adapter of one Linear module.
  void set_adapter(const std::string& linear, std::shared_ptr<LinearAdapter> adapter);
  void clear_adapters() { adapters_.clear(); }
  // Moves every parameter to `device` (requires_grad kept).
  void to(const c10::Device& device);

 protected:
  // y = x Wᵀ (+ b when `name`.bias exists) (+ the adapter's delta).
  [[nodiscard]] at::Tensor linear(const std::string& name, const at::Tensor& x, bool training) const;
  std::map<std::string, at::Tensor> params_;
  std::map<std::string, std::shared_ptr<LinearAdapter>> adapters_;
};

}  // namespace mlsys::nn
