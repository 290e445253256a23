// Temporal neighbour sampling over any TemporalAdjacency (the T-CSR or the block store),
// with the rules of graph/sampler.hpp (TGL's): a root (v, t) sees only v's edges with
// ts < t, strictly. recent-k: the last min(k, n) of the n candidates, oldest first in the
// k slots; uniform-k: k draws with replacement among the n candidates (whenever n >= 1,
// also when n < k; nothing when n == 0), sorted by position, i.e. (time, insertion) order.
// The uniform draws are uniform_int_distribution<int64_t>(0, n - 1) from the caller's
// mt19937_64, k per root with candidates, in root order: the same draws as sampler.hpp's
// sample_uniform, so both give identical samples from the same generator state.
//
// Multi-layer and multi-snapshot (DySAT-style) sampling (notes gnnflow.md §2): snapshot i of
// S with window W covers [t - (S - i) W, t - (S - i - 1) W) for a root at t (S = 1, W = 0:
// everything before t); layer l + 1's roots are all of layer l's source nodes (its roots,
// then its sampled neighbours, no dedup) at their edge's time (or the root's time with
// prop_time). Output: one SampledBlock per (layer, snapshot), invalid slots compacted away.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "graph/block_store.hpp"
#include "graph/sampler.hpp"
#include "graph/temporal_adjacency.hpp"

namespace mlsys::graph {

// Flat samplers into a NeighborBlock (n roots x k slots, as sampler.hpp's), through the
// interface; `inclusive` (ts <= t visible) exists only to show leakage in tests.
void sample_recent(const TemporalAdjacency& g, const std::vector<int64_t>& roots, const std::vector<double>& times,
                   int64_t k, NeighborBlock& out, bool inclusive = false);
void sample_uniform(const TemporalAdjacency& g, const std::vector<int64_t>& roots, const std::vector<double>& times,
                    int64_t k, std::mt19937_64& rng, NeighborBlock& out);

// The same over the store directly: with `prefetch`, roots are processed in groups of 8,
// prefetching each group's chain, tail header and tail times before any is searched, so
// the dependent misses of one root overlap with the others' (notes §6: 400-660 ns per
// dependent miss); without, one root after the other (the A/B of bench/gnnflow).
void sample_recent(const TimeIndexedBlockStore& g, const std::vector<int64_t>& roots, const std::vector<double>& times,
                   int64_t k, NeighborBlock& out, bool inclusive = false, bool prefetch = true);
void sample_uniform(const TimeIndexedBlockStore& g, const std::vector<int64_t>& roots, const std::vector<double>& times,
                    int64_t k, std::mt19937_64& rng, NeighborBlock& out, bool prefetch = true);

enum class SamplingStrategy { recent, uniform };

struct TemporalSamplingConfig {
  std::vector<int64_t> fanouts = {10};  // per layer, root side first
  SamplingStrategy strategy = SamplingStrategy::recent;
  int64_t snapshots = 1;                 // S
  double window = 0;                     // W; 0 = no lower bound (then S must be 1)
  bool prop_time = false;                // sampled nodes take their root's time (DySAT)
};

// One layer of one snapshot, a DGL-style message-flow graph: dst nodes = roots; src nodes
// = roots followed by nbr; per sampled edge its root's index (row), the neighbour, the
// edge id, its time and dt = root time - edge time (> 0).
struct SampledBlock {
  int64_t layer = 0, snapshot = 0;
  std::vector<int64_t> roots;
  std::vector<double> root_ts;
  std::vector<int64_t> row, nbr, eid;
  std::vector<double> ts, dt;
  [[nodiscard]] size_t edges() const { return nbr.size(); }
};

// Checks the config (core::ConfigError naming the field).
void validate(const TemporalSamplingConfig& c);

// Blocks in order layer-major: index = layer * snapshots + snapshot. Sampling runs snapshot
// by snapshot, layer by layer within one, taking uniform draws from `rng` in that order;
// recent ignores it.
std::vector<SampledBlock> sample_layers(const TemporalAdjacency& g, const TemporalSamplingConfig& c,
                                        const std::vector<int64_t>& roots, const std::vector<double>& times,
                                        std::mt19937_64& rng);

}  // namespace mlsys::graph
