// The unified dropout framework: presets, consistency measures and the loss (see
// unified_dropout.hpp).
#include "lora/unified_dropout.hpp"

#include <ATen/ATen.h>

#include "core/error.hpp"

namespace mlsys::lora {

using nn::DropCompensation;
using nn::DropPattern;
using nn::DropPosition;

double UnifiedDropout::lora_input_rate() const {
  const nn::DropSite* s = sites.at(DropPosition::lora_input);
  return s != nullptr ? s->rate : 0.0;
}

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = {"none",      "lora-dropout", "dropkey",        "dropattention",
                                                 "hiddencut", "hiddenkey",    "hiddenkey-minus"};
  return names;
}

std::string to_string(Consistency c) {
  switch (c) {
    case Consistency::none: return "none";
    case Consistency::kl: return "kl";
    case Consistency::js: return "js";
  }
  return "?";
}

UnifiedDropout dropout_preset(const std::string& name, double p, double kl_weight) {
  UnifiedDropout d;
  d.preset = name;
  d.consistency_weight = kl_weight;
  auto site = [p](DropPosition pos, DropPattern pat, DropCompensation comp) { return nn::DropSite{pos, pat, comp, p, false}; };
  if (name == "none") {
  } else if (name == "lora-dropout") {  // PEFT: inverted dropout on the LoRA branch's input
    d.sites.sites = {site(DropPosition::lora_input, DropPattern::element, DropCompensation::rescale)};
  } else if (name == "dropkey") {  // Li et al. 2023: element-wise on the logits, softmax renormalises
    d.sites.sites = {site(DropPosition::attn_logits, DropPattern::element, DropCompensation::normalize)};
  } else if (name == "dropattention") {  // Zehui et al. 2019, normalized rescaling of the weights
    d.sites.sites = {site(DropPosition::attn_weights, DropPattern::element, DropCompensation::normalize)};
  } else if (name == "hiddencut") {  // Chen et al. 2021: span cut of the FFN output + JS consistency
    d.sites.sites = {site(DropPosition::hidden, DropPattern::span, DropCompensation::none)};
    d.consistency = Consistency::js;
  } else if (name == "hiddenkey" || name == "hiddenkey-minus") {
    // column DropKey on the logits + element dropout of the hidden states (+ bidirectional KL)
    d.sites.sites = {site(DropPosition::attn_logits, DropPattern::column, DropCompensation::normalize),
                     site(DropPosition::hidden, DropPattern::element, DropCompensation::rescale)};
    if (name == "hiddenkey") d.consistency = Consistency::kl;
  } else {
    std::string all;
    for (const auto& n : preset_names()) all += (all.empty() ? "" : ", ") + n;
    throw core::ConfigError("key 'dropout.preset': expected one of " + all + ", found \"" + name + "\"");
  }
  return d;
}

at::Tensor bidirectional_kl(const at::Tensor& logits1, const at::Tensor& logits2) {
  at::Tensor lp1 = at::log_softmax(logits1, -1), lp2 = at::log_softmax(logits2, -1);
  at::Tensor kl12 = (lp1.exp() * (lp1 - lp2)).sum(-1);
  at::Tensor kl21 = (lp2.exp() * (lp2 - lp1)).sum(-1);
  return (0.5 * (kl12 + kl21)).mean();
}

at::Tensor js_divergence(const at::Tensor& logits1, const at::Tensor& logits2) {
  at::Tensor lp1 = at::log_softmax(logits1, -1), lp2 = at::log_softmax(logits2, -1);
  at::Tensor lm = at::log((lp1.exp() + lp2.exp()) * 0.5);
  at::Tensor kl1 = (lp1.exp() * (lp1 - lm)).sum(-1);
  at::Tensor kl2 = (lp2.exp() * (lp2 - lm)).sum(-1);
  return (0.5 * (kl1 + kl2)).mean();
}

