// PRoLoRA as an AdapterKind (adapter_kind.hpp): prolora-finetune's config sections, its
// adapters in the shared finetune flow, the compact HDF5 file, the parameter report.
#include <ATen/ATen.h>

#include <map>

#include "core/error.hpp"
#include "core/log_text.hpp"
#include "core/report.hpp"
#include "lora/adapter_kind.hpp"
#include "lora/finetune_config.hpp"
#include "lora/prolora.hpp"

namespace mlsys::lora {
namespace {

std::string forward_name(ProloraForward f) { return f == ProloraForward::chunked ? "chunked" : "materialized"; }

class ProloraAttached : public AttachedAdapters {
 public:
  explicit ProloraAttached(ProloraSet set) : set_(std::move(set)) {}
  [[nodiscard]] size_t modules() const override { return set_.adapters.size(); }
  std::vector<std::pair<std::string, at::Tensor>> trainable(const c10::Device& dev) override {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (auto& [name, ad] : set_.adapters) {
      const std::pair<at::Tensor*, const char*> parts[] = {{&ad->A0, "A0"}, {&ad->B0, "B0"}, {&ad->A_u, "A_u"},
                                                           {&ad->B_u, "B_u"}};
      for (const auto& [t, label] : parts) {
        *t = t->detach().to(dev).set_requires_grad(true);
        if (t->numel() > 0) out.emplace_back(name + "/" + label, *t);  // R = 0 or u = 0: nothing to train
      }
      ad->to(dev);
    }
    return out;
  }
  [[nodiscard]] std::vector<std::string> targets() const override { return set_.lora.targets; }
  [[nodiscard]] std::string describe() const override {
    const nlohmann::json r = report();
    return std::to_string(set_.adapters.size()) + " PRoLoRA modules (" + set_.cfg.variant + ": r=" +
           std::to_string(set_.lora.r) + ", u=" + std::to_string(set_.cfg.u) + ", m=" + std::to_string(set_.cfg.m) +
           ", n=" + std::to_string(set_.cfg.n) + ", rotation " + (set_.cfg.rotation ? "on" : "off") + ", s=" +
           core::fixed(set_.lora.scale(), 3) + "; " + std::to_string(r["parameters"].get<int64_t>()) +
           " adapter parameters, LoRA r=" + std::to_string(set_.lora.r) + " would have " +
           std::to_string(r["lora_parameters"].get<int64_t>()) + ")";
  }
  [[nodiscard]] nlohmann::json report() const override {
    nlohmann::json mods = nlohmann::json::array();
    int64_t total = 0, lora_total = 0;
    for (const auto& [name, ad] : set_.adapters) {
      const ProloraLayout& l = ad->layout;
      const int64_t p = l.parameters(), lp = lora_parameters(l.d_in, l.d_out, l.r);
      total += p;
      lora_total += lp;
      mods.push_back({{"module", name}, {"d_in", l.d_in}, {"d_out", l.d_out}, {"parameters", p},
                      {"lora_parameters", lp}, {"stride_a", l.stride_a}, {"stride_b", l.stride_b}});
    }
    return {{"adapter", "prolora"},
            {"variant", set_.cfg.variant},
            {"r", set_.lora.r},
            {"u", set_.cfg.u},
            {"m", set_.cfg.m},
            {"n", set_.cfg.n},
            {"rotation", set_.cfg.rotation},
            {"rectified_init", set_.cfg.rectified_init},
            {"forward", forward_name(set_.cfg.forward)},
            {"parameters", total},
            {"lora_parameters", lora_total},
            {"ratio_to_lora", lora_total > 0 ? static_cast<double>(total) / static_cast<double>(lora_total) : 0.0},
            {"modules", mods}};
  }
  [[nodiscard]] std::unique_ptr<SavedAdapter> snapshot(const nn::TransformerModel& model,
                                                       const std::vector<std::string>& labels,
                                                       const std::string& base_model) const override;
  void merge(nn::TransformerModel& model) override { lora::merge(model, set_); }
  [[nodiscard]] std::string noun() const override { return "PRoLoRA"; }

 private:
  ProloraSet set_;
};

class ProloraSaved : public SavedAdapter {
 public:
  explicit ProloraSaved(ProloraState s) : s_(std::move(s)) {}
  [[nodiscard]] const AdapterState& common() const override { return s_.common; }
  [[nodiscard]] std::unique_ptr<AttachedAdapters> attach(nn::TransformerModel& model,
                                                         const std::string& source) const override {
    return std::make_unique<ProloraAttached>(attach_prolora_state(model, s_, source));
  }
  void save_h5(const std::filesystem::path& path, const core::ArtifactInfo& info) const override {
    save_prolora_h5(path, s_, info);
  }
  [[nodiscard]] AdapterState as_lora() const override { return prolora_as_lora(s_); }
  [[nodiscard]] std::string noun() const override { return "PRoLoRA"; }
  [[nodiscard]] size_t modules() const override { return s_.modules.size(); }

