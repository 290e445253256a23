// Causal-LM examples (lora-finetune, prolora-finetune, dot-reason): prompt + completion token sequences with the
// completion marked as the loss targets, padded batches, evaluation (per-token loss,
// perplexity, next-token accuracy) and greedy generation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "nn/model.hpp"
#include "nn/sentencepiece.hpp"
#include "nn/text_data.hpp"

namespace mlsys::nn {

struct LmSequences {
  std::vector<std::vector<int64_t>> ids;     // prompt + completion, at most max_length tokens
  std::vector<std::vector<uint8_t>> target;  // 1 where the token is a completion token (a loss target)
  std::vector<std::string> prompt;           // the prompt text (text rows) for predictions
  int64_t truncated = 0;                     // rows cut to max_length
};

// Text rows are tokenized with `tok` as [BOS] prompt completion [EOS] (Hugging Face's
// causal-LM finetuning layout; BOS/EOS when the tokenizer has them); id rows are taken as
// given. core::InputError naming `source` and the line for a text row without a tokenizer
// or an id outside [0, vocab) (given, or from a tokenizer larger than the model). Rows
// longer than max_length keep their first max_length tokens; a row left with no target is
// an InputError. With `prompts_only` no targets, and a prompt of max_length tokens or more
// is an InputError (nothing could be generated).
[[nodiscard]] LmSequences encode_lm(const std::vector<LmExample>& rows, const SentencePieceTokenizer* tok,
                                    int64_t vocab, int64_t max_length, const std::string& source,
                                    bool prompts_only = false);

struct LmBatch {
  at::Tensor ids, mask, loss_mask;  // [B, L], padded on the right
  int64_t tokens = 0;               // real tokens
};
[[nodiscard]] LmBatch make_lm_batch(const LmSequences& d, const std::vector<size_t>& idx, int64_t pad_id,
                                    const c10::Device& dev);

struct LmEval {
  double loss = 0;            // mean cross-entropy per target token (nats)
  double perplexity = 0;      // exp(loss)
  double token_accuracy = 0;  // argmax next token = target
  int64_t targets = 0;
};
// Eval mode (no dropout, no gradient), in batches of `batch` rows.
[[nodiscard]] LmEval evaluate_lm(const TransformerModel& model, const LmSequences& d, int64_t batch,
                                 int64_t pad_id, const c10::Device& dev);

// Greedy continuation of `prompt` by up to max_new tokens (stops at `eos` when ≥ 0, and at
// max_length tokens in all); the new tokens only. Recomputes the whole prefix per token.
[[nodiscard]] std::vector<int64_t> generate_greedy(const TransformerModel& model, const std::vector<int64_t>& prompt,
                                                   int64_t max_new, int64_t eos, int64_t max_length,
                                                   const c10::Device& dev);

}  // namespace mlsys::nn
