// The class-incremental view of a node-classified graph (CGLB's NCGL protocol,
// research notes dot_ssrm.md §B.2): classes are taken in order, `classes_per_task` at a
// time, to form tasks (a remainder of fewer classes is left out, as CGLB does); each
// class's nodes are split 60/20/20 into train/val/test by a seeded shuffle; and the graph
// seen while learning task t is the subgraph induced by the nodes of tasks 0..t (the
// inductive setting: old nodes gain the edges that later nodes bring, nothing of a later
// task is visible). No LibTorch.
#pragma once

#include <cstdint>
#include <vector>

#include "graph/attributed_graph.hpp"

namespace mlsys::graph {

enum class NodeSplit : int8_t { train = 0, val = 1, test = 2 };

struct SplitFractions {
  double train = 0.6;
  double val = 0.2;  // the test split is the rest
};

struct IncrementalTasks {
  int64_t classes_per_task = 2;
  int64_t num_tasks = 0;
  std::vector<int32_t> task_of_node;  // per node: its task, -1 when its class is in none
  std::vector<NodeSplit> split_of_node;
  // Per task: its classes (ascending), and its nodes of each split (ascending ids).
  std::vector<std::vector<int64_t>> classes;
  std::vector<std::vector<int64_t>> train, val, test;

  [[nodiscard]] int64_t first_class(int64_t t) const { return t * classes_per_task; }
};

// core::ConfigError when the graph has fewer than `classes_per_task` classes or a class of
// a task has fewer than 3 nodes (each split needs one), naming the class and its count.
IncrementalTasks make_incremental_tasks(const AttributedGraph& g, int64_t classes_per_task, SplitFractions fractions,
                                        uint64_t seed);

// The ascending ids of the nodes of tasks 0..t.
std::vector<int64_t> nodes_up_to_task(const IncrementalTasks& tasks, int64_t t);

// G_t: the subgraph of `g` induced by the nodes of tasks 0..t.
Subgraph task_graph(const AttributedGraph& g, const IncrementalTasks& tasks, int64_t t);

// Per task i: the share of the neighbours of task i's nodes, in the whole graph, that belong
// to later tasks (the structural shift those nodes undergo by the last task; 0 for the last).
std::vector<double> later_neighbour_share(const AttributedGraph& g, const IncrementalTasks& tasks);

// Share of edges whose two ends have the same label.
double edge_homophily(const AttributedGraph& g);

}  // namespace mlsys::graph
