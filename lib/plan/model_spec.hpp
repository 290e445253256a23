// The transformer being trained: decoder-only (GPT-like) or encoder-decoder (T5-like),
// with the widths that set its compute, activation memory and model state.
#pragma once

#include <cstdint>
#include <string>

namespace mlsys::plan {

enum class ModelKind { gpt, t5 };

struct ModelSpec {
  ModelKind kind = ModelKind::gpt;
  int encoder_layers = 16;  // GPT: the decoder-only layers; T5: encoder layers
  int decoder_layers = 0;   // T5 only
  int64_t hidden = 4096;
  int64_t heads = 32;
  int64_t kv_channels = 128;  // per head; attention width = heads * kv_channels
  int64_t ffn = 16384;
  int64_t vocab = 32128;
  int bytes_per_value = 2;

  [[nodiscard]] int total_layers() const { return encoder_layers + decoder_layers; }
  [[nodiscard]] int64_t attention_width() const { return heads * kv_channels; }
  // Parameters of one encoder (self-attention + MLP) and one decoder layer (+ cross-attention).
  [[nodiscard]] double encoder_layer_params() const;
  [[nodiscard]] double decoder_layer_params() const;
};

ModelKind parse_model_kind(const std::string& s);  // "gpt" | "t5"
std::string to_string(ModelKind k);

}  // namespace mlsys::plan
