// fine-tune, joint, ER-GNN, EWC, MAS, TWP, GEM and LwF over the steps of the incremental
// driver (full batch on G_t, or mini-batches on sampled blocks of it). The importances of
// EWC, MAS and TWP and LwF's targets are taken from one full-batch pass over G_t.
#include "gil/frameworks.hpp"

#include <algorithm>
#include <map>

#include "core/error.hpp"
#include "gil/replay_sampler.hpp"

namespace mlsys::gil {
namespace {

const std::vector<int64_t>& train_of(const TaskContext& ctx, int64_t t) { return ctx.tasks.train[static_cast<size_t>(t)]; }

// Fine-tune ("bare"): the current task's loss only; the lower bound.
class Finetune : public Framework {
 public:
  at::Tensor loss(const TaskContext& ctx, const ForwardOut& out) override { return ctx.ce(out.logits, ctx.batch_nodes()); }
};

// Joint: every task's training nodes up to t (each in its own class range); the upper bound.
class Joint : public Framework {
 public:
  [[nodiscard]] std::vector<int64_t> training_nodes(const TaskContext& ctx) const override {
    std::vector<int64_t> all;
    for (int64_t i = 0; i <= ctx.t; ++i) all.insert(all.end(), train_of(ctx, i).begin(), train_of(ctx, i).end());
    return all;
  }
  at::Tensor loss(const TaskContext& ctx, const ForwardOut& out) override { return ctx.ce(out.logits, ctx.batch_nodes()); }
};

// ER-GNN (Zhou and Cao 2021, CGLB ergnn_model.py): a buffer of `budget` training nodes per
// task, replayed on the current graph; loss = b L_new + (1 - b) L_buffer with
// b = |buffer| / (|buffer| + |new training nodes of the step|).
class ErGnn : public Framework {
 public:
  explicit ErGnn(const FrameworkConfig& c) : c_(c) {}
  [[nodiscard]] std::vector<int64_t> replayed_nodes(const TaskContext& ctx) const override {
    std::vector<int64_t> buffer;
    for (int64_t i = 0; i < ctx.t; ++i) buffer.insert(buffer.end(), buffer_[static_cast<size_t>(i)].begin(), buffer_[static_cast<size_t>(i)].end());
    return buffer;
  }
  at::Tensor loss(const TaskContext& ctx, const ForwardOut& out) override {
    const at::Tensor l_new = ctx.ce(out.logits, ctx.batch_nodes());
    const std::vector<int64_t> buffer = replayed_nodes(ctx);
    if (buffer.empty()) return l_new;
    const auto nb = static_cast<double>(buffer.size()), nn = static_cast<double>(ctx.batch_nodes().size());
    const double b = nb / (nb + nn);
    return b * l_new + (1.0 - b) * ctx.ce(out.logits, buffer);
  }
  void end_task(const TaskContext& ctx) override {
    buffer_.push_back(select_replay_nodes(ctx.g, train_of(ctx, ctx.t), c_.ergnn_budget, c_.ergnn_sampler,
                                          ctx.c.seed * 1000003 + static_cast<uint64_t>(ctx.t)));
  }
  [[nodiscard]] std::vector<int64_t> stored_nodes(int64_t task) const override { return buffer_.at(static_cast<size_t>(task)); }

 private:
  FrameworkConfig c_;
  std::vector<std::vector<int64_t>> buffer_;
};

// The quadratic penalty sum_i strength * sum Omega_i (theta - theta_i*)^2 of EWC, MAS and
// TWP, which differ only in the importance Omega_i they record when task i ends.
class WeightPreserving : public Framework {
 public:
  explicit WeightPreserving(double strength) : strength_(strength) {}
  at::Tensor loss(const TaskContext& ctx, const ForwardOut& out) override {
    at::Tensor l = ctx.ce(out.logits, ctx.batch_nodes());
    const auto params = ctx.model.parameters();
    for (size_t i = 0; i < importance_.size(); ++i) {
      for (size_t k = 0; k < params.size(); ++k) {
        l = l + strength_ * (importance_[i][k] * (params[k] - optimum_[i][k]).pow(2)).sum();
      }
    }
    return l;
  }
  void end_task(const TaskContext& ctx) override {
    importance_.push_back(importance(ctx));
    optimum_.push_back(ctx.model.snapshot());
  }

