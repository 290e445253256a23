// ER-GNN samplers: coverage maximisation, mean feature, random.
#include "gil/replay_sampler.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "core/error.hpp"

namespace mlsys::gil {
namespace {

double distance(const graph::AttributedGraph& g, int64_t a, int64_t b) {
  const float* x = g.features.data() + a * g.feature_dim;
  const float* y = g.features.data() + b * g.feature_dim;
  double s = 0;
  for (int64_t j = 0; j < g.feature_dim; ++j) s += (double(x[j]) - y[j]) * (double(x[j]) - y[j]);
  return std::sqrt(s);
}

// The `k` nodes of `ids` of smallest score; ties broken by a seeded shuffle.
std::vector<int64_t> smallest(std::vector<int64_t> ids, const std::vector<double>& score, size_t k, std::mt19937_64& rng) {
  std::vector<size_t> order(ids.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  std::vector<int64_t> out;
  for (size_t i = 0; i < std::min(k, order.size()); ++i) out.push_back(ids[order[i]]);
  return out;
}

}  // namespace

std::vector<int64_t> select_replay_nodes(const graph::AttributedGraph& g, const std::vector<int64_t>& train,
                                         int64_t budget, const ReplaySamplerConfig& c, uint64_t seed) {
  if (c.sampler != "cm" && c.sampler != "mf" && c.sampler != "random") {
    throw core::ConfigError("replay sampler '" + c.sampler + "': expected cm, mf or random");
  }
  std::map<int64_t, std::vector<int64_t>> by_class;
  for (int64_t v : train) by_class[g.labels[static_cast<size_t>(v)]].push_back(v);
  std::mt19937_64 rng(seed);
  std::vector<int64_t> chosen;
  const auto classes = static_cast<int64_t>(by_class.size());
  int64_t ci = 0;
  for (const auto& [y, ids] : by_class) {
    const int64_t share = budget / classes + (ci++ < budget % classes ? 1 : 0);
    const auto k = static_cast<size_t>(std::max<int64_t>(share, 0));
    std::vector<double> score(ids.size(), 0.0);
    if (c.sampler == "random") {
      std::vector<int64_t> s = ids;
      std::shuffle(s.begin(), s.end(), rng);
      s.resize(std::min(k, s.size()));
      chosen.insert(chosen.end(), s.begin(), s.end());
      continue;
    }
    if (c.sampler == "mf") {
      std::vector<double> mean(static_cast<size_t>(g.feature_dim), 0.0);
      for (int64_t v : ids) {
        for (int64_t j = 0; j < g.feature_dim; ++j) mean[static_cast<size_t>(j)] += g.features[static_cast<size_t>(v * g.feature_dim + j)];
      }
      for (auto& m : mean) m /= static_cast<double>(ids.size());
      for (size_t i = 0; i < ids.size(); ++i) {
        double s = 0;
        for (int64_t j = 0; j < g.feature_dim; ++j) {
          const double d = g.features[static_cast<size_t>(ids[i] * g.feature_dim + j)] - mean[static_cast<size_t>(j)];
          s += d * d;
        }
        score[i] = s;
      }
    } else {
      // CM: count the other classes' training nodes within radius x (mean distance to them).
      std::vector<int64_t> others;
      for (const auto& [z, o] : by_class) {
        if (z != y) others.insert(others.end(), o.begin(), o.end());
      }
      std::vector<double> dist(ids.size() * others.size());
      double mean = 0;
      for (size_t i = 0; i < ids.size(); ++i) {
        for (size_t j = 0; j < others.size(); ++j) mean += dist[i * others.size() + j] = distance(g, ids[i], others[j]);
      }
      if (!dist.empty()) mean /= static_cast<double>(dist.size());
      const double r = c.radius * mean;
      for (size_t i = 0; i < ids.size(); ++i) {
        for (size_t j = 0; j < others.size(); ++j) score[i] += dist[i * others.size() + j] < r ? 1 : 0;
      }
    }
    const auto s = smallest(ids, score, k, rng);
    chosen.insert(chosen.end(), s.begin(), s.end());
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

}  // namespace mlsys::gil
