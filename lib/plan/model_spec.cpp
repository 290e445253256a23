// Parameter counts of the model spec.
#include "plan/model_spec.hpp"

#include "core/error.hpp"

namespace mlsys::plan {

double ModelSpec::encoder_layer_params() const {
  const double h = static_cast<double>(hidden), d = static_cast<double>(attention_width()),
               f = static_cast<double>(ffn);
  // QKV + output projection, two MLP matrices, their biases and two layer norms.
  return h * 3 * d + 3 * d + d * h + h + 2 * h * f + f + h + 4 * h;
}

double ModelSpec::decoder_layer_params() const {
  const double h = static_cast<double>(hidden), d = static_cast<double>(attention_width());
  // A decoder layer of an encoder-decoder model adds cross-attention (Q, KV, output) + a norm.
  return encoder_layer_params() + h * d + d + h * 2 * d + 2 * d + d * h + h + 2 * h;
}

ModelKind parse_model_kind(const std::string& s) {
  if (s == "gpt") return ModelKind::gpt;
  if (s == "t5") return ModelKind::t5;
  throw core::ConfigError("model kind: expected gpt or t5, found '" + s + "'");
}

std::string to_string(ModelKind k) { return k == ModelKind::gpt ? "gpt" : "t5"; }

}  // namespace mlsys::plan