namespace {

// The framework's two-pass loss from both passes' predictions [N, C] of targets [N]:
// ½(CE1 + CE2) + α·D(p1, p2), D the bidirectional KL or JS.
void two_pass_loss(LossParts& out, const at::Tensor& pred1, const at::Tensor& pred2, const at::Tensor& target,
                   const UnifiedDropout& drop) {
  at::Tensor ce = 0.5 * (at::cross_entropy_loss(pred1, target) + at::cross_entropy_loss(pred2, target));
  at::Tensor cons = drop.consistency == Consistency::kl ? bidirectional_kl(pred1, pred2) : js_divergence(pred1, pred2);
  out.loss = ce + drop.consistency_weight * cons;
  out.ce = ce.item<double>();
  out.consistency = cons.item<double>();
}

}  // namespace

LossParts classification_loss(const nn::TransformerModel& model, const at::Tensor& ids, const at::Tensor& mask,
                              const at::Tensor& labels, const UnifiedDropout& drop, bool training) {
  LossParts out;
  if (!training || !drop.two_pass()) {
    out.logits = model.forward(ids, mask, drop.sites, training);
    out.loss = at::cross_entropy_loss(out.logits, labels);
    out.ce = out.loss.item<double>();
    return out;
  }
  // one forward over the doubled batch: each copy draws its own masks
  const int64_t B = ids.size(0);
  at::Tensor logits = model.forward(at::cat({ids, ids}), at::cat({mask, mask}), drop.sites, true);
  at::Tensor l1 = logits.narrow(0, 0, B);
  two_pass_loss(out, l1, logits.narrow(0, B, B), labels, drop);
  out.logits = l1;
  return out;
}

namespace {

// The next-token logits of the target positions [N, V] and their targets [N].
std::pair<at::Tensor, at::Tensor> lm_targets(const at::Tensor& logits, const at::Tensor& ids, const at::Tensor& sel) {
  const int64_t V = logits.size(-1), L = logits.size(1);
  at::Tensor pred = logits.narrow(1, 0, L - 1).reshape({-1, V});
  at::Tensor tgt = ids.narrow(1, 1, L - 1).reshape({-1});
  return {pred.index_select(0, sel), tgt.index_select(0, sel)};
}

}  // namespace

LossParts causal_lm_loss(const nn::TransformerModel& model, const at::Tensor& ids, const at::Tensor& mask,
                         const at::Tensor& loss_mask, const UnifiedDropout& drop, bool training) {
  if (ids.dim() != 2 || loss_mask.sizes() != ids.sizes() || mask.sizes() != ids.sizes()) {
    throw core::RuntimeFailure("causal_lm_loss: ids, mask and loss_mask must all be [B, L]");
  }
  // flat indices of the predicting positions t (0..L-2) whose next token is a target
  at::Tensor sel = loss_mask.narrow(1, 1, ids.size(1) - 1).reshape({-1}).ne(0).nonzero().squeeze(1);
  if (sel.numel() == 0) throw core::InputError("causal LM batch without any target token (all loss_mask zero)");
  LossParts out;
  if (!training || !drop.two_pass()) {
    out.logits = model.forward(ids, mask, drop.sites, training);
    auto [pred, tgt] = lm_targets(out.logits, ids, sel);
    out.loss = at::cross_entropy_loss(pred, tgt);
    out.ce = out.loss.item<double>();
    return out;
  }
  const int64_t B = ids.size(0);
  at::Tensor logits = model.forward(at::cat({ids, ids}), at::cat({mask, mask}), drop.sites, true);
  at::Tensor l1 = logits.narrow(0, 0, B), l2 = logits.narrow(0, B, B);
  auto [p1, tgt] = lm_targets(l1, ids, sel);
  two_pass_loss(out, p1, lm_targets(l2, ids, sel).first, tgt, drop);
  out.logits = l1;
  return out;
}

}  // namespace mlsys::lora
