// The synthetic evolving graph of §B.9: Gaussian class features, a per-task SBM, and
// arrival edges from each new node to older nodes (Poisson(shift) of them) that shift old
// nodes' neighbourhoods.
#include "graph/evolving_graph.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/signals.hpp"

namespace mlsys::graph {

AttributedGraph generate_evolving_graph(const EvolvingGraphConfig& c, uint64_t seed) {
  if (c.classes_per_task < 1 || c.classes < c.classes_per_task || c.nodes_per_class < 3 || c.feature_dim < 1 ||
      c.mean_scale < 0 || c.feature_noise < 0 || c.same_class_degree < 0 || c.cross_class_degree < 0 || c.shift < 0 ||
      c.related_affinity < 0 || c.related_affinity > 1) {
    throw core::ConfigError("evolving graph generator: a count or rate is out of range (classes >= classes_per_task >= 1, "
                            "nodes_per_class >= 3, feature_dim >= 1, rates >= 0, related_affinity in [0, 1])");
  }
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const int64_t C = c.classes, nc = c.nodes_per_class, d = c.feature_dim, k = c.classes_per_task;
  const int64_t n = C * nc;

  // Features: x_v = mu_{y_v} + sigma * eps. Node v has class v / nc.
  std::vector<double> mu(static_cast<size_t>(C * d));
  for (auto& m : mu) m = normal(rng) * c.mean_scale;
  std::vector<float> features(static_cast<size_t>(n * d));
  std::vector<int64_t> labels(static_cast<size_t>(n));
  for (int64_t v = 0; v < n; ++v) {
    const int64_t y = v / nc;
    labels[static_cast<size_t>(v)] = y;
    for (int64_t j = 0; j < d; ++j) {
      features[static_cast<size_t>(v * d + j)] =
          static_cast<float>(mu[static_cast<size_t>(y * d + j)] + c.feature_noise * normal(rng));
    }
  }

  std::vector<std::pair<int64_t, int64_t>> edges;
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  // Within-task SBM: a pair of the same class links with p_same, of two classes of the
  // task with p_cross, so the expected degrees are same_class_degree and cross_class_degree.
  const double p_same = std::min(1.0, c.same_class_degree / static_cast<double>(nc - 1));
  const double p_cross = k > 1 ? std::min(1.0, c.cross_class_degree / static_cast<double>(nc * (k - 1))) : 0.0;
  const int64_t tasks = C / k;
  const int64_t task_nodes = k * nc;
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t base = t * task_nodes;
    for (int64_t a = base; a < base + task_nodes; ++a) {
      core::poll_stop(static_cast<size_t>(a));
      for (int64_t b = a + 1; b < base + task_nodes; ++b) {
        const double p = (a / nc == b / nc) ? p_same : p_cross;
        if (unif(rng) < p) edges.emplace_back(a, b);
      }
    }
  }
  // The classes beyond the last full task (C mod k of them, in no task) get same-class edges.
  for (int64_t a = tasks * task_nodes; a < n; ++a) {
    for (int64_t b = a + 1; b < n; ++b) {
      if (a / nc == b / nc && unif(rng) < p_same) edges.emplace_back(a, b);
    }
  }

  // Arrival edges. Each class of task t >= 1 has one related old class (seeded); a new node
  // sends Poisson(shift) edges to older tasks' nodes: with probability related_affinity to
  // the related class, else to a uniformly drawn old class; within the class, node u with
  // probability proportional to its current degree + 1 (preferential attachment).
  std::vector<int64_t> degree(static_cast<size_t>(n), 0);
  for (const auto& [a, b] : edges) {
    ++degree[static_cast<size_t>(a)];
    ++degree[static_cast<size_t>(b)];
  }
  std::poisson_distribution<int64_t> arrivals(c.shift);
  for (int64_t t = 1; t < tasks && c.shift > 0; ++t) {
    const int64_t old_classes = t * k;
    std::vector<int64_t> related(static_cast<size_t>(k));
    for (auto& r : related) r = std::uniform_int_distribution<int64_t>(0, old_classes - 1)(rng);
    // Arrival edges of this task only see the degrees as they were before it (the old
    // graph the new nodes attach to), so the order of new nodes does not matter much.
    const std::vector<int64_t> deg0 = degree;
    std::vector<std::discrete_distribution<int64_t>> within;
    for (int64_t y = 0; y < old_classes; ++y) {
      std::vector<double> w(static_cast<size_t>(nc));
      for (int64_t i = 0; i < nc; ++i) w[static_cast<size_t>(i)] = static_cast<double>(deg0[static_cast<size_t>(y * nc + i)] + 1);
      within.emplace_back(w.begin(), w.end());
    }
    for (int64_t v = t * task_nodes; v < (t + 1) * task_nodes; ++v) {
      core::poll_stop(static_cast<size_t>(v));
      const int64_t m = arrivals(rng);
      const int64_t rel = related[static_cast<size_t>((v / nc) % k)];
      for (int64_t e = 0; e < m; ++e) {
        const int64_t y = unif(rng) < c.related_affinity ? rel
                                                         : std::uniform_int_distribution<int64_t>(0, old_classes - 1)(rng);
        const int64_t u = y * nc + within[static_cast<size_t>(y)](rng);
        edges.emplace_back(u, v);
        ++degree[static_cast<size_t>(u)];
        ++degree[static_cast<size_t>(v)];
      }
    }
  }
  AttributedGraph g = build_graph(n, edges, std::move(features), d, std::move(labels));
  g.source = "synthetic evolving graph (seed " + std::to_string(seed) + ")";
  return g;
}

}  // namespace mlsys::graph
