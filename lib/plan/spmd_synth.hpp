// HAP's synthesis loop (arXiv 2401.05965 §4; notes §1.6): search a program for the current
// sharding ratios, solve the LP for the ratios of that program, repeat until the searched
// cost stops decreasing (a fixed point; the cost never increases), then round the shard
// lengths. And the baselines on the same cost model: DP with an even batch split (DP-EV),
// DP with a split proportional to device FLOP/s (DP-CP), and Megatron-style tensor
// parallelism (no split of batch or sequence; column/row-parallel linears, head-parallel
// attention; even shards). Torch-free.
#pragma once

#include <string>
#include <vector>

#include "plan/spmd_search.hpp"

namespace mlsys::plan {

struct SynthOptions {
  bool astar = true;
  int max_iterations = 10;
  std::vector<double> fixed_ratios;  // non-empty: one search with these ratios, no LP (HAP's sharding_ratios)
  int64_t max_nodes = 20000000;
  SearchPolicy policy;
};

struct SynthIteration {
  double search_cost = 0;  // the searched program at the ratios it was searched with
  double lp_cost = 0;      // the same program at the LP's ratios
  int64_t expanded = 0, generated = 0, over_memory = 0;
  double search_s = 0, lp_s = 0;
  std::string lp_status;   // "optimal" or why not
  std::vector<double> ratios;  // after this iteration
};

struct SynthResult {
  std::string method;
  bool found = false;
  Program program;
  std::vector<double> ratios;
  double cost = 0;            // at `ratios`, shard lengths not rounded
  Prediction prediction;      // at the rounded shard lengths
  std::vector<SynthIteration> history;
  double seconds = 0;
  int64_t expanded = 0, generated = 0;
};

std::vector<double> even_ratios(int n);
std::vector<double> proportional_ratios(const SpmdCluster& c);

SynthResult synthesize(const SpmdCostModel& m, const SynthOptions& o);
// method: dp-even | dp-proportional | tp. `o` gives max_nodes and astar.
SynthResult baseline(const SpmdCostModel& m, const std::string& method, const SynthOptions& o);

}  // namespace mlsys::plan
