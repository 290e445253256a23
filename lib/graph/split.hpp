// Chronological train/val/test splits of an event stream (TGN's protocol): by time
// quantiles 0.70/0.85 (train <= val_time < val <= test_time < test) or by TGL's ext_roll
// column, plus the inductive setting where a seeded 10% of the nodes seen after val_time
// are hidden from training and the events touching new nodes form the inductive subsets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graph/events.hpp"

namespace mlsys::graph {

struct SplitOptions {
  std::string method = "time";  // "time" (quantiles) | "ext_roll" (TGL's column)
  double val_fraction = 0.15;
  double test_fraction = 0.15;
  double hidden_fraction = 0.1;  // inductive: share of the post-val_time nodes hidden from training
  uint64_t seed = 2020;          // TGN's seed for the hidden-node draw
};

struct Split {
  std::vector<size_t> train, val, test;  // event indices, chronological
  std::vector<size_t> train_all;         // train events before removing the hidden nodes' events
  double val_time = 0, test_time = 0;
  std::vector<uint8_t> new_node;  // per node: 1 = never seen by training (hidden or first seen later)
  std::vector<uint8_t> hidden;    // per node: 1 = hidden from training
  // Per event of val/test: 1 when it touches a new node (the inductive subset).
  [[nodiscard]] bool is_inductive(const EventStream& s, size_t e) const {
    return new_node[static_cast<size_t>(s.src[e])] != 0 || new_node[static_cast<size_t>(s.dst[e])] != 0;
  }
};

// InputError when a split would be empty or ext_roll is asked for but absent.
Split chronological_split(const EventStream& s, const SplitOptions& opt);

}  // namespace mlsys::graph
