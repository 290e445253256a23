// The incremental driver: task graphs, class ranges, the losses and accuracies of a step,
// SSRM's term over the exact blocks (2-hop computation graphs) of old tasks' stored nodes,
// full-batch and mini-batch steps, the accuracy matrix and
// the structural-shift diagnostics (shift gap and representation MMD under frozen models).
#include "gil/incremental.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.hpp"
#include "core/log_text.hpp"
#include "core/signals.hpp"
#include "core/timer.hpp"
#include "gil/block.hpp"
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

// The block of `nodes` (global ids, each in `gt`) with every neighbour: their exact
// representations on G_t from their 2-hop neighbourhood (and the 1-hop nodes' degrees).
Block exact_block(const TaskGraph& gt, const std::vector<int64_t>& nodes) {
  std::vector<int64_t> local;
  for (int64_t v : nodes) {
    const int64_t l = gt.local.at(static_cast<size_t>(v));
    if (l < 0) throw core::RuntimeFailure("node " + std::to_string(v) + " is not in the graph of task " + std::to_string(gt.task));
    local.push_back(l);
  }
  std::mt19937_64 unused(0);
  return build_block(gt.sub.graph, local, Fanout{}, unused);
}

// Several blocks as one graph, so that one forward pass gives every part's seeds; the seed
// rows of part i are seed_rows[offsets[i] .. offsets[i+1]).
struct BlockSet {
  GraphTensors tensors;
  at::Tensor seed_rows;
  std::vector<int64_t> offsets;
  [[nodiscard]] at::Tensor part(const at::Tensor& h, size_t i) const {
    return h.narrow(0, offsets[i], offsets[i + 1] - offsets[i]);
  }
};

BlockSet make_block_set(const std::vector<const Block*>& parts) {
  const BlockUnion u = block_union(parts);
  BlockSet s;
  s.tensors = to_tensors(u.block);
  s.seed_rows = at::tensor(u.block.seed_rows, at::TensorOptions().dtype(at::kLong));
  s.offsets = u.part_offsets;
  return s;
}

// A mini-batch step's graph: the sampled block of `seeds` in G_t, with only the seeds mapped
// to rows (any other node is refused by rows(), as its output is not a full computation).
TaskGraph sampled_step_graph(const graph::AttributedGraph& g, const TaskGraph& gt, const std::vector<int64_t>& seeds,
                             Fanout fanout, std::mt19937_64& rng) {
  std::vector<int64_t> local;
  for (int64_t v : seeds) local.push_back(gt.local.at(static_cast<size_t>(v)));
  const Block b = build_block(gt.sub.graph, local, fanout, rng);
  TaskGraph step;
  step.task = gt.task;
  step.tensors = to_tensors(b);
  step.local.assign(static_cast<size_t>(g.num_nodes), -1);
  for (size_t i = 0; i < seeds.size(); ++i) step.local[static_cast<size_t>(seeds[i])] = b.seed_rows[i];
  return step;
}

at::Tensor distance(const std::string& name, const at::Tensor& a, const at::Tensor& b) {
  return name == "cmd" ? cmd(a, b) : mmd(a, b);
}

// What SSRM keeps of an old task i: its stored nodes, their block in G_i and (for the
// "stored" target) their representations when task i ended.
struct SsrmMemory {
  std::vector<int64_t> nodes;
  Block old_block;
  at::Tensor old_hidden;
};

