// The T-CSR and its most-recent / uniform temporal samplers.
#include "graph/sampler.hpp"

#include <algorithm>
#include <numeric>

namespace mlsys::graph {

TemporalGraph::TemporalGraph(const EventStream& s, const std::vector<size_t>* events, bool undirected) {
  const auto n = static_cast<size_t>(s.num_nodes);
  std::vector<size_t> all;
  if (events == nullptr) {
    all.resize(s.size());
    std::iota(all.begin(), all.end(), size_t{0});
    events = &all;
  }
  indptr_.assign(n + 1, 0);
  for (size_t e : *events) {
    ++indptr_[static_cast<size_t>(s.src[e]) + 1];
    if (undirected) ++indptr_[static_cast<size_t>(s.dst[e]) + 1];
  }
  for (size_t v = 0; v < n; ++v) indptr_[v + 1] += indptr_[v];
  const auto m = static_cast<size_t>(indptr_[n]);
  nbr_.resize(m);
  eid_.resize(m);
  ts_.resize(m);
  std::vector<int64_t> fill(indptr_.begin(), indptr_.end() - 1);
  // Events are chronological (ties in index order), so appending keeps each list sorted
  // by (time, event index) as long as `events` is ascending.
  std::vector<size_t> sorted = *events;
  std::sort(sorted.begin(), sorted.end());
  auto put = [&](int64_t v, int64_t u, size_t e) {
    const auto p = static_cast<size_t>(fill[static_cast<size_t>(v)]++);
    nbr_[p] = u;
    eid_[p] = static_cast<int64_t>(e);
    ts_[p] = s.t[e];
  };
  for (size_t e : sorted) {
    put(s.src[e], s.dst[e], e);
    if (undirected) put(s.dst[e], s.src[e], e);
  }
}

int64_t TemporalGraph::degree_before(int64_t v, double t, bool inclusive) const {
  if (v < 0 || v >= num_nodes()) return 0;
  const auto b = ts_.begin() + indptr_[static_cast<size_t>(v)];
  const auto e = ts_.begin() + indptr_[static_cast<size_t>(v) + 1];
  const auto it = inclusive ? std::upper_bound(b, e, t) : std::lower_bound(b, e, t);
  return it - b;
}

void NeighborBlock::resize(size_t roots, int64_t k_) {
  k = k_;
  const size_t n = roots * static_cast<size_t>(k_);
  nbr.assign(n, -1);
  eid.assign(n, -1);
  t.assign(n, 0.0);
}

void sample_recent(const TemporalGraph& g, const std::vector<int64_t>& roots, const std::vector<double>& times,
                   int64_t k, NeighborBlock& out, bool inclusive) {
  out.resize(roots.size(), k);
  for (size_t i = 0; i < roots.size(); ++i) {
    const int64_t v = roots[i];
    const int64_t deg = g.degree_before(v, times[i], inclusive);
    if (deg == 0) continue;
    const int64_t begin = g.indptr()[static_cast<size_t>(v)];
    const int64_t take = std::min(k, deg);
    for (int64_t j = 0; j < take; ++j) {
      const auto p = static_cast<size_t>(begin + deg - take + j);
      const size_t o = i * static_cast<size_t>(k) + static_cast<size_t>(j);
      out.nbr[o] = g.neighbors()[p];
      out.eid[o] = g.event_ids()[p];
      out.t[o] = g.times()[p];
    }
  }
}

void sample_uniform(const TemporalGraph& g, const std::vector<int64_t>& roots, const std::vector<double>& times,
                    int64_t k, std::mt19937_64& rng, NeighborBlock& out) {
  out.resize(roots.size(), k);
  std::vector<int64_t> pick(static_cast<size_t>(k));
  for (size_t i = 0; i < roots.size(); ++i) {
    const int64_t v = roots[i];
    const int64_t deg = g.degree_before(v, times[i]);
    if (deg == 0) continue;
    const int64_t begin = g.indptr()[static_cast<size_t>(v)];
    std::uniform_int_distribution<int64_t> d(0, deg - 1);
    for (auto& p : pick) p = d(rng);
    std::sort(pick.begin(), pick.end());  // position order = (time, event) order
    for (int64_t j = 0; j < k; ++j) {
      const auto p = static_cast<size_t>(begin + pick[static_cast<size_t>(j)]);
      const size_t o = i * static_cast<size_t>(k) + static_cast<size_t>(j);
      out.nbr[o] = g.neighbors()[p];
      out.eid[o] = g.event_ids()[p];
      out.t[o] = g.times()[p];
    }
  }
}

}  // namespace mlsys::graph
