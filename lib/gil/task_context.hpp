// What the incremental driver shares with the frameworks while a task is learned: the
// current task graph G_t as tensors, its node-id map, the model, and the task-IL/class-IL
// loss and accuracy over any set of nodes (each node scored among the classes its setting
// allows). LibTorch inside lib/gil only.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "gil/backbone.hpp"
#include "gil/incremental.hpp"
#include "graph/incremental_tasks.hpp"

namespace mlsys::gil {

// G_t with the map from global node ids to its local rows.
struct TaskGraph {
  int64_t task = 0;
  graph::Subgraph sub;
  GraphTensors tensors;
  std::vector<int64_t> local;  // per global node: its row in G_t, -1 when absent
  // Local rows of global `nodes` (RuntimeFailure when one is absent: a leak of the future).
  [[nodiscard]] at::Tensor rows(const std::vector<int64_t>& nodes) const;
};
TaskGraph make_task_graph(const graph::AttributedGraph& g, const graph::IncrementalTasks& tasks, int64_t t);

// The classes a node of task j is scored among at time t: task-IL its task's classes,
// class-IL every class seen by t.
struct ClassRange {
  int64_t lo = 0, hi = 0;
};
ClassRange class_range(const graph::IncrementalTasks& tasks, const std::string& setting, int64_t node_task, int64_t now);

struct TaskContext {
  const graph::AttributedGraph& g;
  const graph::IncrementalTasks& tasks;
  const IncrementalConfig& c;
  Backbone& model;
  const TaskGraph& graph;  // G_t, or a mini-batch's block of it (only the step's seeds have rows)
  int64_t t = 0;
  // The training nodes of this step: every node of the framework's training_nodes in a
  // full-batch step, one mini-batch of them otherwise.
  const std::vector<int64_t>* batch = nullptr;
  [[nodiscard]] const std::vector<int64_t>& batch_nodes() const { return *batch; }

  // Cross-entropy of `logits` (G_t's rows) over `nodes` (global ids), each among its class
  // range; with class_balanced, weighted 1/n_c by the counts of classes among `nodes`.
  [[nodiscard]] at::Tensor ce(const at::Tensor& logits, const std::vector<int64_t>& nodes) const;
  // Logits over `nodes` with the classes outside each node's range at -inf.
  [[nodiscard]] at::Tensor masked_logits(const at::Tensor& logits, const std::vector<int64_t>& nodes) const;
};

// The rows of `logits` (G's rows) of `nodes` (global ids), the classes outside each node's
// range at time `now` set to -inf.
at::Tensor masked_logits(const at::Tensor& logits, const TaskGraph& graph, const graph::IncrementalTasks& tasks,
                         const std::string& setting, const std::vector<int64_t>& nodes, int64_t now);

// Class-balanced accuracy (percent) of `model` on `nodes` (global ids of tasks <= graph.task),
// each node scored among its class range at time `now`.
double accuracy(const Backbone& model, const TaskGraph& graph, const graph::AttributedGraph& g,
                const graph::IncrementalTasks& tasks, const std::string& setting, const std::vector<int64_t>& nodes,
                int64_t now);

}  // namespace mlsys::gil