 protected:
  virtual std::vector<at::Tensor> importance(const TaskContext& ctx) = 0;
  // |d f / d theta| (or its square) for a scalar f of one forward pass on G_t.
  static std::vector<at::Tensor> gradients(const TaskContext& ctx, const at::Tensor& f, bool square) {
    auto params = ctx.model.parameters();
    for (auto& p : params) p.mutable_grad() = at::Tensor();
    f.backward();
    std::vector<at::Tensor> out;
    for (auto& p : params) {
      const at::Tensor gr = p.grad().defined() ? p.grad().detach().clone() : at::zeros_like(p);
      out.push_back(square ? gr * gr : gr.abs());
      p.mutable_grad() = at::Tensor();
    }
    return out;
  }

 private:
  double strength_;
  std::vector<std::vector<at::Tensor>> importance_, optimum_;
};

// EWC (Kirkpatrick et al. 2017; CGLB ewc_model.py): Omega = the squared gradient of the
// task's loss at its end (the empirical Fisher diagonal of one full batch).
class Ewc : public WeightPreserving {
 public:
  explicit Ewc(const FrameworkConfig& c) : WeightPreserving(c.ewc_strength) {}

 protected:
  std::vector<at::Tensor> importance(const TaskContext& ctx) override {
    const ForwardOut out = ctx.model.forward(ctx.graph.tensors, false);
    return gradients(ctx, ctx.ce(out.logits, train_of(ctx, ctx.t)), true);
  }
};

// MAS (Aljundi et al. 2018; CGLB mas_model.py): Omega = |d mean(logits^2) / d theta| over the
// task's training nodes and classes (the sensitivity of the output, needing no labels).
class Mas : public WeightPreserving {
 public:
  explicit Mas(const FrameworkConfig& c) : WeightPreserving(c.mas_strength) {}

 protected:
  std::vector<at::Tensor> importance(const TaskContext& ctx) override {
    const ForwardOut out = ctx.model.forward(ctx.graph.tensors, false);
    const ClassRange r = class_range(ctx.tasks, "task", ctx.t, ctx.t);
    const at::Tensor z = out.logits.index_select(0, ctx.graph.rows(train_of(ctx, ctx.t))).narrow(1, r.lo, r.hi - r.lo);
    return gradients(ctx, z.pow(2).mean(), false);
  }
};

// TWP (Liu et al. AAAI 2021; CGLB twp_model.py): Omega = lambda_l |dL/dtheta| +
// lambda_t |dS/dtheta|, S a topology score. CGLB takes S from GAT's attention; here, so that
// one definition serves GCN, GraphSAGE and GAT, S is the L2 norm of the penultimate
// representations' inner products h_u . h_v over the edges into the task's training nodes.
// (CGLB's extra beta * ||grad||_1 term is computed from detached gradients, a constant that
// changes nothing, and is left out.)
class Twp : public WeightPreserving {
 public:
  explicit Twp(const FrameworkConfig& c) : WeightPreserving(1.0), c_(c) {}

 protected:
  std::vector<at::Tensor> importance(const TaskContext& ctx) override {
    const ForwardOut o1 = ctx.model.forward(ctx.graph.tensors, false);
    std::vector<at::Tensor> gl = gradients(ctx, ctx.ce(o1.logits, train_of(ctx, ctx.t)), false);
    const ForwardOut o2 = ctx.model.forward(ctx.graph.tensors, false);
    const GraphTensors& gt = ctx.graph.tensors;
    const EdgeTensors& edges = gt.layer(0);
    const at::Tensor src = edges.src.narrow(0, 0, edges.neighbour_edges), dst = edges.dst.narrow(0, 0, edges.neighbour_edges);
    // Edges whose head is a training node of the task.
    at::Tensor is_train = at::zeros({gt.nodes}, at::kBool);
    is_train.index_fill_(0, ctx.graph.rows(train_of(ctx, ctx.t)), true);
    const at::Tensor keep = is_train.index_select(0, dst).nonzero().squeeze(1);
    const at::Tensor e = (o2.hidden.index_select(0, src.index_select(0, keep)) * o2.hidden.index_select(0, dst.index_select(0, keep))).sum(1);
    std::vector<at::Tensor> gtop = gradients(ctx, e.norm(), false);
    for (size_t k = 0; k < gl.size(); ++k) gl[k] = c_.twp_lambda_l * gl[k] + c_.twp_lambda_t * gtop[k];
    return gl;
  }

