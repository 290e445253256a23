// The transformer dynapipe-plan profiles and runs: a LLaMA-style decoder of lib/nn
// (nn::LlamaForCausalLM, run layer by layer through its layer() API) with the widths of the
// config's model section, and the pieces a pipeline stage needs (causal-LM loss, the
// attention context every micro-batch uses).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "nn/llama.hpp"
#include "plan/model_spec.hpp"

namespace mlsys::plan {

// A GPT-like LLaMA of `m`'s widths: m.encoder_layers layers (`layers` when >= 0), hidden,
// heads x kv_channels attention, FFN, vocabulary, untied LM head, positions up to
// `max_len`; weights N(0, 0.02) from `seed`, in `dtype`, on `device`, requiring grad.
nn::LlamaForCausalLM make_stage_model(const ModelSpec& m, int64_t max_len, uint64_t seed, at::ScalarType dtype,
                                      const c10::Device& device, int64_t layers = -1);

// layer_context for `mask` [B, L], always on the masked attention kernel (SDPA with a
// boolean mask), so that every micro-batch, padded or not, runs the kernel the profile measured.
nn::LlamaForCausalLM::LayerContext masked_context(const nn::LlamaForCausalLM& model, const at::Tensor& mask);

// Sum over real positions t (mask[t + 1] == 1) of the next-token cross-entropy of
// logits [B, L, V] against ids [B, L].
at::Tensor causal_lm_loss_sum(const at::Tensor& logits, const at::Tensor& ids, const at::Tensor& mask);

}  // namespace mlsys::plan
