// Class-incremental tasks over a labelled graph: tasks of consecutive classes, per-class
// seeded 60/20/20 splits, and the induced task graphs G_t.
#include "graph/incremental_tasks.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.hpp"

namespace mlsys::graph {

IncrementalTasks make_incremental_tasks(const AttributedGraph& g, int64_t classes_per_task, SplitFractions fractions,
                                        uint64_t seed) {
  if (classes_per_task < 1 || g.num_classes < classes_per_task) {
    throw core::ConfigError(g.source + ": " + std::to_string(g.num_classes) + " classes cannot form a task of " +
                            std::to_string(classes_per_task) + " classes");
  }
  IncrementalTasks tk;
  tk.classes_per_task = classes_per_task;
  tk.num_tasks = g.num_classes / classes_per_task;
  tk.task_of_node.assign(static_cast<size_t>(g.num_nodes), -1);
  tk.split_of_node.assign(static_cast<size_t>(g.num_nodes), NodeSplit::test);
  tk.classes.resize(static_cast<size_t>(tk.num_tasks));
  tk.train.resize(static_cast<size_t>(tk.num_tasks));
  tk.val.resize(static_cast<size_t>(tk.num_tasks));
  tk.test.resize(static_cast<size_t>(tk.num_tasks));
  std::vector<std::vector<int64_t>> of_class(static_cast<size_t>(g.num_classes));
  for (int64_t v = 0; v < g.num_nodes; ++v) of_class[static_cast<size_t>(g.labels[static_cast<size_t>(v)])].push_back(v);
  std::mt19937_64 rng(seed);
  for (int64_t t = 0; t < tk.num_tasks; ++t) {
    for (int64_t y = t * classes_per_task; y < (t + 1) * classes_per_task; ++y) {
      tk.classes[static_cast<size_t>(t)].push_back(y);
      std::vector<int64_t> nodes = of_class[static_cast<size_t>(y)];
      if (nodes.size() < 3) {
        throw core::ConfigError(g.source + ": class " + std::to_string(y) + " of task " + std::to_string(t) + " has " +
                                std::to_string(nodes.size()) + " nodes; each class needs at least 3 (train, val, test)");
      }
      std::shuffle(nodes.begin(), nodes.end(), rng);
      const auto m = static_cast<double>(nodes.size());
      // At least one node in each split.
      auto n_train = std::clamp<int64_t>(std::llround(fractions.train * m), 1, static_cast<int64_t>(m) - 2);
      auto n_val = std::clamp<int64_t>(std::llround(fractions.val * m), 1, static_cast<int64_t>(m) - n_train - 1);
      for (size_t i = 0; i < nodes.size(); ++i) {
        const int64_t v = nodes[i];
        const auto s = static_cast<int64_t>(i) < n_train           ? NodeSplit::train
                       : static_cast<int64_t>(i) < n_train + n_val ? NodeSplit::val
                                                                   : NodeSplit::test;
        tk.task_of_node[static_cast<size_t>(v)] = static_cast<int32_t>(t);
        tk.split_of_node[static_cast<size_t>(v)] = s;
        auto& list = s == NodeSplit::train ? tk.train : s == NodeSplit::val ? tk.val : tk.test;
        list[static_cast<size_t>(t)].push_back(v);
      }
    }
    for (auto* l : {&tk.train, &tk.val, &tk.test}) std::sort((*l)[static_cast<size_t>(t)].begin(), (*l)[static_cast<size_t>(t)].end());
  }
  return tk;
}

std::vector<int64_t> nodes_up_to_task(const IncrementalTasks& tasks, int64_t t) {
  std::vector<int64_t> out;
  for (size_t v = 0; v < tasks.task_of_node.size(); ++v) {
    const int32_t k = tasks.task_of_node[v];
    if (k >= 0 && k <= t) out.push_back(static_cast<int64_t>(v));
  }
  return out;
}

Subgraph task_graph(const AttributedGraph& g, const IncrementalTasks& tasks, int64_t t) {
  return induced_subgraph(g, nodes_up_to_task(tasks, t));
}

std::vector<double> later_neighbour_share(const AttributedGraph& g, const IncrementalTasks& tasks) {
  std::vector<double> later(static_cast<size_t>(tasks.num_tasks), 0), all(static_cast<size_t>(tasks.num_tasks), 0);
  for (int64_t v = 0; v < g.num_nodes; ++v) {
    const int32_t tv = tasks.task_of_node[static_cast<size_t>(v)];
    if (tv < 0) continue;
    for (int64_t e = g.indptr[static_cast<size_t>(v)]; e < g.indptr[static_cast<size_t>(v) + 1]; ++e) {
      const int32_t tu = tasks.task_of_node[static_cast<size_t>(g.indices[static_cast<size_t>(e)])];
      if (tu < 0) continue;
      all[static_cast<size_t>(tv)] += 1;
      if (tu > tv) later[static_cast<size_t>(tv)] += 1;
    }
  }
  for (size_t t = 0; t < later.size(); ++t) later[t] = all[t] > 0 ? later[t] / all[t] : 0.0;
  return later;
}

double edge_homophily(const AttributedGraph& g) {
  double same = 0;
  for (int64_t v = 0; v < g.num_nodes; ++v) {
    for (int64_t e = g.indptr[static_cast<size_t>(v)]; e < g.indptr[static_cast<size_t>(v) + 1]; ++e) {
      same += g.labels[static_cast<size_t>(v)] == g.labels[static_cast<size_t>(g.indices[static_cast<size_t>(e)])] ? 1 : 0;
    }
  }
  return g.indices.empty() ? 0.0 : same / static_cast<double>(g.indices.size());
}

}  // namespace mlsys::graph
