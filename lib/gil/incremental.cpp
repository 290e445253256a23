// The incremental driver: task graphs, class ranges, the losses and accuracies of a step,
// SSRM's term over the kept ego-nets of old tasks' stored nodes, the accuracy matrix and
// the structural-shift diagnostics (shift gap and representation MMD under frozen models).
#include "gil/incremental.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.hpp"
#include "core/log_text.hpp"
#include "core/signals.hpp"
#include "core/timer.hpp"
#include "gil/distance.hpp"
#include "gil/frameworks.hpp"
#include "gil/task_context.hpp"
#include "graph/attributed_graph.hpp"
#include "nn/optim.hpp"

namespace mlsys::gil {

at::Tensor TaskGraph::rows(const std::vector<int64_t>& nodes) const {
  std::vector<int64_t> r(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    const int64_t l = local.at(static_cast<size_t>(nodes[i]));
    if (l < 0) {
      throw core::RuntimeFailure("node " + std::to_string(nodes[i]) + " is not in the graph of task " + std::to_string(task));
    }
    r[i] = l;
  }
  return at::tensor(r, at::TensorOptions().dtype(at::kLong));
}

TaskGraph make_task_graph(const graph::AttributedGraph& g, const graph::IncrementalTasks& tasks, int64_t t) {
  TaskGraph tg;
  tg.task = t;
  tg.sub = graph::task_graph(g, tasks, t);
  tg.tensors = to_tensors(tg.sub.graph);
  tg.local.assign(static_cast<size_t>(g.num_nodes), -1);
  for (size_t i = 0; i < tg.sub.nodes.size(); ++i) tg.local[static_cast<size_t>(tg.sub.nodes[i])] = static_cast<int64_t>(i);
  return tg;
}

ClassRange class_range(const graph::IncrementalTasks& tasks, const std::string& setting, int64_t node_task, int64_t now) {
  if (setting == "class") return {0, tasks.first_class(now) + tasks.classes_per_task};
  return {tasks.first_class(node_task), tasks.first_class(node_task) + tasks.classes_per_task};
}

at::Tensor masked_logits(const at::Tensor& logits, const TaskGraph& graph, const graph::IncrementalTasks& tasks,
                         const std::string& setting, const std::vector<int64_t>& nodes, int64_t now) {
  const int64_t classes = logits.size(1);
  std::vector<float> mask(nodes.size() * static_cast<size_t>(classes), -INFINITY);
  for (size_t i = 0; i < nodes.size(); ++i) {
    const ClassRange r = class_range(tasks, setting, tasks.task_of_node[static_cast<size_t>(nodes[i])], now);
    for (int64_t y = r.lo; y < r.hi; ++y) mask[i * static_cast<size_t>(classes) + static_cast<size_t>(y)] = 0.f;
  }
  const at::Tensor m = at::from_blob(mask.data(), {static_cast<int64_t>(nodes.size()), classes}, at::kFloat).clone();
  return logits.index_select(0, graph.rows(nodes)) + m;
}

at::Tensor TaskContext::masked_logits(const at::Tensor& logits, const std::vector<int64_t>& nodes) const {
  return gil::masked_logits(logits, graph, tasks, c.train.setting, nodes, t);
}

at::Tensor TaskContext::ce(const at::Tensor& logits, const std::vector<int64_t>& nodes) const {
  std::vector<int64_t> y(nodes.size());
  std::map<int64_t, double> count;
  for (size_t i = 0; i < nodes.size(); ++i) {
    y[i] = g.labels[static_cast<size_t>(nodes[i])];
    count[y[i]] += 1;
  }
  std::vector<float> w(nodes.size(), 1.f);
  if (c.train.class_balanced) {
    for (size_t i = 0; i < nodes.size(); ++i) w[i] = static_cast<float>(1.0 / count[y[i]]);
  }
  const at::Tensor logp = at::log_softmax(masked_logits(logits, nodes), 1);
  const at::Tensor yt = at::tensor(y, at::TensorOptions().dtype(at::kLong));
  const at::Tensor wt = at::tensor(w, at::kFloat);
  const at::Tensor nll = -logp.gather(1, yt.unsqueeze(1)).squeeze(1);
  return (nll * wt).sum() / wt.sum();
}

double accuracy(const Backbone& model, const TaskGraph& graph, const graph::AttributedGraph& g,
                const graph::IncrementalTasks& tasks, const std::string& setting, const std::vector<int64_t>& nodes,
                int64_t now) {
  if (nodes.empty()) return 0;
  at::NoGradGuard no_grad;
  const ForwardOut out = model.forward(graph.tensors, false);
  const at::Tensor pred = masked_logits(out.logits, graph, tasks, setting, nodes, now).argmax(1).contiguous();
  std::vector<int64_t> p(pred.data_ptr<int64_t>(), pred.data_ptr<int64_t>() + pred.numel()), y;
  for (int64_t v : nodes) y.push_back(g.labels[static_cast<size_t>(v)]);
  return 100.0 * class_balanced_accuracy(p, y);
}

namespace {

// Hops that determine a 2-layer model's output at a node: its 2-hop neighbourhood, and for
// GCN also the degrees of the 2-hop nodes (its normalisation), so 3 hops there.
int ego_hops(const BackboneConfig& c) { return c.name == "gcn" ? 3 : 2; }

// The subgraph around `seeds` (global ids) inside G_t that determines their representations,
// and the seeds' rows in it.
struct EgoNet {
  graph::AttributedGraph graph;
  std::vector<int64_t> seed_rows;
};

EgoNet make_ego_net(const graph::AttributedGraph& g, const TaskGraph& gt, const std::vector<int64_t>& seeds, int hops) {
  std::vector<int64_t> local_seeds;
  for (int64_t v : seeds) local_seeds.push_back(gt.local.at(static_cast<size_t>(v)));
  std::vector<int64_t> nodes;
  for (int64_t l : graph::k_hop_nodes(gt.sub.graph, local_seeds, hops)) nodes.push_back(gt.sub.nodes[static_cast<size_t>(l)]);
  EgoNet e;
  e.graph = graph::induced_subgraph(g, nodes).graph;
  for (int64_t v : seeds) e.seed_rows.push_back(std::lower_bound(nodes.begin(), nodes.end(), v) - nodes.begin());
  return e;
}

// Several ego-nets as one graph (graph::disjoint_union), so that one forward pass gives every
// old task's representations; rows[i] are the seeds of part i.
struct EgoNetUnion {
  GraphTensors tensors;
  std::vector<at::Tensor> rows;
};

EgoNetUnion make_union(const std::vector<const EgoNet*>& nets) {
  EgoNetUnion u;
  std::vector<const graph::AttributedGraph*> parts;
  int64_t base = 0;
  for (const EgoNet* e : nets) {
    parts.push_back(&e->graph);
    std::vector<int64_t> r;
    for (int64_t x : e->seed_rows) r.push_back(base + x);
    u.rows.push_back(at::tensor(r, at::TensorOptions().dtype(at::kLong)));
    base += e->graph.num_nodes;
  }
  u.tensors = to_tensors(graph::disjoint_union(parts));
  return u;
}

at::Tensor distance(const std::string& name, const at::Tensor& a, const at::Tensor& b) {
  return name == "cmd" ? cmd(a, b) : mmd(a, b);
}

// What SSRM keeps of an old task i: its stored nodes, their ego-net in G_i and (for the
// "stored" target) their representations when task i ended.
struct SsrmMemory {
  std::vector<int64_t> nodes;
  EgoNet old_net;
  at::Tensor old_hidden;
};

// sum_i D(H_i^old, H_i^cur): one forward over the union of the old tasks' ego-nets as they
// are in G_t, and for the recomputed target one over their ego-nets as they were in G_i.
// At lambda_x = 0 the two unions are the same graph, so the term is exactly 0.
at::Tensor ssrm_sum(const Backbone& model, const SsrmConfig& c, const std::vector<SsrmMemory>& memories,
                    const EgoNetUnion& cur, const EgoNetUnion& old) {
  at::Tensor s = at::zeros({});
  if (memories.empty()) return s;
  const at::Tensor h_cur = model.forward(cur.tensors, false).hidden;
  const at::Tensor h_old = c.target == "stored" ? at::Tensor() : model.forward(old.tensors, false).hidden;
  for (size_t i = 0; i < memories.size(); ++i) {
    const at::Tensor a = c.target == "stored" ? memories[i].old_hidden : h_old.index_select(0, old.rows[i]);
    s = s + distance(c.distance, a, h_cur.index_select(0, cur.rows[i]));
  }
  return s;
}

void check_config(const IncrementalConfig& c) {
  if (c.ssrm.distance != "mmd" && c.ssrm.distance != "cmd") {
    throw core::ConfigError("ssrm.distance '" + c.ssrm.distance + "': expected mmd or cmd");
  }
  if (c.ssrm.target != "recomputed" && c.ssrm.target != "stored") {
    throw core::ConfigError("ssrm.target '" + c.ssrm.target + "': expected recomputed or stored");
  }
  if (c.train.setting != "task" && c.train.setting != "class") {
    throw core::ConfigError("train.setting '" + c.train.setting + "': expected task or class");
  }
}

std::vector<NamedArray> to_named_arrays(const Backbone& model) {
  std::vector<NamedArray> out;
  for (const auto& [name, t] : model.named_parameters()) {
    const at::Tensor c = t.detach().contiguous();
    NamedArray a{name, c.sizes().vec(), std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel())};
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

IncrementalResult run_incremental(const graph::AttributedGraph& g, const graph::IncrementalTasks& tasks,
                                  const IncrementalConfig& c) {
  check_config(c);
  core::Timer timer;
  const int64_t T = tasks.num_tasks;
  Backbone model(c.model, g.feature_dim, g.num_classes, c.seed);
  std::unique_ptr<Framework> fw = make_framework(c.framework);
  at::Generator dropout_gen = at::make_generator<at::CPUGeneratorImpl>(c.seed + 1);

  IncrementalResult r;
  r.acc.tasks = T;
  r.acc.acc.assign(static_cast<size_t>(T * T), 0.0);
  std::vector<TaskGraph> graphs;
  std::vector<std::vector<at::Tensor>> frozen;  // theta_i, for the shift diagnostics
  std::vector<SsrmMemory> ssrm;
  const int hops = ego_hops(c.model);
  for (int64_t t = 0; t < T; ++t) {
    graphs.push_back(make_task_graph(g, tasks, t));
    const TaskGraph& gt = graphs.back();
    TaskContext ctx{g, tasks, c, model, gt, t};
    // The stored nodes' ego-nets as they are in G_t (the H^cur side of SSRM) and as they were.
    std::vector<EgoNet> cur_nets;
    for (const auto& m : ssrm) cur_nets.push_back(make_ego_net(g, gt, m.nodes, hops));
    std::vector<const EgoNet*> cur_parts, old_parts;
    for (size_t i = 0; i < ssrm.size(); ++i) {
      cur_parts.push_back(&cur_nets[i]);
      old_parts.push_back(&ssrm[i].old_net);
    }
    const EgoNetUnion cur_union = make_union(cur_parts), old_union = make_union(old_parts);
    auto ssrm_term = [&]() { return ssrm_sum(model, c.ssrm, ssrm, cur_union, old_union); };

    fw->begin_task(ctx);
    nn::AdamW opt(model.parameters(), {.weight_decay = c.train.weight_decay});
    double last_loss = 0;
    for (int64_t epoch = 0; epoch < c.train.epochs; ++epoch) {
      core::throw_if_stop_requested();
      opt.zero_grad();
      const ForwardOut out = model.forward(gt.tensors, true, &dropout_gen);
      at::Tensor loss = fw->loss(ctx, out);
      if (c.ssrm.weight > 0 && !ssrm.empty()) loss = loss + c.ssrm.weight * ssrm_term();
      last_loss = loss.item<double>();
      if (!std::isfinite(last_loss)) {
        throw core::RuntimeFailure("task " + std::to_string(t) + ", epoch " + std::to_string(epoch) + ": the loss is " +
                                   std::to_string(last_loss) + " (lower train.lr or the framework's strength)");
      }
      fw->before_backward(ctx, out);
      loss.backward();
      fw->adjust_gradients(ctx);
      opt.step(c.train.lr);
    }
    opt.zero_grad();
    r.train_loss.push_back(last_loss);
    {
      at::NoGradGuard no_grad;
      r.ssrm_term.push_back(ssrm.empty() ? 0.0 : ssrm_term().item<double>());
    }
    fw->end_task(ctx);

    // SSRM's memory of task t: the framework's stored nodes, or a seeded random set.
    SsrmMemory m;
    m.nodes = fw->stored_nodes(t);
    if (m.nodes.empty()) {
      ReplaySamplerConfig random;
      random.sampler = "random";
      m.nodes = select_replay_nodes(g, tasks.train[static_cast<size_t>(t)], c.ssrm.nodes_per_task, random,
                                    c.seed * 1000003 + 500 + static_cast<uint64_t>(t));
    }
    m.old_net = make_ego_net(g, gt, m.nodes, hops);
    {
      at::NoGradGuard no_grad;
      const EgoNetUnion own = make_union({&m.old_net});
      m.old_hidden = model.forward(own.tensors, false).hidden.index_select(0, own.rows[0]).detach();
    }
    ssrm.push_back(std::move(m));
    int64_t stored = 0;
    for (const auto& s : ssrm) stored += static_cast<int64_t>(s.nodes.size());
    r.stored_nodes.push_back(stored);

    for (int64_t j = 0; j <= t; ++j) {
      r.acc.at(t, j) = accuracy(model, gt, g, tasks, c.train.setting, tasks.test[static_cast<size_t>(j)], t);
    }
    frozen.push_back(model.snapshot());
    std::string row = "task " + std::to_string(t) + ": loss " + std::to_string(last_loss) + ", acc";
    for (int64_t j = 0; j <= t; ++j) row += " " + std::to_string(r.acc.at(t, j)).substr(0, 5);
    core::log_info(row);
  }
  r.ap = average_performance(r.acc);
  r.af = average_forgetting(r.acc);

  // Structural shift under frozen models: theta_i on its own G_i and on the last graph.
  const std::vector<at::Tensor> final_params = model.snapshot();
  const TaskGraph& last = graphs.back();
  for (int64_t i = 0; i < T; ++i) {
    model.restore(frozen[static_cast<size_t>(i)]);
    const auto& test = tasks.test[static_cast<size_t>(i)];
    const double own = accuracy(model, graphs[static_cast<size_t>(i)], g, tasks, c.train.setting, test, i);
    const double on_last = accuracy(model, last, g, tasks, c.train.setting, test, i);
    r.shift_gap.push_back(own - on_last);
    at::NoGradGuard no_grad;
    const at::Tensor h_own = model.forward(graphs[static_cast<size_t>(i)].tensors, false).hidden.index_select(0, graphs[static_cast<size_t>(i)].rows(test));
    const at::Tensor h_last = model.forward(last.tensors, false).hidden.index_select(0, last.rows(test));
    r.shift_mmd.push_back(mmd(h_own, h_last).item<double>());
  }
  model.restore(final_params);
  r.params = to_named_arrays(model);
  r.seconds = timer.seconds();
  return r;
}

SavedModelEval evaluate_saved_model(const graph::AttributedGraph& g, const graph::IncrementalTasks& tasks,
                                    const BackboneConfig& mc, const std::string& setting,
                                    const std::vector<NamedArray>& params, const std::string& source) {
  Backbone model(mc, g.feature_dim, g.num_classes, 0);
  std::vector<at::Tensor> values;
  for (const auto& [name, t] : model.named_parameters()) {
    auto it = std::find_if(params.begin(), params.end(), [&](const NamedArray& a) { return a.name == name; });
    if (it == params.end()) throw core::InputError(source + ": missing /params/" + name + " (a " + mc.name + " model)");
    if (it->shape != t.sizes().vec()) {
      std::string want, got;
      for (auto d : t.sizes()) want += (want.empty() ? "" : "x") + std::to_string(d);
      for (auto d : it->shape) got += (got.empty() ? "" : "x") + std::to_string(d);
      throw core::InputError(source + ": /params/" + name + ": expected shape " + want + " (model and data), found " + got);
    }
    values.push_back(at::from_blob(const_cast<float*>(it->data.data()), t.sizes(), at::kFloat).clone());
  }
  model.restore(values);
  SavedModelEval e;
  const TaskGraph last = make_task_graph(g, tasks, tasks.num_tasks - 1);
  for (int64_t i = 0; i < tasks.num_tasks; ++i) {
    const auto& test = tasks.test[static_cast<size_t>(i)];
    e.on_last_graph.push_back(accuracy(model, last, g, tasks, setting, test, tasks.num_tasks - 1));
    const TaskGraph own = make_task_graph(g, tasks, i);
    e.on_own_graph.push_back(accuracy(model, own, g, tasks, setting, test, tasks.num_tasks - 1));
  }
  e.ap = mean_std(e.on_last_graph).mean;
  return e;
}

}  // namespace mlsys::gil
