// LoRA as an AdapterKind (adapter_kind.hpp): lora-finetune's adapters, HDF5 file and PEFT
// folders, over the functions of lora.hpp.
#include <ATen/ATen.h>

#include "core/error.hpp"
#include "core/report.hpp"
#include "lora/adapter_kind.hpp"
#include "lora/finetune_config.hpp"

namespace mlsys::lora {
namespace {

class LoraAttached : public AttachedAdapters {
 public:
  explicit LoraAttached(LoraSet set) : set_(std::move(set)) {}
  [[nodiscard]] size_t modules() const override { return set_.adapters.size(); }
  std::vector<std::pair<std::string, at::Tensor>> trainable(const c10::Device& dev) override {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (auto& [name, ad] : set_.adapters) {
      ad->A = ad->A.detach().to(dev).set_requires_grad(true);
      ad->B = ad->B.detach().to(dev).set_requires_grad(true);
      out.emplace_back(name + "/A", ad->A);
      out.emplace_back(name + "/B", ad->B);
    }
    return out;
  }
  [[nodiscard]] std::vector<std::string> targets() const override { return set_.cfg.targets; }
  [[nodiscard]] std::string describe() const override {
    return std::to_string(set_.adapters.size()) + " LoRA modules (r=" + std::to_string(set_.cfg.r) +
           ", s=" + core::fixed(set_.cfg.scale(), 3) + ")";
  }
  [[nodiscard]] std::unique_ptr<SavedAdapter> snapshot(const nn::TransformerModel& model,
                                                       const std::vector<std::string>& labels,
                                                       const std::string& base_model) const override {
    return saved_lora(state_of(model, set_, labels, base_model));
  }
  void merge(nn::TransformerModel& model) override { lora::merge(model, set_); }
  [[nodiscard]] std::string noun() const override { return "LoRA"; }

 private:
  LoraSet set_;
};

class LoraSaved : public SavedAdapter {
 public:
  explicit LoraSaved(AdapterState s) : s_(std::move(s)) {}
  [[nodiscard]] const AdapterState& common() const override { return s_; }
  [[nodiscard]] std::unique_ptr<AttachedAdapters> attach(nn::TransformerModel& model,
                                                         const std::string& source) const override {
    return std::make_unique<LoraAttached>(attach_state(model, s_, source));
  }
  void save_h5(const std::filesystem::path& path, const core::ArtifactInfo& info) const override {
    save_adapter_h5(path, s_, info);
  }
  [[nodiscard]] AdapterState as_lora() const override { return s_; }
  [[nodiscard]] std::string noun() const override { return "LoRA"; }
  [[nodiscard]] size_t modules() const override { return s_.ab.size(); }

 private:
  AdapterState s_;
};

class LoraKind : public AdapterKind {
 public:
  [[nodiscard]] std::string program() const override { return "lora-finetune"; }
  void read_config(const core::ConfigNode& /*root*/, FinetuneConfig& /*c*/) const override {}
  [[nodiscard]] std::unique_ptr<AttachedAdapters> attach_fresh(nn::TransformerModel& model, const FinetuneConfig& /*c*/,
                                                               const LoraConfig& lc, uint64_t seed) const override {
    return std::make_unique<LoraAttached>(attach_lora(model, lc, seed));
  }
  [[nodiscard]] std::unique_ptr<SavedAdapter> load(const std::filesystem::path& path) const override {
    if (std::filesystem::is_directory(path)) return saved_lora(import_peft(path));
    return saved_lora(load_adapter_h5(path));
  }
};

}  // namespace

std::unique_ptr<SavedAdapter> saved_lora(AdapterState state) { return std::make_unique<LoraSaved>(std::move(state)); }

const AdapterKind& lora_kind() {
  static const LoraKind kind;
  return kind;
}

}  // namespace mlsys::lora