 private:
  FrameworkConfig c_;
};

// GEM (Lopez-Paz and Ranzato 2017; CGLB gem_model.py): each old task keeps `memories`
// training nodes; when the step's gradient g has a negative inner product with an old
// task's memory gradient, g is replaced by g + G^T v, v >= margin minimising
// 1/2 v^T G G^T v + (G g)^T v (the dual of GEM's QP, solved by projected coordinate descent).
class Gem : public Framework {
 public:
  explicit Gem(const FrameworkConfig& c) : c_(c) {}
  [[nodiscard]] std::vector<int64_t> replayed_nodes(const TaskContext& ctx) const override {
    std::vector<int64_t> all;
    for (int64_t i = 0; i < ctx.t; ++i) all.insert(all.end(), memories_[static_cast<size_t>(i)].begin(), memories_[static_cast<size_t>(i)].end());
    return all;
  }
  at::Tensor loss(const TaskContext& ctx, const ForwardOut& out) override { return ctx.ce(out.logits, ctx.batch_nodes()); }
  void before_backward(const TaskContext& ctx, const ForwardOut& out) override {
    old_grads_.clear();
    auto params = ctx.model.parameters();
    for (int64_t i = 0; i < ctx.t; ++i) {
      for (auto& p : params) p.mutable_grad() = at::Tensor();
      ctx.ce(out.logits, memories_[static_cast<size_t>(i)]).backward({}, /*retain_graph=*/true);
      old_grads_.push_back(flat_grad(params));
    }
    for (auto& p : params) p.mutable_grad() = at::Tensor();
  }
  void adjust_gradients(const TaskContext& ctx) override {
    if (old_grads_.empty()) return;
    auto params = ctx.model.parameters();
    const at::Tensor g = flat_grad(params);
    const at::Tensor G = at::stack(old_grads_);  // tasks x P
    if ((at::matmul(G, g) < 0).sum().item<int64_t>() == 0) return;
    const at::Tensor gram = at::matmul(G, G.t()).to(at::kDouble);
    const at::Tensor lin = at::matmul(G, g).to(at::kDouble);
    const int64_t n = gram.size(0);
    std::vector<double> P(static_cast<size_t>(n * n)), q(static_cast<size_t>(n)), v(static_cast<size_t>(n), c_.gem_margin);
    for (int64_t a = 0; a < n; ++a) {
      q[static_cast<size_t>(a)] = lin[a].item<double>();
      for (int64_t b = 0; b < n; ++b) P[static_cast<size_t>(a * n + b)] = gram[a][b].item<double>() + (a == b ? 1e-3 : 0.0);
    }
    for (int it = 0; it < 200; ++it) {
      for (int64_t a = 0; a < n; ++a) {
        double r = q[static_cast<size_t>(a)];
        for (int64_t b = 0; b < n; ++b) r += P[static_cast<size_t>(a * n + b)] * v[static_cast<size_t>(b)];
        v[static_cast<size_t>(a)] = std::max(c_.gem_margin, v[static_cast<size_t>(a)] - r / P[static_cast<size_t>(a * n + a)]);
      }
    }
    const at::Tensor vt = at::tensor(std::vector<float>(v.begin(), v.end()), at::kFloat);
    const at::Tensor projected = g + at::matmul(G.t(), vt);
    int64_t off = 0;
    at::NoGradGuard no_grad;
    for (auto& p : params) {
      const int64_t m = p.numel();
      if (p.grad().defined()) p.mutable_grad().copy_(projected.narrow(0, off, m).view_as(p));
      off += m;
    }
  }
  void end_task(const TaskContext& ctx) override {
    ReplaySamplerConfig random;
    random.sampler = "random";
    memories_.push_back(select_replay_nodes(ctx.g, train_of(ctx, ctx.t), c_.gem_memories, random,
                                            ctx.c.seed * 1000003 + static_cast<uint64_t>(ctx.t)));
  }
  [[nodiscard]] std::vector<int64_t> stored_nodes(int64_t task) const override { return memories_.at(static_cast<size_t>(task)); }