 private:
  ProloraState s_;
};

std::unique_ptr<SavedAdapter> ProloraAttached::snapshot(const nn::TransformerModel& model,
                                                        const std::vector<std::string>& labels,
                                                        const std::string& base_model) const {
  return std::make_unique<ProloraSaved>(prolora_state_of(model, set_, labels, base_model));
}

// The per-shape parameter counts (modules of one shape have the same count) and the total,
// against LoRA at the same rank: logged when training starts.
void log_parameter_counts(const ProloraSet& set) {
  std::map<std::pair<int64_t, int64_t>, std::pair<int64_t, int64_t>> by_shape;  // (d_out, d_in) -> (modules, params)
  int64_t total = 0, lora_total = 0;
  for (const auto& [name, ad] : set.adapters) {
    const ProloraLayout& l = ad->layout;
    auto& e = by_shape[{l.d_out, l.d_in}];
    ++e.first;
    e.second = l.parameters();
    total += l.parameters();
    lora_total += lora_parameters(l.d_in, l.d_out, l.r);
  }
  for (const auto& [shape, e] : by_shape) {
    const int64_t lp = lora_parameters(shape.second, shape.first, set.lora.r);
    core::log_info("PRoLoRA parameters per module of " + std::to_string(shape.first) + "x" +
                   std::to_string(shape.second) + " (" + std::to_string(e.first) + " modules): " +
                   std::to_string(e.second) + " (LoRA r=" + std::to_string(set.lora.r) + ": " + std::to_string(lp) + ")");
  }
  core::log_info("PRoLoRA parameters in total: " + std::to_string(total) + " (LoRA r=" + std::to_string(set.lora.r) +
                 ": " + std::to_string(lora_total) + ", ratio " +
                 core::fixed(lora_total > 0 ? static_cast<double>(total) / static_cast<double>(lora_total) : 0.0, 3) +
                 ")");
}

class ProloraKind : public AdapterKind {
 public:
  [[nodiscard]] std::string program() const override { return "prolora-finetune"; }

  void read_config(const core::ConfigNode& root, FinetuneConfig& c) const override {
    auto p = root.child("prolora");
    ProloraConfig& pc = c.prolora;
    p.get("variant", pc.variant, core::one_of({"prolora", "rolora", "clora"}));
    // the ablation variants of the paper (Fig. 1): CLoRA broadcasts only, RoLoRA adds the
    // rotation, PRoLoRA adds u unshared ranks
    if (pc.variant != "prolora") pc.u = 0;
    pc.rotation = pc.variant != "clora";
    p.get("u", pc.u, core::in_range<int64_t>(0, 4096));
    p.get("m", pc.m, core::in_range<int64_t>(1, 1 << 20)).get("n", pc.n, core::in_range<int64_t>(1, 1 << 20));
    p.get("rotation", pc.rotation).get("rectified_init", pc.rectified_init);
    std::string forward = forward_name(pc.forward);
    p.get("forward", forward, core::one_of({"chunked", "materialized"}));
    pc.forward = forward == "chunked" ? ProloraForward::chunked : ProloraForward::materialized;
    if (pc.variant != "prolora" && pc.u != 0) {
      p.fail("u", "0 (variant " + pc.variant + " has no unshared ranks; use variant prolora)", std::to_string(pc.u));
    }
    if (pc.variant == "clora" && pc.rotation) p.fail("rotation", "false (variant clora does not rotate)", "true");
    if (pc.variant != "clora" && !pc.rotation) {
      p.fail("rotation", "true (variant " + pc.variant + " rotates; variant clora does not)", "false");
    }
    if (pc.u > c.lora.r) {
      p.fail("u", "at most lora.r = " + std::to_string(c.lora.r) + " (unshared ranks are part of the rank)",
             std::to_string(pc.u));
    }
    if (c.lora.init != "kaiming") {
      root.child("lora").fail("init", "kaiming (PRoLoRA initialises A uniformly, §3.4 of the notes)",
                              "\"" + c.lora.init + "\"");
    }
    auto pl = root.child("plan");
    pl.get("budget", c.plan.budget, core::in_range<int64_t>(0, int64_t{1} << 50));
    pl.get("ranks", c.plan.ranks).get("rates", c.plan.rates);
    pl.get("top", c.plan.top, core::in_range<int64_t>(1, 1000));
    pl.get("min_u", c.plan.min_u, core::in_range<int64_t>(0, 4096));
    for (int64_t r : c.plan.ranks) {
      if (r < 1 || r > 4096) pl.fail("ranks", "ranks from 1 to 4096", std::to_string(r));
    }
    for (int64_t m : c.plan.rates) {
      if (m < 1 || m > 1 << 20) pl.fail("rates", "sharing rates from 1 to 1048576", std::to_string(m));
    }
    if (c.plan.ranks.empty()) pl.fail("ranks", "at least one rank", "[]");
    if (c.plan.rates.empty()) pl.fail("rates", "at least one sharing rate", "[]");
  }

  [[nodiscard]] std::unique_ptr<AttachedAdapters> attach_fresh(nn::TransformerModel& model, const FinetuneConfig& c,
                                                               const LoraConfig& lc, uint64_t seed) const override {
    ProloraSet set = attach_prolora(model, lc, c.prolora, seed);
    log_parameter_counts(set);
    return std::make_unique<ProloraAttached>(std::move(set));
  }

  [[nodiscard]] std::unique_ptr<SavedAdapter> load(const std::filesystem::path& path) const override {
    // a PEFT folder holds the materialised (LoRA) form: it runs as LoRA
    if (std::filesystem::is_directory(path)) return saved_lora(import_peft(path));
    return std::make_unique<ProloraSaved>(load_prolora_h5(path));
  }
};

}  // namespace

const AdapterKind& prolora_kind() {
  static const ProloraKind kind;
  return kind;
}

}  // namespace mlsys::lora
