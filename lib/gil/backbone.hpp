// Full-batch GNN backbones over ATen (two layers, as CGLB's defaults): GCN (Kipf and
// Welling: D^-1/2 (A+I) D^-1/2 H W), GraphSAGE with the mean aggregator (W_self h_v +
// W_neigh mean_{u in N(v)} h_u) and GAT (Velickovic et al.: per-head attention over the
// neighbours and the node itself, heads concatenated, ELU). Each forward returns the
// penultimate representation (the first layer's output after its activation: CGLB's
// second_last_h, the H of SSRM) and the logits over every class. LibTorch inside lib/gil only.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "gil/block.hpp"
#include "gil/incremental.hpp"
#include "graph/attributed_graph.hpp"

namespace mlsys::gil {

// One layer's edges as index tensors: directed u -> v for every (sampled) neighbour u of v,
// then v -> v for every node (self loops: GCN's A + I, GAT's own attention term; SAGE skips them).
struct EdgeTensors {
  at::Tensor src, dst;          // int64, neighbour edges then self loops
  int64_t neighbour_edges = 0;  // the first neighbour_edges entries of src/dst are not self loops
  at::Tensor gcn_norm;          // per edge: 1 / sqrt(deg(u) deg(v)), degrees counting the self loop
                                // (a sampled block scales it by deg(v) / |S(v)|, gil/block.hpp)
  at::Tensor inv_degree;        // per node: 1 / |N(v)| (0 for an isolated node), for the SAGE mean
};

// A graph as the tensors a forward pass needs: node features and the edges of each layer.
// A whole graph uses the same edges in both layers (`last` empty); a block (gil/block.hpp)
// has the first layer's and the last layer's own, and only its seeds' outputs mean anything.
struct GraphTensors {
  int64_t nodes = 0;
  at::Tensor x;  // nodes x d, float32
  EdgeTensors first;
  EdgeTensors last;  // last.src undefined: the first layer's edges
  [[nodiscard]] const EdgeTensors& layer(int i) const { return i == 1 && last.src.defined() ? last : first; }
};
GraphTensors to_tensors(const graph::AttributedGraph& g);
GraphTensors to_tensors(const Block& b);

struct ForwardOut {
  at::Tensor hidden;  // nodes x hidden (penultimate)
  at::Tensor logits;  // nodes x classes
};

class Backbone {
 public:
  // ConfigError for an unknown name or a GAT width that is not a multiple of its heads.
  Backbone(const BackboneConfig& c, int64_t in_dim, int64_t classes, uint64_t seed);
  [[nodiscard]] ForwardOut forward(const GraphTensors& g, bool training, at::Generator* dropout_gen = nullptr) const;
  // The parameters in a fixed order, with their artifact names ("layer1.weight").
  [[nodiscard]] const std::vector<std::pair<std::string, at::Tensor>>& named_parameters() const { return params_; }
  [[nodiscard]] std::vector<at::Tensor> parameters() const;
  // A detached copy of the values (for snapshots) and their restoration.
  [[nodiscard]] std::vector<at::Tensor> snapshot() const;
  void restore(const std::vector<at::Tensor>& values);
  [[nodiscard]] const BackboneConfig& config() const { return c_; }

 private:
  at::Tensor& add(const std::string& name, at::Tensor t);
  [[nodiscard]] const at::Tensor& p(size_t i) const { return params_[i].second; }
  BackboneConfig c_;
  int64_t in_dim_ = 0, classes_ = 0;
  std::vector<std::pair<std::string, at::Tensor>> params_;
};

}  // namespace mlsys::gil
