// The unified dropout framework of "LoRA Meets Dropout under a Unified Framework"
// (arXiv 2403.00812): every method is a choice of dropping position, structural pattern
// and compensation measure, run by one code path (nn::DropoutSites in the model plus a
// consistency loss over two passes). Named presets give DropKey, DropAttention, HiddenCut,
// PEFT's LoRA dropout and HiddenKey (= column DropKey + element hidden dropout +
// bidirectional KL between two passes of the doubled batch).
#pragma once

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "nn/model.hpp"
#include "nn/structured_dropout.hpp"

namespace mlsys::lora {

enum class Consistency { none, kl, js };

struct UnifiedDropout {
  std::string preset = "none";
  nn::DropoutSites sites;           // the attn/hidden/lora_input sites
  Consistency consistency = Consistency::none;
  double consistency_weight = 1.0;  // α in L = ½(CE1+CE2) + α·KL_bidir
  [[nodiscard]] double lora_input_rate() const;
  [[nodiscard]] bool two_pass() const { return consistency != Consistency::none; }
};

// none | lora-dropout | dropkey | dropattention | hiddencut | hiddenkey | hiddenkey-minus,
// with rate p at every site (HiddenCut: the span ratio). core::ConfigError for other names.
[[nodiscard]] UnifiedDropout dropout_preset(const std::string& name, double p = 0.1, double kl_weight = 1.0);
[[nodiscard]] const std::vector<std::string>& preset_names();
[[nodiscard]] std::string to_string(Consistency c);

// ½[KL(p1‖p2) + KL(p2‖p1)] with p = softmax(logits), averaged over rows.
[[nodiscard]] at::Tensor bidirectional_kl(const at::Tensor& logits1, const at::Tensor& logits2);
// JS(p1, p2) = ½KL(p1‖m) + ½KL(p2‖m), m = (p1+p2)/2, averaged over rows.
[[nodiscard]] at::Tensor js_divergence(const at::Tensor& logits1, const at::Tensor& logits2);

struct LossParts {
  at::Tensor loss;    // to back-propagate
  at::Tensor logits;  // [B, C] or [B, L, V] (the first pass)
  double ce = 0;      // mean cross-entropy
  double consistency = 0;
};

// The training (or evaluation) loss of one batch under the framework. With a consistency
// measure and `training`, the batch is doubled and run in one forward pass (independent
// masks per copy): ½(CE1+CE2) + α·D(p1, p2). At eval: plain CE, no dropout.
[[nodiscard]] LossParts classification_loss(const nn::TransformerModel& model, const at::Tensor& ids,
                                            const at::Tensor& mask, const at::Tensor& labels,
                                            const UnifiedDropout& drop, bool training);

// The causal-LM loss of one batch under the framework: next-token cross-entropy, the
// logits at position t predicting ids[t+1], averaged over the tokens t+1 where
// `loss_mask` [B, L] (aligned with ids: 1 = this token is a target) is 1. For plain text
// pass loss_mask = attention_mask; for prompt/completion, 1 on the completion tokens only.
// (Position 0 is never a target.) With a consistency measure and `training`: one forward
// over the doubled batch, ½(CE1+CE2) + α·D over the next-token distributions of the
// target positions. core::InputError when no position is a target.
[[nodiscard]] LossParts causal_lm_loss(const nn::TransformerModel& model, const at::Tensor& ids,
                                       const at::Tensor& mask, const at::Tensor& loss_mask,
                                       const UnifiedDropout& drop, bool training);

}  // namespace mlsys::lora
