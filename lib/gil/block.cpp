// Two-layer computation graphs of seed nodes, sampled per layer without replacement.
#include "gil/block.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "core/error.hpp"

namespace mlsys::gil {
namespace {

// The sampled neighbours of v (all of them when k < 0 or k >= deg), ascending.
void sample_neighbours(const graph::AttributedGraph& g, int64_t v, int64_t k, std::mt19937_64& rng,
                       std::vector<int64_t>& out) {
  out.clear();
  const auto b = static_cast<size_t>(g.indptr[static_cast<size_t>(v)]);
  const auto e = static_cast<size_t>(g.indptr[static_cast<size_t>(v) + 1]);
  const auto deg = static_cast<int64_t>(e - b);
  if (k < 0 || k >= deg) {
    out.assign(g.indices.begin() + static_cast<std::ptrdiff_t>(b), g.indices.begin() + static_cast<std::ptrdiff_t>(e));
    return;
  }
  // A partial Fisher-Yates shuffle of the positions: the first k are a uniform k-subset.
  std::vector<int64_t> pos(static_cast<size_t>(deg));
  std::iota(pos.begin(), pos.end(), 0);
  for (int64_t i = 0; i < k; ++i) {
    std::uniform_int_distribution<int64_t> pick(i, deg - 1);
    std::swap(pos[static_cast<size_t>(i)], pos[static_cast<size_t>(pick(rng))]);
  }
  pos.resize(static_cast<size_t>(k));
  std::sort(pos.begin(), pos.end());
  for (int64_t p : pos) out.push_back(g.indices[b + static_cast<size_t>(p)]);
}

void append_unique_sorted(std::vector<int64_t>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

int64_t row_of(const std::vector<int64_t>& nodes, int64_t id) {
  return std::lower_bound(nodes.begin(), nodes.end(), id) - nodes.begin();
}

// One layer: for each target (ascending rows) its sampled neighbours, then a self loop per row.
void fill_layer(const graph::AttributedGraph& g, const std::vector<int64_t>& nodes, const std::vector<int64_t>& targets,
                const std::vector<std::vector<int64_t>>& sampled, BlockLayer& layer) {
  const auto rows = static_cast<int64_t>(nodes.size());
  layer.inv_sampled.assign(static_cast<size_t>(rows), 0.f);
  for (size_t i = 0; i < targets.size(); ++i) {
    const int64_t v = targets[i];
    const int64_t rv = row_of(nodes, v);
    const auto& s = sampled[i];
    const double dv = static_cast<double>(g.degree(v) + 1);
    const double ratio = s.empty() ? 1.0 : static_cast<double>(g.degree(v)) / static_cast<double>(s.size());
    for (int64_t u : s) {
      layer.src.push_back(row_of(nodes, u));
      layer.dst.push_back(rv);
      const double du = static_cast<double>(g.degree(u) + 1);
      const double w = 1.0 / std::sqrt(du * dv);
      layer.gcn_weight.push_back(static_cast<float>(ratio == 1.0 ? w : ratio * w));
    }
    if (!s.empty()) layer.inv_sampled[static_cast<size_t>(rv)] = static_cast<float>(1.0 / static_cast<double>(s.size()));
  }
  layer.neighbour_edges = static_cast<int64_t>(layer.src.size());
  for (int64_t r = 0; r < rows; ++r) {
    layer.src.push_back(r);
    layer.dst.push_back(r);
    const double d = static_cast<double>(g.degree(nodes[static_cast<size_t>(r)]) + 1);
    layer.gcn_weight.push_back(static_cast<float>(1.0 / std::sqrt(d * d)));
  }
}

}  // namespace

Block build_block(const graph::AttributedGraph& g, const std::vector<int64_t>& seeds, Fanout fanout, std::mt19937_64& rng) {
  std::vector<int64_t> sorted_seeds = seeds;
  append_unique_sorted(sorted_seeds);
  if (sorted_seeds.size() != seeds.size()) throw core::RuntimeFailure("build_block: repeated seed node");
  if (!sorted_seeds.empty() && (sorted_seeds.front() < 0 || sorted_seeds.back() >= g.num_nodes)) {
    throw core::RuntimeFailure("build_block: seed node outside the graph's " + std::to_string(g.num_nodes) + " nodes");
  }
  // Last layer: the seeds' sampled neighbours (drawn in the seeds' ascending order).
  std::vector<std::vector<int64_t>> last(sorted_seeds.size());
  std::vector<int64_t> first_targets = sorted_seeds;
  for (size_t i = 0; i < sorted_seeds.size(); ++i) {
    sample_neighbours(g, sorted_seeds[i], fanout.last, rng, last[i]);
    first_targets.insert(first_targets.end(), last[i].begin(), last[i].end());
  }
  append_unique_sorted(first_targets);
  // First layer: the sampled neighbours of the seeds and of the last layer's sources.
  std::vector<std::vector<int64_t>> first(first_targets.size());
  std::vector<int64_t> nodes = first_targets;
  for (size_t i = 0; i < first_targets.size(); ++i) {
    sample_neighbours(g, first_targets[i], fanout.first, rng, first[i]);
    nodes.insert(nodes.end(), first[i].begin(), first[i].end());
  }
  append_unique_sorted(nodes);

  Block b;
  b.rows = static_cast<int64_t>(nodes.size());
  b.feature_dim = g.feature_dim;
  b.x.resize(nodes.size() * static_cast<size_t>(g.feature_dim));
  for (size_t r = 0; r < nodes.size(); ++r) {
    const auto d = static_cast<size_t>(g.feature_dim);
    std::copy_n(g.features.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(nodes[r]) * d), d,
                b.x.begin() + static_cast<std::ptrdiff_t>(r * d));
  }
  fill_layer(g, nodes, first_targets, first, b.first);
  fill_layer(g, nodes, sorted_seeds, last, b.last);
  for (int64_t v : seeds) b.seed_rows.push_back(row_of(nodes, v));
  b.nodes = std::move(nodes);
  return b;
}

BlockUnion block_union(const std::vector<const Block*>& parts) {
  BlockUnion u;
  Block& b = u.block;
  u.part_offsets.push_back(0);
  for (const Block* p : parts) {
    if (b.rows == 0 && b.x.empty()) b.feature_dim = p->feature_dim;
    if (p->feature_dim != b.feature_dim) throw core::RuntimeFailure("block_union: parts with different feature widths");
    const int64_t base = b.rows;
    auto shift = [base](const std::vector<int64_t>& v, std::vector<int64_t>& out) {
      for (int64_t x : v) out.push_back(base + x);
    };
    b.nodes.insert(b.nodes.end(), p->nodes.begin(), p->nodes.end());
    b.x.insert(b.x.end(), p->x.begin(), p->x.end());
    shift(p->seed_rows, b.seed_rows);
    b.rows += p->rows;
    u.part_offsets.push_back(static_cast<int64_t>(b.seed_rows.size()));
  }
  // Each layer: every part's neighbour edges first, then every part's self loops, so that
  // the union keeps the "neighbour edges, then one self loop per row" layout.
  auto join = [&](BlockLayer Block::*which) {
    BlockLayer& out = b.*which;
    int64_t base = 0;
    for (const Block* p : parts) {
      const BlockLayer& l = p->*which;
      for (int64_t e = 0; e < l.neighbour_edges; ++e) {
        out.src.push_back(base + l.src[static_cast<size_t>(e)]);
        out.dst.push_back(base + l.dst[static_cast<size_t>(e)]);
        out.gcn_weight.push_back(l.gcn_weight[static_cast<size_t>(e)]);
      }
      out.inv_sampled.insert(out.inv_sampled.end(), l.inv_sampled.begin(), l.inv_sampled.end());
      base += p->rows;
    }
    out.neighbour_edges = static_cast<int64_t>(out.src.size());
    base = 0;
    for (const Block* p : parts) {
      const BlockLayer& l = p->*which;
      for (auto e = static_cast<size_t>(l.neighbour_edges); e < l.src.size(); ++e) {
        out.src.push_back(base + l.src[e]);
        out.dst.push_back(base + l.dst[e]);
        out.gcn_weight.push_back(l.gcn_weight[e]);
      }
      base += p->rows;
    }
  };
  join(&Block::first);
  join(&Block::last);
  return u;
}

}  // namespace mlsys::gil
