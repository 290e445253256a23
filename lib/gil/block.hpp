// The two-layer computation graph of a set of seed nodes ("message-flow graph", DGL's
// blocks): the last layer aggregates into the seeds from (a sample of) their neighbours, the
// first layer into the seeds and those neighbours from (a sample of) theirs. Mini-batch
// training samples it with a fan-out per layer (GraphSAGE's neighbour sampling; CGLB's
// [10, 25]: 10 neighbours per node in the first layer, 25 per seed in the last); SSRM takes
// every neighbour (fan-out -1), which gives exactly the full-graph representations of the
// seeds on a graph of their 2-hop neighbourhood only.
//
// Edge weights make the sampled aggregation an unbiased estimate of the full one and equal
// to it when nothing is left out: GCN's neighbour edge u -> v weighs
// (deg(v) / |S(v)|) / sqrt((deg(u) + 1) (deg(v) + 1)) and its self loop 1 / (deg(v) + 1),
// degrees taken in the whole graph; SAGE's mean divides by |S(v)|; GAT's softmax runs over
// S(v) and v. Sampling is without replacement (DGL's default). No LibTorch.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "graph/attributed_graph.hpp"

namespace mlsys::gil {

struct BlockLayer {
  // Neighbour edges u -> v (rows), grouped by v, then one self loop v -> v per row.
  std::vector<int64_t> src, dst;
  int64_t neighbour_edges = 0;
  std::vector<float> gcn_weight;  // per edge (self loops included)
  std::vector<float> inv_sampled; // per row: 1 / |S(v)| (0 without sampled neighbours)
};

struct Block {
  int64_t rows = 0;
  int64_t feature_dim = 0;
  std::vector<int64_t> nodes;      // per row: its node id in the graph the block was built on
  std::vector<float> x;            // rows x feature_dim
  std::vector<int64_t> seed_rows;  // per seed, in the order given
  BlockLayer first, last;
};

struct Fanout {
  int64_t first = -1;  // neighbours per node in the first layer; -1 = all
  int64_t last = -1;   // neighbours per seed in the last layer; -1 = all
};

// The block of `seeds` (node ids of `g`, unique; RuntimeFailure otherwise). Rows are the
// involved nodes in ascending id order, so the same neighbourhood gives the same block in
// any graph that keeps the ids' order (the task graphs do). `rng` is used only where a
// fan-out is smaller than a degree.
Block build_block(const graph::AttributedGraph& g, const std::vector<int64_t>& seeds, Fanout fanout, std::mt19937_64& rng);

// Blocks side by side as one (no edge between them), rows renumbered; the seed rows of the
// parts follow one another, and part_offsets[i] is where part i's seeds start in seed_rows.
struct BlockUnion {
  Block block;
  std::vector<int64_t> part_offsets;  // parts + 1 entries
};
BlockUnion block_union(const std::vector<const Block*>& parts);

}  // namespace mlsys::gil
