// DynaPipe's micro-batch construction (DynaPipe, arXiv 2311.10418): split an ordered list of
// samples into consecutive micro-batches minimizing the 1F1B iteration-time estimate
//   (stages - 1) * t_max + sum_i t_i / dp
// subject to every micro-batch fitting in memory. For each candidate t_max (the feasible
// micro-batch times, thinned to a minimum spacing) a DP over prefixes minimizes sum t_i
// with every t_i <= t_max; the best t_max wins. Exact when the spacing is 0.
//
// Cost control: an upper bound UB on the objective (the best partition into equal chunks
// of 1, 2, 4, ... samples) bounds every useful micro-batch time by UB / (stages - 1), so
// longer micro-batches are never stored (exact: any partition using one is worse than UB).
// With `monotone` (T(i, j) nondecreasing in j) rows stop there and each DP pass stops a
// row at its first time above t_max. Candidates are thinned by bucketing the times at
// `tmax_interval` (the minimum of each bucket), without sorting all of them.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace mlsys::plan {

struct PartitionProblem {
  int n = 0;  // samples, in their planning order
  // Time of the micro-batch made of positions [i, j), or nullopt when it does not fit in
  // memory. Must be monotone in j for fixed i (once infeasible, larger j stay infeasible).
  std::function<std::optional<double>(int i, int j)> cost;
  // Optional fast path for one row: appends T(i, i+1), T(i, i+2), ... to `row` while the
  // micro-batch fits, at most `max_len` entries, stopping before the first time > `cap`
  // (the DP passes cap = +inf unless `monotone`). Must agree with `cost`.
  std::function<void(int i, int max_len, double cap, std::vector<double>& row)> row;
  bool monotone = false;  // T(i, j) is nondecreasing in j for fixed i (rows may stop early)
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

// Thrown by microbatch_dp when the sample at planning position `position` does not fit
// in memory even alone; the caller maps the position back to its data set row.
class SampleDoesNotFit : public core::InputError {
 public:
  SampleDoesNotFit(int pos, const std::string& what) : core::InputError(what), position(pos) {}
  int position = 0;
};

// Throws SampleDoesNotFit when some single sample does not fit.
Partition microbatch_dp(const PartitionProblem& p);
// Every one of the 2^(n-1) partitions (tests; n <= 20).
Partition brute_force_partition(const PartitionProblem& p);

}  // namespace mlsys::plan
