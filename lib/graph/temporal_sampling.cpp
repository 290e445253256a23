// Temporal samplers over a TemporalAdjacency and, with prefetching, over the block store.
#include "graph/temporal_sampling.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.hpp"

namespace mlsys::graph {
namespace {

constexpr double kNoLowerBound = -std::numeric_limits<double>::infinity();

template <class G>
void recent_one(const G& g, int64_t v, double t, bool inclusive, int64_t k, NeighborBlock& out, size_t i) {
  const int64_t deg = g.count_before(v, t, inclusive);
  if (deg == 0) return;
  const int64_t take = std::min(k, deg);
  const size_t o = i * static_cast<size_t>(k);
  g.read(v, deg - take, take, out.nbr.data() + o, out.eid.data() + o, out.t.data() + o);
}

template <class G>
void uniform_one(const G& g, int64_t v, double t, int64_t k, std::mt19937_64& rng, std::vector<int64_t>& pick,
                 NeighborBlock& out, size_t i) {
  const int64_t deg = g.count_before(v, t);
  if (deg == 0) return;
  std::uniform_int_distribution<int64_t> d(0, deg - 1);
  for (auto& p : pick) p = d(rng);
  std::sort(pick.begin(), pick.end());
  for (int64_t j = 0; j < k; ++j) {
    const size_t o = i * static_cast<size_t>(k) + static_cast<size_t>(j);
    g.read(v, pick[static_cast<size_t>(j)], 1, &out.nbr[o], &out.eid[o], &out.t[o]);
  }
}

// Touches the cache lines a query of v will need first: its chain entry, then (next call)
// its tail block header and the last times of the tail block.
void prefetch_chain(const TimeIndexedBlockStore& g, int64_t v) {
  if (v >= 0 && v < g.num_nodes()) __builtin_prefetch(&g.chains()[static_cast<size_t>(v)]);
}
void prefetch_tail(const TimeIndexedBlockStore& g, int64_t v) {
  if (v < 0 || v >= g.num_nodes()) return;
  const auto& bl = g.chains()[static_cast<size_t>(v)].blocks;
  if (!bl.empty()) __builtin_prefetch(&bl.back());
}
void prefetch_times(const TimeIndexedBlockStore& g, int64_t v) {
  if (v < 0 || v >= g.num_nodes()) return;
  const auto& bl = g.chains()[static_cast<size_t>(v)].blocks;
  if (!bl.empty()) {
    const EdgeBlock& b = bl.back();
    __builtin_prefetch(b.ts() + (b.size - 1));
    __builtin_prefetch(b.dst() + (b.size - 1));
  }
}

template <class Body>
void interleaved(const TimeIndexedBlockStore& g, const std::vector<int64_t>& roots, bool prefetch, Body&& body) {
  if (!prefetch) {
    for (size_t i = 0; i < roots.size(); ++i) body(i);
    return;
  }
  constexpr size_t kGroup = 8;
  for (size_t i0 = 0; i0 < roots.size(); i0 += kGroup) {
    const size_t i1 = std::min(roots.size(), i0 + kGroup);
    for (size_t i = i0; i < i1; ++i) prefetch_chain(g, roots[i]);
    for (size_t i = i0; i < i1; ++i) prefetch_tail(g, roots[i]);
    for (size_t i = i0; i < i1; ++i) prefetch_times(g, roots[i]);
    for (size_t i = i0; i < i1; ++i) body(i);
  }
}

}  // namespace

void sample_recent(const TemporalAdjacency& g, const std::vector<int64_t>& roots, const std::vector<double>& times,
                   int64_t k, NeighborBlock& out, bool inclusive) {
  out.resize(roots.size(), k);
  for (size_t i = 0; i < roots.size(); ++i) recent_one(g, roots[i], times[i], inclusive, k, out, i);
}

void sample_uniform(const TemporalAdjacency& g, const std::vector<int64_t>& roots, const std::vector<double>& times,
                    int64_t k, std::mt19937_64& rng, NeighborBlock& out) {
  out.resize(roots.size(), k);
  std::vector<int64_t> pick(static_cast<size_t>(k));
  for (size_t i = 0; i < roots.size(); ++i) uniform_one(g, roots[i], times[i], k, rng, pick, out, i);
}

void sample_recent(const TimeIndexedBlockStore& g, const std::vector<int64_t>& roots, const std::vector<double>& times,
                   int64_t k, NeighborBlock& out, bool inclusive, bool prefetch) {
  out.resize(roots.size(), k);
  interleaved(g, roots, prefetch, [&](size_t i) {
    const size_t o = i * static_cast<size_t>(k);
    g.recent(roots[i], times[i], k, inclusive, out.nbr.data() + o, out.eid.data() + o, out.t.data() + o);
  });
}

void sample_uniform(const TimeIndexedBlockStore& g, const std::vector<int64_t>& roots, const std::vector<double>& times,
                    int64_t k, std::mt19937_64& rng, NeighborBlock& out, bool prefetch) {
  out.resize(roots.size(), k);
  std::vector<int64_t> pick(static_cast<size_t>(k));
  // Draws stay in root order, so the RNG stream matches the T-CSR sampler's.
  interleaved(g, roots, prefetch, [&](size_t i) {
    const int64_t deg = g.count_before(roots[i], times[i]);
    if (deg == 0) return;
    std::uniform_int_distribution<int64_t> d(0, deg - 1);
    for (auto& p : pick) p = d(rng);
    std::sort(pick.begin(), pick.end());
    const size_t o = i * static_cast<size_t>(k);
    g.gather(roots[i], pick.data(), k, out.nbr.data() + o, out.eid.data() + o, out.t.data() + o);
  });
}

void validate(const TemporalSamplingConfig& c) {
  if (c.fanouts.empty()) throw core::ConfigError("sampling.fanouts: expected at least one layer, found none");
  for (int64_t f : c.fanouts) {
    if (f < 1 || f > 4096) throw core::ConfigError("sampling.fanouts: expected values in [1, 4096], found " + std::to_string(f));
  }
  if (c.snapshots < 1 || c.snapshots > 64) {
    throw core::ConfigError("sampling.snapshots: expected a value in [1, 64], found " + std::to_string(c.snapshots));
  }
  if (!(c.window >= 0) || !std::isfinite(c.window)) {
    throw core::ConfigError("sampling.window: expected a finite value >= 0, found " + std::to_string(c.window));
  }
  if (c.snapshots > 1 && c.window == 0) {
    throw core::ConfigError("sampling.window: expected a value > 0 with snapshots " + std::to_string(c.snapshots) + ", found 0");
  }
}

std::vector<SampledBlock> sample_layers(const TemporalAdjacency& g, const TemporalSamplingConfig& c,
                                        const std::vector<int64_t>& roots, const std::vector<double>& times,
                                        std::mt19937_64& rng) {
  validate(c);
  const auto L = c.fanouts.size();
  const auto S = static_cast<size_t>(c.snapshots);
  std::vector<SampledBlock> out(L * S);
  std::vector<int64_t> pick;
  for (size_t s = 0; s < S; ++s) {
    std::vector<int64_t> r = roots;
    std::vector<double> rt = times;
    for (size_t l = 0; l < L; ++l) {
      SampledBlock& b = out[l * S + s];
      b.layer = static_cast<int64_t>(l);
      b.snapshot = static_cast<int64_t>(s);
      b.roots = r;
      b.root_ts = rt;
      const int64_t k = c.fanouts[l];
      pick.resize(static_cast<size_t>(k));
      for (size_t i = 0; i < r.size(); ++i) {
        const int64_t v = r[i];
        const double t = rt[i];
        const double back = static_cast<double>(S - s);
        const double lo = c.window > 0 ? t - back * c.window : kNoLowerBound;
        const double hi = c.window > 0 ? t - (back - 1) * c.window : t;
        const int64_t a = lo == kNoLowerBound ? 0 : g.count_before(v, lo);
        const int64_t e = g.count_before(v, hi);
        const int64_t n = e - a;
        if (n <= 0) continue;
        // Candidates are positions [a, e): recent takes the last min(k, n), uniform k sorted
        // draws; either way one interface call per root.
        size_t m = 0;
        if (c.strategy == SamplingStrategy::recent) {
          m = static_cast<size_t>(std::min(k, n));
          for (size_t j = 0; j < m; ++j) pick[j] = e - static_cast<int64_t>(m) + static_cast<int64_t>(j);
        } else {
          m = static_cast<size_t>(k);
          std::uniform_int_distribution<int64_t> d(0, n - 1);
          for (auto& p : pick) p = a + d(rng);
          std::sort(pick.begin(), pick.end());
        }
        const size_t o = b.nbr.size();
        b.row.resize(o + m, static_cast<int64_t>(i));
        b.nbr.resize(o + m), b.eid.resize(o + m), b.ts.resize(o + m), b.dt.resize(o + m);
        if (c.strategy == SamplingStrategy::recent) {
          g.read(v, pick[0], static_cast<int64_t>(m), b.nbr.data() + o, b.eid.data() + o, b.ts.data() + o);
        } else {
          g.gather(v, pick.data(), static_cast<int64_t>(m), b.nbr.data() + o, b.eid.data() + o, b.ts.data() + o);
        }
        for (size_t j = o; j < o + m; ++j) b.dt[j] = t - b.ts[j];
      }
      // The next layer's roots: this layer's source nodes (roots, then neighbours).
      std::vector<int64_t> nr = r;
      std::vector<double> nt = rt;
      nr.insert(nr.end(), b.nbr.begin(), b.nbr.end());
      for (size_t j = 0; j < b.nbr.size(); ++j) nt.push_back(c.prop_time ? rt[static_cast<size_t>(b.row[j])] : b.ts[j]);
      r = std::move(nr);
      rt = std::move(nt);
    }
  }
  return out;
}

}  // namespace mlsys::graph
