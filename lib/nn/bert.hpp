// BERT encoders with a sequence-classification head (BertForSequenceClassification), loaded
// from a Hugging Face folder, with attention written by hand so structured dropout reaches
// the logits, the weights and the hidden states. Parameters live in a name -> tensor map
// keyed by the Hugging Face names ("bert.encoder.layer.0.attention.self.query.weight"), so
// Linear modules are addressed by their HF module paths, which adapters target.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "nn/model.hpp"

namespace mlsys::nn {

struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 384;
  int64_t num_hidden_layers = 6;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 1536;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  int64_t pad_token_id = 0;
  double layer_norm_eps = 1e-12;
  std::string hidden_act = "gelu";  // gelu (erf) | gelu_new (tanh) | relu
  nlohmann::json raw;               // the whole config.json, written back on save

  // core::InputError naming `source` for a model_type other than bert or a bad field.
  static BertConfig from_json(const nlohmann::json& j, const std::string& source);
};

class BertClassifier : public TransformerModel {
 public:
  // Loads `dir` (config.json + safetensors). The encoder tensors may carry the "bert."
  // prefix or not (sentence-transformers saves the bare BertModel); old LayerNorm
  // gamma/beta names are accepted. A missing tensor or a shape that differs from the
  // config is a core::InputError naming the file and the tensor. The head
  // (classifier.weight/bias [num_labels, H]) is taken from the checkpoint when it is there
  // with that shape, else drawn N(0, 0.02) (bias 0) from `head_seed`.
  static BertClassifier load(const std::filesystem::path& dir, int64_t num_labels, uint64_t head_seed);
  // A randomly initialised model (tests, benchmarks).
  static BertClassifier random(const BertConfig& cfg, int64_t num_labels, uint64_t seed);

  // logits [B, num_labels] for input_ids/attention_mask [B, L] (int64). With `training`
  // the sites in `drop` are active; at eval nothing is dropped or rescaled.
  [[nodiscard]] at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                   const DropoutSites& drop = {}, bool training = false) const override;

  // HF module paths of every Linear: "bert.encoder.layer.{i}.attention.self.query", ...,
  // "bert.pooler.dense", "classifier" (the output layer last).
  [[nodiscard]] std::vector<std::string> linear_names() const override;
  [[nodiscard]] std::string output_layer() const override { return "classifier"; }
  [[nodiscard]] std::string task_type() const override { return "SEQ_CLS"; }
  [[nodiscard]] const BertConfig& config() const { return cfg_; }
  [[nodiscard]] int64_t num_labels() const { return num_labels_; }

  // config.json: the checkpoint's config with architectures, num_labels, id2label, label2id.
  [[nodiscard]] nlohmann::json config_json() const override;
  // Writes a Hugging Face folder (config.json with num_labels + model.safetensors with
  // "bert."-prefixed names and the head), atomically per file.
  void save_hf(const std::filesystem::path& dir) const override;

 private:
  BertConfig cfg_;
  int64_t num_labels_ = 2;
};

}  // namespace mlsys::nn
