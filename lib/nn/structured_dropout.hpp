// Structured dropout at the positions a transformer exposes (arXiv 2403.00812, §2 of the
// method notes): attention logits (DropKey), attention weights (DropAttention), hidden
// representations (HiddenCut / hidden dropout) and the LoRA input, each with an element,
// column or span pattern and a rescale or normalize compensation. The model calls these
// at the named positions; lib/lora's unified framework decides which sites are active.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mlsys::nn {

enum class DropPosition { lora_input, attn_logits, attn_weights, hidden };
enum class DropPattern { element, column, span };
// rescale: kept values × 1/(1-p); normalize: attention rows renormalised to sum 1 over the
// kept keys (automatic for logits set to -inf); none: no compensation (HiddenCut's span).
enum class DropCompensation { rescale, normalize, none };

struct DropSite {
  DropPosition position = DropPosition::hidden;
  DropPattern pattern = DropPattern::element;
  DropCompensation compensation = DropCompensation::rescale;
  double rate = 0.1;                // drop probability (span: the cut ratio of the length)
  bool share_across_heads = false;  // column pattern: one mask per (batch) or per (batch, head)
};

// The active sites of one forward pass (at most one per position); empty = no dropout.
struct DropoutSites {
  std::vector<DropSite> sites;
  [[nodiscard]] const DropSite* at(DropPosition p) const {
    for (const auto& s : sites) {
      if (s.position == p && s.rate > 0) return &s;
    }
    return nullptr;
  }
};

[[nodiscard]] std::string to_string(DropPosition p);
[[nodiscard]] std::string to_string(DropPattern p);
[[nodiscard]] std::string to_string(DropCompensation c);
// nullopt for an unknown name
[[nodiscard]] std::optional<DropPosition> parse_drop_position(const std::string& s);
[[nodiscard]] std::optional<DropPattern> parse_drop_pattern(const std::string& s);
[[nodiscard]] std::optional<DropCompensation> parse_drop_compensation(const std::string& s);

// A keep-mask (bool) for attention [B,H,Lq,Lk]: element -> [B,H,Lq,Lk], column ->
// [B,H,1,Lk] (or [B,1,1,Lk] shared across heads). Key 0 (CLS/BOS) is never dropped, so
// no row loses every visible key (no NaN on padded rows or causal row 0).
[[nodiscard]] at::Tensor sample_attention_keep(const DropSite& site, int64_t B, int64_t H, int64_t Lq, int64_t Lk,
                                               const at::TensorOptions& opts);
// DropKey: logits with dropped keys set to -inf (softmax then renormalises over the rest).
[[nodiscard]] at::Tensor mask_attention_logits(const at::Tensor& logits, const at::Tensor& keep);
// DropAttention: probabilities masked and compensated (rescale 1/(1-p) or row-normalize).
[[nodiscard]] at::Tensor mask_attention_weights(const at::Tensor& probs, const at::Tensor& keep,
                                                DropCompensation comp, double rate);
// Hidden representations h [B,L,d] with token_mask [B,L] (1 = real token): element
// dropout (rescale) or a span cut of ⌊rate·len⌋ (≥ 1) consecutive real tokens per row,
// starting uniformly at random (HiddenCut's simpler variant; no rescale).
[[nodiscard]] at::Tensor drop_hidden(const at::Tensor& h, const DropSite& site, const at::Tensor& token_mask);
// Inverted element dropout (the LoRA-input position).
[[nodiscard]] at::Tensor drop_elements(const at::Tensor& x, double rate);

// How BERT/RoBERTa and LLaMA run their forward pass. fast (the default):
//  - attention is at::scaled_dot_product_attention with one boolean mask (padding / causal
//    visibility AND any attn_logits keep-mask) unless an attn_weights site is active, which
//    needs the hand-written softmax weights;
//  - BERT/RoBERTa's last layer computes only the first token's row past the keys and values
//    (the head reads nothing else), except in training when its attention output,
//    intermediate or output Linear carries an adapter (which may draw its own dropout over
//    every row); for the same reason, in training an adapted query Linear runs on every row
//    and is then sliced.
// reference: the hand-written matmul, mask, softmax, (mask), matmul on every row of every
// layer. Both draw the same random numbers in the same order (full-size masks, sliced), so a
// seed gives the same masks and the same result up to float rounding. A setting of each model
// object (BertClassifier / LlamaForCausalLM::set_forward_path), fast unless set; for tests
// and comparisons.
enum class ForwardPath { fast, reference };

}  // namespace mlsys::nn
