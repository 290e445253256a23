// What the finetune flow (finetune_commands: train, eval, predict, merge, export, bench)
// needs from one kind of adapter, so that lora-finetune (LoRA) and prolora-finetune
// (PRoLoRA) run the same commands and differ only in the AdapterKind they hand over.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include "core/config.hpp"
#include "core/h5.hpp"
#include "lora/lora.hpp"

namespace mlsys::lora {

struct FinetuneConfig;
class AttachedAdapters;

// A trained adapter as a file holds it, attached to no model.
class SavedAdapter {
 public:
  virtual ~SavedAdapter() = default;
  // What every kind shares: task type, labels, the classifier head, the base model, the
  // targets. For LoRA this is the whole adapter.
  [[nodiscard]] virtual const AdapterState& common() const = 0;
  // Attaches it to `model` (shapes checked: core::InputError naming `source`) with its head.
  [[nodiscard]] virtual std::unique_ptr<AttachedAdapters> attach(nn::TransformerModel& model,
                                                                 const std::string& source) const = 0;
  // The kind's own HDF5 file, with the artifact header `info`.
  virtual void save_h5(const std::filesystem::path& path, const core::ArtifactInfo& info) const = 0;
  // The same ΔW = s·B·A per module in LoRA's form (A [r, d_in], B [d_out, r]): what the PEFT
  // layout holds, so that any LoRA loader reads it.
  [[nodiscard]] virtual AdapterState as_lora() const = 0;
  // "LoRA", "PRoLoRA": the noun of the messages.
  [[nodiscard]] virtual std::string noun() const = 0;
  [[nodiscard]] virtual size_t modules() const = 0;
};

// Adapters attached to one model.
class AttachedAdapters {
 public:
  virtual ~AttachedAdapters() = default;
  [[nodiscard]] virtual size_t modules() const = 0;
  // The trainable tensors moved to `dev` as leaves with requires_grad (the adapters now
  // read them), named "<module>/<tensor>".
  [[nodiscard]] virtual std::vector<std::pair<std::string, at::Tensor>> trainable(const c10::Device& dev) = 0;
  // The target selection that made them (recorded as lora.targets in the artifacts).
  [[nodiscard]] virtual std::vector<std::string> targets() const = 0;
  // The training log's description: "24 LoRA modules (r=8, s=2.000)".
  [[nodiscard]] virtual std::string describe() const = 0;
  // Extra numbers of the kind for the summary and the metrics file (PRoLoRA: parameter
  // counts per module and in total, against LoRA's); null for LoRA.
  [[nodiscard]] virtual nlohmann::json report() const { return nullptr; }
  // A snapshot (copies) of the adapters with the model's head (SEQ_CLS).
  [[nodiscard]] virtual std::unique_ptr<SavedAdapter> snapshot(const nn::TransformerModel& model,
                                                               const std::vector<std::string>& labels,
                                                               const std::string& base_model) const = 0;
  // W ← W + ΔW for every module (then the adapter adds nothing); core::ConfigError for a tied weight.
  virtual void merge(nn::TransformerModel& model) = 0;
  [[nodiscard]] virtual std::string noun() const = 0;
};

class AdapterKind {
 public:
  virtual ~AdapterKind() = default;
  // "lora-finetune": the program (messages, the bench JSON's "impl").
  [[nodiscard]] virtual std::string program() const = 0;
  // Reads the kind's own config sections beyond the shared ones (LoRA: none) into `c`.
  virtual void read_config(const core::ConfigNode& root, FinetuneConfig& c) const = 0;
  // Freshly initialised adapters (seeded) on the Linears `lc.targets` selects; the base
  // weights are frozen.
  [[nodiscard]] virtual std::unique_ptr<AttachedAdapters> attach_fresh(nn::TransformerModel& model,
                                                                       const FinetuneConfig& c, const LoraConfig& lc,
                                                                       uint64_t seed) const = 0;
  // The adapter at `path`: the kind's HDF5 file, or a PEFT folder (a LoRA adapter).
  [[nodiscard]] virtual std::unique_ptr<SavedAdapter> load(const std::filesystem::path& path) const = 0;
};

// LoRA (lora.hpp) as an AdapterKind: lora-finetune.
[[nodiscard]] const AdapterKind& lora_kind();
// PRoLoRA (prolora.hpp) as an AdapterKind: prolora-finetune (its config sections prolora
// and plan; a PEFT folder given as the adapter runs as LoRA).
[[nodiscard]] const AdapterKind& prolora_kind();
// A LoRA adapter state as a SavedAdapter (a PEFT folder read by either program).
[[nodiscard]] std::unique_ptr<SavedAdapter> saved_lora(AdapterState state);

}  // namespace mlsys::lora