// sum_i D(H_i^old, H_i^cur): one forward over the old tasks' blocks as they are in G_t, and
// for the recomputed target one over their blocks as they were in G_i. At lambda_x = 0 the
// two block sets are the same graph, so the term is exactly 0.
at::Tensor ssrm_sum(const Backbone& model, const SsrmConfig& c, const std::vector<SsrmMemory>& memories,
                    const BlockSet& cur, const BlockSet& old) {
  at::Tensor s = at::zeros({});
  if (memories.empty()) return s;
  const at::Tensor h_cur = model.forward(cur.tensors, false).hidden.index_select(0, cur.seed_rows);
  const at::Tensor h_old =
      c.target == "stored" ? at::Tensor() : model.forward(old.tensors, false).hidden.index_select(0, old.seed_rows);
  for (size_t i = 0; i < memories.size(); ++i) {
    const at::Tensor a = c.target == "stored" ? memories[i].old_hidden : old.part(h_old, i);
    s = s + distance(c.distance, a, cur.part(h_cur, i));
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
  if (c.train.batch_size < 0) throw core::ConfigError("train.batch_size " + std::to_string(c.train.batch_size) + ": expected >= 0 (0 = full batch)");
  for (int64_t f : {c.train.fanout.first, c.train.fanout.last}) {
    if (f == 0 || f < -1) throw core::ConfigError("train.fanout " + std::to_string(f) + ": expected >= 1, or -1 for every neighbour");
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
  std::mt19937_64 batch_rng(c.seed * 1000003 + 777);  // mini-batch order and neighbour samples
  for (int64_t t = 0; t < T; ++t) {
    graphs.push_back(make_task_graph(g, tasks, t));
    const TaskGraph& gt = graphs.back();
    TaskContext ctx{g, tasks, c, model, gt, t};
    const std::vector<int64_t> train_nodes = fw->training_nodes(ctx);
    ctx.batch = &train_nodes;
    // The stored nodes' blocks as they are in G_t (the H^cur side of SSRM) and as they were.
    std::vector<Block> cur_blocks;
    for (const auto& m : ssrm) cur_blocks.push_back(exact_block(gt, m.nodes));
    std::vector<const Block*> cur_parts, old_parts;
    for (size_t i = 0; i < ssrm.size(); ++i) {
      cur_parts.push_back(&cur_blocks[i]);
      old_parts.push_back(&ssrm[i].old_block);
    }
    const BlockSet cur_set = make_block_set(cur_parts), old_set = make_block_set(old_parts);
    auto ssrm_term = [&]() { return ssrm_sum(model, c.ssrm, ssrm, cur_set, old_set); };

    fw->begin_task(ctx);
    nn::AdamW opt(model.parameters(), {.weight_decay = c.train.weight_decay});
    // One optimiser step on `step` (G_t, or a mini-batch's block): the framework's loss over
    // its batch, plus SSRM's term, which is always computed on the exact blocks.
    auto train_step = [&](const TaskContext& step, int64_t epoch) {
      opt.zero_grad();
      const ForwardOut out = model.forward(step.graph.tensors, true, &dropout_gen);
      at::Tensor loss = fw->loss(step, out);
      if (c.ssrm.weight > 0 && !ssrm.empty()) loss = loss + c.ssrm.weight * ssrm_term();
      const double value = loss.item<double>();
      if (!std::isfinite(value)) {
        throw core::RuntimeFailure("task " + std::to_string(t) + ", epoch " + std::to_string(epoch) + ": the loss is " +
                                   std::to_string(value) + " (lower train.lr or the framework's strength)");
      }
      fw->before_backward(step, out);
      loss.backward();
      fw->adjust_gradients(step);
      opt.step(c.train.lr);
      return value;
    };
    double last_loss = 0;
    for (int64_t epoch = 0; epoch < c.train.epochs; ++epoch) {
      core::throw_if_stop_requested();
      if (c.train.batch_size == 0) {
        last_loss = train_step(ctx, epoch);
        continue;
      }
      // Mini-batches: the training nodes shuffled, each batch with the replayed nodes as the
      // seeds of a block sampled with the fan-outs; the epoch's loss is the batches' mean.
      std::vector<int64_t> order = train_nodes;
      std::shuffle(order.begin(), order.end(), batch_rng);
      const std::vector<int64_t> replayed = fw->replayed_nodes(ctx);
      double sum = 0;
      int64_t batches = 0;
      for (size_t b = 0; b < order.size(); b += static_cast<size_t>(c.train.batch_size)) {
        const size_t e = std::min(order.size(), b + static_cast<size_t>(c.train.batch_size));
        const std::vector<int64_t> batch(order.begin() + static_cast<std::ptrdiff_t>(b), order.begin() + static_cast<std::ptrdiff_t>(e));
        std::vector<int64_t> seeds = batch;
        std::vector<int64_t> in_batch = batch;
        std::sort(in_batch.begin(), in_batch.end());
        for (int64_t v : replayed) {
          if (!std::binary_search(in_batch.begin(), in_batch.end(), v)) seeds.push_back(v);
        }
        const TaskGraph step_graph = sampled_step_graph(g, gt, seeds, c.train.fanout, batch_rng);
        const TaskContext step{g, tasks, c, model, step_graph, t, &batch};
        sum += train_step(step, epoch);
        ++batches;
      }
      last_loss = batches > 0 ? sum / static_cast<double>(batches) : 0.0;
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
    m.old_block = exact_block(gt, m.nodes);
    {
      at::NoGradGuard no_grad;
      const BlockSet own = make_block_set({&m.old_block});
      m.old_hidden = model.forward(own.tensors, false).hidden.index_select(0, own.seed_rows).detach();
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
