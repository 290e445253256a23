// Node-wise graph incremental learning (research notes dot_ssrm.md part B): a GNN learns a
// sequence of class-incremental tasks on an evolving graph (inductive: while learning task
// t it sees G_t, the subgraph induced by tasks 0..t), under one continual-learning
// framework, optionally with SSRM, the structural-shift regulariser (§B.3):
//
//   L_t = L_framework(theta) + beta * sum_{i<t} D(H_i^old, H_i^cur(theta))
//
// where H_i^cur are the penultimate representations of task i's stored nodes on G_t and D
// is MMD (multi-bandwidth RBF) or CMD (K = 5). The public face is torch-free (configs and
// plain results); the LibTorch code lives in the gil model library.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gil/block.hpp"
#include "gil/metrics.hpp"
#include "gil/replay_sampler.hpp"
#include "graph/attributed_graph.hpp"
#include "graph/incremental_tasks.hpp"

namespace mlsys::gil {

struct BackboneConfig {
  std::string name = "gcn";  // "gcn" | "sage" (GraphSAGE, mean aggregator) | "gat"
  int64_t hidden = 256;      // the penultimate width (GAT: heads x hidden / heads)
  int64_t gat_heads = 8;     // GAT only; hidden must be a multiple
  double dropout = 0.0;      // on the input and hidden features while training
};

struct TrainConfig {
  int64_t epochs = 100;           // passes over the training nodes per task
  int64_t batch_size = 0;         // 0: full batch (one step per epoch on G_t); else mini-batches of
                                  // this many training nodes, each on a sampled block (gil/block.hpp)
  Fanout fanout{10, 25};          // mini-batch neighbour sampling: first layer, last layer (-1 = all)
  double lr = 0.005;
  double weight_decay = 5e-4;     // AdamW's decoupled weight decay
  std::string setting = "task";   // "task" (task-IL: each task's own classes) | "class" (class-IL)
  bool class_balanced = true;     // CE weights 1/n_c (CGLB's cls_balance)
};

// The continual-learning frameworks (CGLB defaults, §B.4).
struct FrameworkConfig {
  std::string name = "ergnn";  // finetune | joint | ergnn | ewc | mas | twp | gem | lwf
  int64_t ergnn_budget = 60;   // ER-GNN replay nodes per task
  ReplaySamplerConfig ergnn_sampler;
  double ewc_strength = 1e4;   // EWC: weight of sum F (theta - theta*)^2
  double mas_strength = 1e4;   // MAS: weight of sum Omega (theta - theta*)^2
  double twp_lambda_l = 1e4;   // TWP: weight of |dL/dtheta| in the importance
  double twp_lambda_t = 1e4;   // TWP: weight of |dS/dtheta| (S: topology score) in the importance
  double gem_margin = 0.5;     // GEM: memory_strength (the QP's lower bound on the multipliers)
  int64_t gem_memories = 100;  // GEM: stored nodes per task
  double lwf_lambda = 1.0;     // LwF: distillation weight
  double lwf_temperature = 2.0;
};

struct SsrmConfig {
  double weight = 1.0;             // beta; 0 = SSRM off
  std::string distance = "mmd";    // "mmd" | "cmd"
  int64_t nodes_per_task = 60;     // stored nodes per task when the framework stores none
  // "recomputed": H_i^old = phi_theta(v; G_i) on task i's kept ego-nets, with the current
  // theta (so D measures the structural shift only, and is exactly 0 when no edge joins
  // the old nodes' neighbourhoods); "stored": H_i^old = phi_{theta_i}(v; G_i) kept when
  // task i ended (a detached target that also penalises parameter drift).
  std::string target = "recomputed";
};

struct IncrementalConfig {
  BackboneConfig model;
  TrainConfig train;
  FrameworkConfig framework;
  SsrmConfig ssrm;
  uint64_t seed = 0;
};

// A named parameter array as stored in an artifact ("/params/<name>").
struct NamedArray {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};

struct IncrementalResult {
  AccuracyMatrix acc;               // percent, CGLB's acc_matrix
  double ap = 0, af = 0;
  std::vector<double> shift_gap;    // per task i: acc(theta_i on G_i) - acc(theta_i on G_{T-1}), percent
  std::vector<double> shift_mmd;    // per task i: MMD(H_i(G_i), H_i(G_{T-1})) of its test nodes under theta_i
  std::vector<double> ssrm_term;    // per task t: sum_i D(H_i^old, H_i^cur) at the end of task t (0 for t = 0)
  std::vector<double> train_loss;   // per task: the last epoch's loss
  std::vector<int64_t> stored_nodes;  // per task t: the old-task nodes stored after it (replay buffer / SSRM nodes)
  std::vector<NamedArray> params;   // the final model
  double seconds = 0;
};

// Learns the tasks of `tasks` on `g` in order. ConfigError for a bad combination (GAT with
// hidden not a multiple of heads, an unknown framework or distance); RuntimeFailure on a
// stop request (SIGINT) or a non-finite loss.
IncrementalResult run_incremental(const graph::AttributedGraph& g, const graph::IncrementalTasks& tasks,
                                  const IncrementalConfig& c);

// Test accuracy (percent) of a saved model on every task of `tasks`, on the graph of the
// last task (and, in `on_own_graph`, on each task's own G_i). InputError naming `source`
// when a parameter is missing or has another shape than `model` gives for `g`.
struct SavedModelEval {
  std::vector<double> on_last_graph, on_own_graph;
  double ap = 0;
};
SavedModelEval evaluate_saved_model(const graph::AttributedGraph& g, const graph::IncrementalTasks& tasks,
                                    const BackboneConfig& model, const std::string& setting,
                                    const std::vector<NamedArray>& params, const std::string& source);

}  // namespace mlsys::gil
