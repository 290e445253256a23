// BERT and RoBERTa encoders with a sequence-classification head (BertForSequenceClassification,
// RobertaForSequenceClassification), loaded from a Hugging Face folder, with attention written
// by hand so structured dropout reaches the logits, the weights and the hidden states (the
// default fast path uses SDPA with one mask unless the weights are dropped, and prunes the
// last layer to the first token: ForwardPath in structured_dropout.hpp).
// Parameters live in a name -> tensor map keyed by the Hugging Face names
// ("bert.encoder.layer.0.attention.self.query.weight", "roberta.encoder..."), so Linear modules
// are addressed by their HF module paths, which adapters target.
//
// RoBERTa (config model_type "roberta") is the same encoder with three differences:
//  - position ids = cumsum(input_ids != pad) + pad_token_id on real tokens, pad_token_id on
//    padding (so they start at 2 with pad 1), which leaves max_position_embeddings - pad - 1
//    usable positions (512 of roberta-base's 514);
//  - one token type (type_vocab_size 1) and no pooler;
//  - the head classifier.dense [H,H] -> tanh -> classifier.out_proj [C,H] on <s> (the first token).
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
  std::string model_type = "bert";  // bert | roberta
  nlohmann::json raw;               // the whole config.json, written back on save

  // core::InputError naming `source` for a model_type other than bert/roberta or a bad field.
  // For roberta the defaults of absent fields are RoBERTa's (type_vocab_size 1, pad_token_id 1,
  // layer_norm_eps 1e-5, max_position_embeddings 514).
  static BertConfig from_json(const nlohmann::json& j, const std::string& source);
  // RoBERTa's defaults (vocab 50265, 514 positions, ...) with model_type "roberta".
  static BertConfig roberta();
  [[nodiscard]] bool is_roberta() const { return model_type == "roberta"; }
  // "bert." or "roberta.": the encoder's tensor-name prefix.
  [[nodiscard]] std::string prefix() const { return model_type + "."; }
  // The longest input: max_position_embeddings (RoBERTa: less pad_token_id + 1).
  [[nodiscard]] int64_t max_length() const {
    return is_roberta() ? max_position_embeddings - pad_token_id - 1 : max_position_embeddings;
  }
};

class BertClassifier : public TransformerModel {
 public:
  // Loads `dir` (config.json + safetensors; model_type bert or roberta). The encoder tensors
  // may carry the "bert."/"roberta." prefix or not (sentence-transformers saves the bare
  // model); old LayerNorm gamma/beta names are accepted; a RoBERTa pooler is ignored. A
  // missing tensor or a shape that differs from the config is a core::InputError naming the
  // file and the tensor. Each head tensor (BERT: classifier.weight/bias [num_labels, H];
  // RoBERTa: classifier.dense [H,H] and classifier.out_proj [num_labels, H]) is taken from the
  // checkpoint when it is there with that shape, else drawn N(0, 0.02) (bias 0) from `head_seed`.
  static BertClassifier load(const std::filesystem::path& dir, int64_t num_labels, uint64_t head_seed);
  // A randomly initialised model (tests, benchmarks).
  static BertClassifier random(const BertConfig& cfg, int64_t num_labels, uint64_t seed);

  // logits [B, num_labels] for input_ids/attention_mask [B, L] (int64). With `training`
  // the sites in `drop` are active; at eval nothing is dropped or rescaled.
  [[nodiscard]] at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                   const DropoutSites& drop = {}, bool training = false) const override;

  // HF module paths of the Linears adapters may target: "bert.encoder.layer.{i}.attention.self.query",
  // ..., "bert.pooler.dense", "classifier" (the output layer last). RoBERTa: "roberta.encoder...",
  // then "classifier.out_proj"; classifier.dense is not listed: it is part of the head, which
  // is trained whole (PEFT's modules_to_save "classifier").
  [[nodiscard]] std::vector<std::string> linear_names() const override;
  [[nodiscard]] std::string output_layer() const override {
    return cfg_.is_roberta() ? "classifier.out_proj" : "classifier";
  }
  [[nodiscard]] std::string task_type() const override { return "SEQ_CLS"; }
  // The trainable head's parameters: every parameter named "classifier.*".
  [[nodiscard]] std::vector<std::string> head_names() const;
  [[nodiscard]] const BertConfig& config() const { return cfg_; }
  [[nodiscard]] int64_t num_labels() const { return num_labels_; }

  // Which forward pass this model runs (ForwardPath in structured_dropout.hpp): fast unless
  // set; reference for comparisons.
  void set_forward_path(ForwardPath p) { forward_path_ = p; }
  [[nodiscard]] ForwardPath forward_path() const { return forward_path_; }

  // config.json: the checkpoint's config with architectures, num_labels, id2label, label2id.
  // config.json with num_labels, id2label and label2id; save_hf (the base's) writes it
  // beside "bert."/"roberta."-prefixed tensors and the head.
  [[nodiscard]] nlohmann::json config_json() const override;

 private:
  BertConfig cfg_;
  int64_t num_labels_ = 2;
  ForwardPath forward_path_ = ForwardPath::fast;
};

}  // namespace mlsys::nn
