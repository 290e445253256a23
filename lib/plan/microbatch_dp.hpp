// DynaPipe's micro-batch construction (planners.md §2.3 step 2): split an ordered list of
// samples into consecutive micro-batches minimizing the 1F1B iteration-time estimate
//   (stages - 1) * t_max + sum_i t_i / dp
// subject to every micro-batch fitting in memory. For each candidate t_max (the feasible
// micro-batch times, thinned to a minimum spacing) a DP over prefixes minimizes sum t_i
// with every t_i <= t_max; the best t_max wins. Exact when the spacing is 0.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace mlsys::plan {

struct PartitionProblem {
  int n = 0;  // samples, in their planning order
  // Time of the micro-batch made of positions [i, j), or nullopt when it does not fit in
  // memory. Must be monotone in j for fixed i (once infeasible, larger j stay infeasible).
  std::function<std::optional<double>(int i, int j)> cost;
  int stages = 1;
  double dp_size = 1.0;
  double tmax_interval = 0.0;  // minimum spacing of candidate t_max values (ms)
  int max_microbatch = 0;      // 0 = no cap on samples per micro-batch
};

struct Partition {
  std::vector<int> bounds;  // 0 = b_0 < b_1 < ... < b_k = n
  std::vector<double> times;
  double t_max = 0;
  double objective = 0;
  int tmax_candidates = 0;
};

double partition_objective(const std::vector<double>& times, int stages, double dp_size);

// InputError-free: throws core::InputError when some single sample does not fit.
Partition microbatch_dp(const PartitionProblem& p);
// Every one of the 2^(n-1) partitions (tests; n <= 20).
Partition brute_force_partition(const PartitionProblem& p);

}  // namespace mlsys::plan