 private:
  static at::Tensor flat_grad(const std::vector<at::Tensor>& params) {
    std::vector<at::Tensor> parts;
    for (const auto& p : params) parts.push_back(p.grad().defined() ? p.grad().detach().reshape(-1).clone() : at::zeros({p.numel()}));
    return at::cat(parts);
  }
  FrameworkConfig c_;
  std::vector<std::vector<int64_t>> memories_;
  std::vector<at::Tensor> old_grads_;
};

// LwF (Li and Hoiem 2017; CGLB lwf_model.py): the old model's outputs on the new task's
// training nodes, recorded before the task starts, distilled into each old task's classes
// with temperature T: lambda * mean_j KL-style cross-entropy(softmax(z_old/T), log_softmax(z/T)).
class Lwf : public Framework {
 public:
  explicit Lwf(const FrameworkConfig& c) : c_(c) {}
  void begin_task(const TaskContext& ctx) override {
    if (ctx.t == 0) return;
    at::NoGradGuard no_grad;
    const ForwardOut out = ctx.model.forward(ctx.graph.tensors, false);
    const auto& nodes = train_of(ctx, ctx.t);
    target_ = out.logits.index_select(0, ctx.graph.rows(nodes)).detach();
    target_row_.clear();
    for (size_t i = 0; i < nodes.size(); ++i) target_row_[nodes[i]] = static_cast<int64_t>(i);
  }
  at::Tensor loss(const TaskContext& ctx, const ForwardOut& out) override {
    at::Tensor l = ctx.ce(out.logits, ctx.batch_nodes());
    if (ctx.t == 0) return l;
    const at::Tensor z = out.logits.index_select(0, ctx.graph.rows(ctx.batch_nodes()));
    std::vector<int64_t> rows;
    for (int64_t v : ctx.batch_nodes()) rows.push_back(target_row_.at(v));
    const at::Tensor target = target_.index_select(0, at::tensor(rows, at::TensorOptions().dtype(at::kLong)));
    const double T = c_.lwf_temperature;
    at::Tensor kd = at::zeros({}, z.options());
    for (int64_t j = 0; j < ctx.t; ++j) {
      const ClassRange r = class_range(ctx.tasks, "task", j, j);
      const at::Tensor p_old = at::softmax(target.narrow(1, r.lo, r.hi - r.lo) / T, 1);
      const at::Tensor logp = at::log_softmax(z.narrow(1, r.lo, r.hi - r.lo) / T, 1);
      kd = kd - (p_old * logp).sum(1).mean();
    }
    return l + c_.lwf_lambda * kd / static_cast<double>(ctx.t);
  }

 private:
  FrameworkConfig c_;
  at::Tensor target_;                      // the old model's logits on the task's training nodes
  std::map<int64_t, int64_t> target_row_;  // training node -> its row of target_
};

}  // namespace

std::vector<int64_t> Framework::training_nodes(const TaskContext& ctx) const { return train_of(ctx, ctx.t); }

std::unique_ptr<Framework> make_framework(const FrameworkConfig& c) {
  if (c.name == "finetune") return std::make_unique<Finetune>();
  if (c.name == "joint") return std::make_unique<Joint>();
  if (c.name == "ergnn") return std::make_unique<ErGnn>(c);
  if (c.name == "ewc") return std::make_unique<Ewc>(c);
  if (c.name == "mas") return std::make_unique<Mas>(c);
  if (c.name == "twp") return std::make_unique<Twp>(c);
  if (c.name == "gem") return std::make_unique<Gem>(c);
  if (c.name == "lwf") return std::make_unique<Lwf>(c);
  throw core::ConfigError("framework.name '" + c.name + "': expected finetune, joint, ergnn, ewc, mas, twp, gem or lwf");
}

}  // namespace mlsys::gil
