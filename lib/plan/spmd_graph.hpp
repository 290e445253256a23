// HAP's input model (arXiv 2401.05965 §3): a single-device training graph of tensors
// (inputs, labels, parameters, activations) and ops with shapes, read from JSON or built by
// the generators (MLP, BERT/GPT blocks, ViT, VGG, top-2 MoE transformer). Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.hpp"

namespace mlsys::plan {

enum class SpmdTensorKind { input, label, param, activation };
enum class SpmdOpKind {
  linear, matmul, attention, layer_norm, gelu, relu, add, embedding, conv2d, max_pool2d, flatten, mean,
  cross_entropy, moe
};

struct SpmdTensor {
  std::string name;
  SpmdTensorKind kind = SpmdTensorKind::activation;
  std::vector<int64_t> shape;
  int64_t elem_bytes = 4;         // bytes per element (float32 4, bfloat16 2, int64 8 ...)
  std::vector<int64_t> granule;   // per dim: a shard length is a multiple of it (attention heads)
  int data_dims = 1;              // leading dims that index samples/tokens (batch, sequence)
  int producer = -1;              // op index (activations)
  std::vector<int> consumers;     // op indices
  [[nodiscard]] int64_t numel() const;
  [[nodiscard]] int64_t bytes() const { return numel() * elem_bytes; }
  [[nodiscard]] int rank() const { return static_cast<int>(shape.size()); }
};

struct SpmdOp {
  std::string name;
  SpmdOpKind kind = SpmdOpKind::linear;
  std::vector<int> inputs;  // tensor indices
  int output = -1;
  int64_t heads = 1;      // attention
  bool causal = false;    // attention
  int64_t kernel = 3, stride = 1, padding = 1;  // conv2d (max_pool2d: kernel = stride = 2)
  int64_t dim = 1;        // mean: the reduced dim
  int64_t top_k = 2;      // moe
  // Forward FLOPs of the whole op on one device (HAP counts backward as 2x forward).
  double flops = 0;
};

struct SpmdGraph {
  std::string name;
  std::vector<SpmdTensor> tensors;
  std::vector<SpmdOp> ops;  // topological order
  int loss = -1;            // the scalar produced by the last cross_entropy
  [[nodiscard]] int find(const std::string& tensor) const;  // -1 when absent
  [[nodiscard]] int64_t param_bytes() const;
  [[nodiscard]] double total_flops() const;  // forward
};

std::string to_string(SpmdOpKind k);
std::string to_string(SpmdTensorKind k);

// Reads a model graph: {"name", "dtype"?, "inputs": [{name, shape, kind: input|label,
// dtype?, granule?, data_dims?}], "params": [{name, shape, dtype?, granule?}], "ops": [{name,
// kind, inputs: [...], output, heads?, causal?, kernel?, stride?, padding?, dim?, top_k?}]}.
// Output shapes are inferred; every op's input shapes are checked. core::InputError naming
// `source`, the field (ops[3].inputs[1]), what was expected and what was found.
SpmdGraph graph_from_json(const core::Json& j, const std::string& source);
SpmdGraph read_graph_file(const std::string& path);
core::Json graph_to_json(const SpmdGraph& g);

// Built-in generators (model.generator in the config). Sizes are the caller's.
struct SpmdModelSize {
  std::string generator = "bert";  // mlp | bert | gpt | vit | vgg19 | bert_moe
  int64_t batch = 2048;     // HAP's configs: 32 samples per device (64 devices)
  int64_t seq = 128;
  int64_t hidden = 768;
  int64_t ffn = 3072;
  int64_t heads = 12;
  int64_t layers = 12;
  int64_t vocab = 30522;
  int64_t classes = 1000;     // vit, vgg19, mlp
  int64_t image = 224;        // vgg19: side; vit: side (patch 16)
  int64_t patch = 16;
  int64_t experts = 8;        // bert_moe: every other FFN is a top-2 MoE of this many experts
  int64_t channels_scale = 1; // vgg19: channel widths divided by this (tiny test models)
  std::string dtype = "float32";
};
SpmdGraph generate_graph(const SpmdModelSize& s);

// Bytes of one element of a dtype name (float32, float64, float16, bfloat16, int64, int32);
// 0 for an unknown name.
int64_t dtype_bytes(const std::string& dtype);

}  // namespace mlsys::plan
