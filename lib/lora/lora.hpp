// LoRA adapters (Hu et al. 2021) on the Linear modules of an nn model:
// h = W0 x + s·B(A(drop(x))), s = α/r (rsLoRA: α/√r), A [r, d_in], B [d_out, r];
// target selection as PEFT (module names or suffixes, or "all-linear"), merge/unmerge,
// HDF5 save/load and the PEFT layout (adapter_config.json + adapter_model.safetensors).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "nn/bert.hpp"  // nn::BertClassifier for the classification commands
#include "core/h5.hpp"
#include "nn/model.hpp"

namespace mlsys::lora {

struct LoraConfig {
  std::vector<std::string> targets = {"query", "value"};  // PEFT target_modules, or {"all-linear"}
  int64_t r = 8;
  double alpha = 16;
  bool rslora = false;             // s = α/√r instead of α/r
  std::string init = "kaiming";    // kaiming: A ~ U(±1/√d_in) (PEFT's default); gaussian: A ~ N(0, 1/r); B = 0
  double input_dropout = 0.0;      // PEFT lora_dropout (the lora_input position of the framework)
  [[nodiscard]] double scale() const;
};

class LoraAdapter : public nn::LinearAdapter {
 public:
  LoraAdapter(at::Tensor a, at::Tensor b, double scale, double input_dropout);
  [[nodiscard]] at::Tensor delta(const at::Tensor& x, bool training) const override;
  at::Tensor A, B;  // leaves with requires_grad when trainable
  double scale;
  double input_dropout;
  bool merged = false;
};

// The adapters attached to one model, by Linear module path.
struct LoraSet {
  LoraConfig cfg;
  std::map<std::string, std::shared_ptr<LoraAdapter>> adapters;
};

// The Linear module paths `targets` select among `linears` (PEFT rules: a target matches a
// module whose path equals it or ends with "." + it; "all-linear" selects every Linear but
// the output layer `output_layer`). core::ConfigError naming the target for one that
// matches nothing (listing a few module names).
[[nodiscard]] std::vector<std::string> resolve_targets(const std::vector<std::string>& linears,
                                                       const std::vector<std::string>& targets,
                                                       const std::string& output_layer = "classifier");

// Freshly initialised adapters (seeded) attached to `model`; the base weights are frozen.
// "all-linear" leaves out model.output_layer().
LoraSet attach_lora(nn::TransformerModel& model, const LoraConfig& cfg, uint64_t seed);

// W ← W + s·B·A for every adapter (then the adapter adds nothing); unmerge subtracts it.
// core::ConfigError for an adapter on a tied weight (lm_head with tie_word_embeddings).
void merge(nn::TransformerModel& model, LoraSet& set);
void unmerge(nn::TransformerModel& model, LoraSet& set);

// What an adapter file holds: config, A/B per module, the classification head, labels.
struct AdapterState {
  LoraConfig cfg;
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> ab;  // module -> (A, B)
  // classifier (PEFT modules_to_save) of a SEQ_CLS model; undefined for a causal LM:
  // the output layer `head_module` (BERT "classifier", RoBERTa "classifier.out_proj") and the
  // head's other tensors by parameter name (RoBERTa: classifier.dense.weight/bias)
  at::Tensor head_weight, head_bias;
  std::string head_module = "classifier";
  std::map<std::string, at::Tensor> head_extra;
  std::vector<std::string> labels;
  std::string base_model;
  std::string task_type = "SEQ_CLS";  // PEFT's: SEQ_CLS | CAUSAL_LM
  // Where cfg.targets was read, for messages ("DIR/adapter_config.json: field
  // 'target_modules'", "FILE.h5: /targets"); "" when the targets are not to be checked
  // against a model (a state built in memory, PEFT's regex form of target_modules).
  std::string targets_source;
};

// A snapshot (copies) of the adapters; the head (every "classifier.*" parameter, the output
// layer model.output_layer() as head_weight/head_bias) is taken when model.task_type() is SEQ_CLS.
[[nodiscard]] AdapterState state_of(const nn::TransformerModel& model, const LoraSet& set,
                                    const std::vector<std::string>& labels, const std::string& base_model);
// Attaches `state` to `model` (shapes checked: core::InputError naming `source` and the
// module) and installs its head, if it has one. A state whose task_type differs from the
// model's, or whose targets (read from state.targets_source) name no module of the model,
// is a core::InputError.
LoraSet attach_state(nn::TransformerModel& model, const AdapterState& state, const std::string& source);

// HDF5: /lora/<module>/A, /lora/<module>/B, /head/weight, /head/bias (SEQ_CLS only; with a
// head_module other than "classifier" the string /head/module and /head/extra/<name>),
// /labels, /targets, /task_type (absent in older files: SEQ_CLS), root attrs r, alpha,
// rslora, lora_dropout, base_model (plus the artifact attributes and config).
void save_adapter_h5(const std::filesystem::path& path, const AdapterState& state, const core::ArtifactInfo& info);
// Both readers refuse (core::InputError naming the file and the module) tensors that are
// not 2-D (A [r, d_in], B [d_out, r] with r as configured; a head weight [C, H] with bias
// [C]), not floating point, or not finite.
[[nodiscard]] AdapterState load_adapter_h5(const std::filesystem::path& path);

// The parts of an adapter file that every kind of adapter shares, on an open file: the head
// (as above), /labels, /targets, /task_type and the root attributes r, alpha, rslora,
// lora_dropout, base_model. read_adapter_common reads all but the head (core::InputError
// naming `file`), read_adapter_head the head; check_adapter_tensors is the check both
// readers make (every tensor floating point and finite, A [r, d_in] and B [d_out, r] with
// the configured r, a head weight [C, H] with its bias [C]).
void write_adapter_common(core::H5Writer& w, const AdapterState& state);
void read_adapter_common(const core::H5Reader& r, AdapterState& state, const std::string& file);
void read_adapter_head(const core::H5Reader& r, AdapterState& state, const std::string& file);
void check_adapter_tensors(const AdapterState& state, const std::string& file);

// PEFT: DIR/adapter_config.json + DIR/adapter_model.safetensors with keys
// base_model.model.<module>.lora_{A,B}.weight, and for SEQ_CLS the head
// base_model.model.classifier.{weight,bias} (RoBERTa: classifier.{dense,out_proj}.{weight,bias};
// modules_to_save "classifier"); task_type as in the state
// (a LLaMA module: base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight).
// adapter_config.json holds LoraConfig's keys only, so PEFT loads the folder without a
// warning; the label names are DIR/mlsys_labels.json {"labels": [...]} beside it (import
// also reads the key "mlsys_labels" of adapter_config.json that older exports wrote).
void export_peft(const std::filesystem::path& dir, const AdapterState& state);
[[nodiscard]] AdapterState import_peft(const std::filesystem::path& dir);

}  // namespace mlsys::lora
