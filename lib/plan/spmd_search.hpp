// HAP's program search (arXiv 2401.05965 §4.2; notes §1.4): the cheapest program over the
// distributed instruction set for fixed sharding ratios. A* over states "ops done + the
// properties available of every live tensor", each step one fused triple (materialize the
// inputs with at most one collective each, then compute the op), with the admissible and
// consistent heuristic h = sum over the remaining ops of their cheapest compute cost. With
// the heuristic off it is the uniform-cost search of the released code. Ops are taken in
// the graph's topological order: the program cost is a sum, so the order changes nothing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plan/spmd_program.hpp"

namespace mlsys::plan {

// Which programs a search may build: HAP (everything), or a baseline's restriction.
struct SearchPolicy {
  std::string name = "hap";
  bool data_parallel_only = false;  // DP: activations and data Gather(0), parameters Identity, no conversions
  bool no_data_split = false;       // TP: no Gather on a tensor's data dims (batch, sequence)
  bool shard_weights = false;       // TP: ops with weights (and attention) never run replicated
  bool conversions = true;
  bool sfb = true;
  bool grouped_collectives = true;  // else padded only
  bool check_memory = true;         // reject complete programs that exceed a device's memory
};

struct SearchOptions {
  bool astar = true;          // false: uniform-cost search (h = 0)
  int64_t max_nodes = 20000000;  // generated nodes before giving up (core::RuntimeFailure)
  SearchPolicy policy;
};

struct SearchResult {
  bool found = false;
  Program program;
  double cost = 0;           // at the ratios searched with (not rounded)
  int64_t expanded = 0;      // nodes popped and expanded
  int64_t generated = 0;     // nodes pushed
  int64_t over_memory = 0;   // partial or complete programs rejected by the memory model
  double seconds = 0;
};

SearchResult search_program(const SpmdCostModel& m, const std::vector<double>& ratios, const SearchOptions& o);

// The sum over `p`'s terms of the max over devices, at `ratios` (not rounded).
double program_cost(const SpmdCostModel& m, const Program& p, const std::vector<double>& ratios);

}  // namespace mlsys::plan
