// The small interface every temporal sampler reads a graph through: per node its edges in
// (time, insertion) order, addressed by position. The T-CSR (TemporalGraph, rebuilt per
// increment) and the TimeIndexedBlockStore (updated in place) both provide it, so the
// samplers of graph/temporal_sampling.hpp and a trainer written against this interface
// run on either without copying the sampling code.
#pragma once

#include <cstdint>

#include "graph/sampler.hpp"

namespace mlsys::graph {

class TemporalAdjacency {
 public:
  virtual ~TemporalAdjacency() = default;
  [[nodiscard]] virtual int64_t num_nodes() const = 0;
  // How many of v's edges have ts < t (ts <= t when `inclusive`); 0 for an unknown v.
  [[nodiscard]] virtual int64_t count_before(int64_t v, double t, bool inclusive = false) const = 0;
  // Copies v's edges at positions [first, first + n) (0 = v's oldest edge still held) into
  // nbr/eid/ts; the range must lie within v's edges.
  virtual void read(int64_t v, int64_t first, int64_t n, int64_t* nbr, int64_t* eid, double* ts) const = 0;
  // The edges at ascending positions pos[0..n) (each within v's edges); by default one
  // read() per position.
  virtual void gather(int64_t v, const int64_t* pos, int64_t n, int64_t* nbr, int64_t* eid, double* ts) const {
    for (int64_t j = 0; j < n; ++j) read(v, pos[j], 1, nbr + j, eid + j, ts + j);
  }
};

// The T-CSR seen through the interface (the graph must outlive the adapter).
class TcsrAdjacency final : public TemporalAdjacency {
 public:
  explicit TcsrAdjacency(const TemporalGraph& g) : g_(g) {}
  [[nodiscard]] const TemporalGraph& graph() const { return g_; }
  [[nodiscard]] int64_t num_nodes() const override { return g_.num_nodes(); }
  [[nodiscard]] int64_t count_before(int64_t v, double t, bool inclusive = false) const override {
    return g_.degree_before(v, t, inclusive);
  }
  void read(int64_t v, int64_t first, int64_t n, int64_t* nbr, int64_t* eid, double* ts) const override {
    const auto b = static_cast<size_t>(g_.indptr()[static_cast<size_t>(v)] + first);
    for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
      nbr[i] = g_.neighbors()[b + i];
      eid[i] = g_.event_ids()[b + i];
      ts[i] = g_.times()[b + i];
    }
  }

 private:
  const TemporalGraph& g_;
};

}  // namespace mlsys::graph
