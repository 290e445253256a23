// A static attributed graph (undirected CSR, node features, node labels), its node-induced
// subgraphs and k-hop neighbourhoods, and the folder format it is read from and written to
// (the content of CGLB/Planetoid data sets as plain files). No LibTorch.
//
// Folder format (every file required):
//   labels.csv    header "label", then one line per node: its class, an integer in
//                 [0, 1048576); node i is the i-th data line. The node count is the line count.
//   edges.csv     header "src,dst", then one undirected edge per line (node ids < node count).
//                 Self loops are dropped and repeated edges merged; either direction may be given.
//   features.npy  float32/float64 (num_nodes x d), or features.csv / features.bin
//                 (graph::load_matrix): one row per node, every value finite.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace mlsys::graph {

inline constexpr int64_t kMaxClasses = int64_t{1} << 20;

struct AttributedGraph {
  int64_t num_nodes = 0;
  int64_t num_classes = 0;         // max label + 1
  int64_t feature_dim = 0;
  std::vector<int64_t> indptr;     // num_nodes + 1
  std::vector<int64_t> indices;    // neighbours of v: indices[indptr[v] .. indptr[v+1]), ascending
  std::vector<float> features;     // num_nodes x feature_dim, row-major
  std::vector<int64_t> labels;     // per node, in [0, num_classes)
  std::string source;              // where it came from, for messages

  [[nodiscard]] int64_t degree(int64_t v) const { return indptr[static_cast<size_t>(v) + 1] - indptr[static_cast<size_t>(v)]; }
  // Undirected edges (each stored in both directions).
  [[nodiscard]] int64_t num_edges() const { return static_cast<int64_t>(indices.size()) / 2; }
};

// The CSR of an undirected graph on `num_nodes` nodes from an edge list in either direction:
// self loops dropped, repeats merged, neighbour lists ascending. Ids must be in range
// (core::RuntimeFailure otherwise: callers check input ids with file and line first).
AttributedGraph build_graph(int64_t num_nodes, const std::vector<std::pair<int64_t, int64_t>>& edges,
                            std::vector<float> features, int64_t feature_dim, std::vector<int64_t> labels);

// A node-induced subgraph: `nodes` (ascending) are the parent's ids of its nodes, so local
// node i is parent node nodes[i] and local ids keep the parent's order.
struct Subgraph {
  AttributedGraph graph;
  std::vector<int64_t> nodes;
};

// The subgraph induced by `nodes` (ascending, unique, in range; RuntimeFailure otherwise):
// every edge of `g` between two of them, and their features and labels.
Subgraph induced_subgraph(const AttributedGraph& g, const std::vector<int64_t>& nodes);

// The graphs side by side as one (no edge between them): the nodes of parts[0], then of
// parts[1], ..., each renumbered by the node count before it. Feature dimensions must agree
// (RuntimeFailure otherwise); num_classes is the largest.
AttributedGraph disjoint_union(const std::vector<const AttributedGraph*>& parts);

// The nodes within `hops` edges of any of `seeds` (the seeds included), ascending.
std::vector<int64_t> k_hop_nodes(const AttributedGraph& g, const std::vector<int64_t>& seeds, int hops);

// Reads the folder format above. core::InputError naming the file (and line) on a missing
// file, a bad header, a non-integer or out-of-range id or label, a feature row count that
// is not the node count, or a non-finite feature.
AttributedGraph load_attributed_graph(const std::filesystem::path& dir);

// Writes the folder format (labels.csv, edges.csv with src < dst, features.npy), each file
// atomically.
void write_attributed_graph(const std::filesystem::path& dir, const AttributedGraph& g);

}  // namespace mlsys::graph
