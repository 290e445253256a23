// The consecutive-partition DP over candidate t_max values.
#include "plan/microbatch_dp.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <unordered_map>

#include "core/error.hpp"

namespace mlsys::plan {

double partition_objective(const std::vector<double>& times, int stages, double dp_size) {
  double sum = 0, mx = 0;
  for (double t : times) {
    sum += t;
    mx = std::max(mx, t);
  }
  return (stages - 1) * mx + sum / dp_size;
}

Partition microbatch_dp(const PartitionProblem& p) {
  const int n = p.n;
  constexpr double inf = std::numeric_limits<double>::infinity();
  if (n == 0) return Partition{{0}, {}, 0, 0, 0};
  const int max_len = p.max_microbatch > 0 ? std::min(p.max_microbatch, n) : n;

  // Upper bound on the objective: equal chunks of 1, 2, 4, ... samples (and the whole).
  // A micro-batch slower than UB / (stages - 1) makes any partition worse than UB.
  double ub = inf;
  for (int k = 1;; k = std::min(2 * k, max_len)) {
    std::vector<double> times;
    bool ok = true;
    for (int i = 0; i < n && ok; i += k) {
      auto t = p.cost(i, std::min(n, i + k));
      if (t) times.push_back(*t); else ok = false;
    }
    if (ok) ub = std::min(ub, partition_objective(times, p.stages, p.dp_size));
    if (k == max_len || (!ok && p.monotone)) break;
  }
  const double cap = p.stages > 1 && ub < inf ? ub / (p.stages - 1) * (1 + 1e-12) : inf;

  // cost[i] holds T(i, i+1 .. i+len) for the feasible lengths (+inf above the cap when the
  // times are not monotone; monotone rows just end there).
  std::vector<std::vector<double>> cost(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto& row = cost[static_cast<size_t>(i)];
    const int len = std::min(max_len, n - i);
    if (p.row) {
      p.row(i, len, p.monotone ? cap : inf, row);
      if (static_cast<int>(row.size()) > len) row.resize(static_cast<size_t>(len));
    } else {
      for (int j = i + 1; j <= i + len; ++j) {
        auto t = p.cost(i, j);
        if (!t || (p.monotone && *t > cap)) break;
        row.push_back(*t);
      }
    }
    if (!p.monotone) {
      for (auto& t : row) if (t > cap) t = inf;
    }
    while (!row.empty() && row.back() == inf) row.pop_back();
    if (row.empty()) {
      // Empty either because the sample alone does not fit, or because every run from i is
      // slower than the cap (possible when times are not monotone: a partition with a
      // boundary at i is then worse than the bound, and the bound's own partition has none).
      if (!p.cost(i, i + 1)) {
        throw SampleDoesNotFit(i, "sample at position " + std::to_string(i) +
                                      " does not fit in device memory even alone (under the tried recomputation)");
      }
      row.push_back(inf);  // no usable micro-batch starts at i
    }
  }
  // Candidate t_max values: exact (every distinct time) at spacing 0; otherwise the
  // smallest time of each tmax_interval-wide bucket, then spaced at least the interval.
  std::vector<double> vals;
  double tmax_all = 0;
  if (p.tmax_interval <= 0) {
    for (const auto& row : cost) for (double t : row) if (t < inf) vals.push_back(t);
  } else {
    std::unordered_map<int64_t, double> bucket;
    for (const auto& row : cost) {
      for (double t : row) {
        if (t == inf) continue;
        const auto key = static_cast<int64_t>(std::floor(t / p.tmax_interval));
        auto [it, fresh] = bucket.try_emplace(key, t);
        if (!fresh && t < it->second) it->second = t;
      }
    }
    for (const auto& [k, t] : bucket) vals.push_back(t);
  }
  for (const auto& row : cost) for (double t : row) if (t < inf) tmax_all = std::max(tmax_all, t);
  std::sort(vals.begin(), vals.end());
  std::vector<double> cands;
  for (double t : vals) {
    if (cands.empty() || t - cands.back() > p.tmax_interval || (p.tmax_interval <= 0 && t != cands.back())) {
      cands.push_back(t);
    }
  }
  if (cands.empty() || cands.back() != tmax_all) cands.push_back(tmax_all);  // keep the unconstrained case

  // f[j] = min sum of times over partitions of [0, j) with every time <= t_max.
  std::vector<double> f(static_cast<size_t>(n) + 1);
  std::vector<int> arg(static_cast<size_t>(n) + 1);
  auto solve = [&](double tmax) {
    std::fill(f.begin(), f.end(), inf);
    f[0] = 0;
    for (int i = 0; i < n; ++i) {
      const double fi = f[static_cast<size_t>(i)];
      if (fi == inf) continue;
      const auto& row = cost[static_cast<size_t>(i)];
      for (size_t k = 0; k < row.size(); ++k) {
        if (row[k] > tmax) {
          if (p.monotone) break;
          continue;  // times need not be monotone in j: keep scanning
        }
        const size_t j = static_cast<size_t>(i) + k + 1;
        const double v = fi + row[k];
        if (v < f[j]) {
          f[j] = v;
          arg[j] = i;
        }
      }
    }
    return f[static_cast<size_t>(n)];
  };
  Partition best;
  best.objective = inf;
  // The unconstrained minimum of the sum bounds every candidate from below.
  const double sum_lb = solve(inf);
  int tried = 0;
  for (double tmax : cands) {
    if ((p.stages - 1) * tmax + sum_lb / p.dp_size >= best.objective) break;  // increasing in tmax
    ++tried;
    const double sum = solve(tmax);
    if (sum == inf) continue;
    const double obj = (p.stages - 1) * tmax + sum / p.dp_size;
    if (obj < best.objective) {
      best.objective = obj;
      best.bounds.clear();
      for (int j = n; j > 0; j = arg[static_cast<size_t>(j)]) best.bounds.push_back(j);
      best.bounds.push_back(0);
      std::reverse(best.bounds.begin(), best.bounds.end());
    }
  }
  best.times.clear();
  for (size_t k = 0; k + 1 < best.bounds.size(); ++k) {
    const int i = best.bounds[k], j = best.bounds[k + 1];
    best.times.push_back(cost[static_cast<size_t>(i)][static_cast<size_t>(j - i - 1)]);
  }
  best.t_max = *std::max_element(best.times.begin(), best.times.end());
  best.objective = partition_objective(best.times, p.stages, p.dp_size);
  best.tmax_candidates = tried;
  return best;
}

Partition brute_force_partition(const PartitionProblem& p) {
  const int n = p.n;
  Partition best;
  best.objective = std::numeric_limits<double>::infinity();
  if (n == 0) return Partition{{0}, {}, 0, 0, 0};
  const uint64_t masks = uint64_t{1} << (n - 1);
  for (uint64_t m = 0; m < masks; ++m) {
    std::vector<int> bounds{0};
    for (int k = 1; k < n; ++k) {
      if (m & (uint64_t{1} << (k - 1))) bounds.push_back(k);
    }
    bounds.push_back(n);
    std::vector<double> times;
    bool ok = true;
    for (size_t k = 0; k + 1 < bounds.size() && ok; ++k) {
      if (p.max_microbatch > 0 && bounds[k + 1] - bounds[k] > p.max_microbatch) ok = false;
      auto t = ok ? p.cost(bounds[k], bounds[k + 1]) : std::nullopt;
      if (!t) ok = false; else times.push_back(*t);
    }
    if (!ok) continue;
    const double obj = partition_objective(times, p.stages, p.dp_size);
    if (obj < best.objective) {
      best.objective = obj;
      best.bounds = bounds;
      best.times = times;
      best.t_max = *std::max_element(times.begin(), times.end());
    }
  }
  return best;
}

}  // namespace mlsys::plan
