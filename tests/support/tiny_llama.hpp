// The tiny LLaMA shape the nn and lora test suites build random models of: 2 layers,
// hidden 16, 4 query heads over 2 key/value heads (GQA) of width 4, SwiGLU 24, 32
// positions; the vocabulary size, tied embeddings and the RMSNorm epsilon (LlamaConfig's
// default unless given) are the caller's.
#pragma once

#include <cstdint>

#include "nn/llama.hpp"

namespace mlsys::test {

inline nn::LlamaConfig tiny_llama_config(int64_t vocab_size, bool tied) {
  nn::LlamaConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 4;
  c.max_position_embeddings = 32;
  c.tie_word_embeddings = tied;
  return c;
}

}  // namespace mlsys::test
