// Temporal neighbor sampling on a T-CSR (TGL's sampler_core): per node its events sorted
// by (time, event index). A query (v, t) sees only events strictly before t, so an event's
// own edge is never visible while it is predicted, but earlier events of the same batch
// are (as in TGN/TGL). Most-recent: the last k such events; uniform: k draws with
// replacement among them (TGN's uniform finder), sorted by time.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "graph/events.hpp"

namespace mlsys::graph {

class TemporalGraph {
 public:
  // Over the given events (chronological indices into `s`; all when null), each event
  // appearing in the adjacency of src and, when `undirected`, of dst.
  TemporalGraph(const EventStream& s, const std::vector<size_t>* events = nullptr, bool undirected = true);

  [[nodiscard]] int64_t num_nodes() const { return static_cast<int64_t>(indptr_.size()) - 1; }
  // Number of events of v strictly before t (or at or before t when `inclusive`).
  [[nodiscard]] int64_t degree_before(int64_t v, double t, bool inclusive = false) const;

  const std::vector<int64_t>& indptr() const { return indptr_; }
  const std::vector<int64_t>& neighbors() const { return nbr_; }
  const std::vector<int64_t>& event_ids() const { return eid_; }
  const std::vector<double>& times() const { return ts_; }

 private:
  std::vector<int64_t> indptr_, nbr_, eid_;
  std::vector<double> ts_;
};

// n roots x k slots, row-major; a root with m < k neighbors fills the first m slots
// (oldest first) and leaves nbr = -1, eid = -1, t = 0 in the rest.
struct NeighborBlock {
  int64_t k = 0;
  std::vector<int64_t> nbr, eid;
  std::vector<double> t;
  void resize(size_t roots, int64_t k_);
};

// `inclusive` (events at t visible too) exists only so tests can show what leakage does.
void sample_recent(const TemporalGraph& g, const std::vector<int64_t>& roots, const std::vector<double>& times,
                   int64_t k, NeighborBlock& out, bool inclusive = false);
void sample_uniform(const TemporalGraph& g, const std::vector<int64_t>& roots, const std::vector<double>& times,
                    int64_t k, std::mt19937_64& rng, NeighborBlock& out);

}  // namespace mlsys::graph
