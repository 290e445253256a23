// llama2.c "legacy" checkpoints (.bin: 7 int32 header + float32 arrays) converted to the
// Hugging Face LLaMA layout: names of §7.3 of the method notes and q/k rows permuted from
// llama2.c's adjacent-pair RoPE to HF's rotate-half convention.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include <ATen/core/Tensor.h>

#include "nn/llama.hpp"

namespace mlsys::nn {

// The header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative: an
// untied classifier follows the RoPE tables), seq_len.
struct Llama2cHeader {
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0, seq_len = 0;
  [[nodiscard]] bool shared_classifier() const { return vocab_size > 0; }
  // The exact file size this header implies.
  [[nodiscard]] int64_t expected_bytes() const;
};

struct Llama2cModel {
  Llama2cHeader header;
  LlamaConfig cfg;                            // rms_norm_eps 1e-5, rope_theta 1e4, tied when shared
  std::map<std::string, at::Tensor> tensors;  // HF names, q/k rows permuted to rotate-half
};

// Reads `bin`. core::InputError naming the file, in one line, for a header that is not a
// legacy llama2.c one (non-positive sizes, heads that do not divide, the "ak42" magic of
// the newer export versions) or a size that differs from what the header implies.
[[nodiscard]] Llama2cModel read_llama2c(const std::filesystem::path& bin);

// llama2.c's wq/wk [n_heads·hd, dim] with rows (2i, 2i+1) a RoPE pair -> HF's order (i, i+hd/2),
// as transformers' convert_llama_weights_to_hf: view(n_heads, hd/2, 2, dim).transpose(1,2).
[[nodiscard]] at::Tensor permute_rope_rows(const at::Tensor& w, int64_t n_heads);

struct Llama2cSummary {
  Llama2cHeader header;
  LlamaConfig cfg;
  int64_t parameters = 0;  // tensors written (tied embeddings counted once)
  std::filesystem::path out_dir;
};

// read_llama2c, then DIR written whole (config.json + model.safetensors) in place of an old one.
Llama2cSummary convert_llama2c(const std::filesystem::path& bin, const std::filesystem::path& out_dir);

}  // namespace mlsys::nn
