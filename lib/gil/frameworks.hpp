// The continual-learning frameworks SSRM is added to (CGLB's NCGL baselines, §B.4), as one
// interface: the loss of a step on G_t (full batch) or on a mini-batch's block of it, an optional gradient edit after the
// backward pass (GEM), and what a framework keeps when a task ends (a replay buffer,
// parameter importances, memories). LibTorch inside lib/gil only.
#pragma once

#include <memory>
#include <vector>

#include "gil/task_context.hpp"

namespace mlsys::gil {

class Framework {
 public:
  virtual ~Framework() = default;
  // Called once before task t's first step (LwF records the old model's outputs here).
  virtual void begin_task(const TaskContext& ctx) {}
  // The nodes an epoch of task t goes through (in mini-batches, or all at once): the task's
  // training nodes; joint training: every task's so far.
  [[nodiscard]] virtual std::vector<int64_t> training_nodes(const TaskContext& ctx) const;
  // Nodes besides the batch whose outputs a step's loss or gradient hooks read (ER-GNN's
  // buffer, GEM's memories): a mini-batch's block includes them among its seeds.
  [[nodiscard]] virtual std::vector<int64_t> replayed_nodes(const TaskContext& ctx) const { return {}; }
  // The training loss of one step from the forward pass `out` on ctx.graph, over
  // ctx.batch_nodes() (and the replayed nodes).
  virtual at::Tensor loss(const TaskContext& ctx, const ForwardOut& out) = 0;
  // Before loss.backward(): GEM takes its memories' gradients here (`out` is kept alive).
  virtual void before_backward(const TaskContext& ctx, const ForwardOut& out) {}
  // After loss.backward(), before the optimiser step: GEM projects the gradient.
  virtual void adjust_gradients(const TaskContext& ctx) {}
  // When task t is learned: keep what later tasks need.
  virtual void end_task(const TaskContext& ctx) {}
  // Training nodes of `task` this framework keeps (ER-GNN's buffer, GEM's memories); empty
  // when it keeps none. SSRM regularises these nodes when there are any.
  [[nodiscard]] virtual std::vector<int64_t> stored_nodes(int64_t task) const { return {}; }
};

// ConfigError for an unknown name.
std::unique_ptr<Framework> make_framework(const FrameworkConfig& c);

}  // namespace mlsys::gil
