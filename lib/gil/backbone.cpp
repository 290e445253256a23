// GCN, GraphSAGE-mean and GAT, full batch, written with ATen's index_select / index_add
// so that autograd differentiates them and the CPU results are deterministic.
#include "gil/backbone.hpp"

#include <cmath>
#include <optional>

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.hpp"

namespace mlsys::gil {

GraphTensors to_tensors(const graph::AttributedGraph& g) {
  GraphTensors t;
  t.nodes = g.num_nodes;
  const auto n = static_cast<size_t>(g.num_nodes);
  std::vector<int64_t> src, dst;
  src.reserve(g.indices.size() + n);
  dst.reserve(g.indices.size() + n);
  for (int64_t v = 0; v < g.num_nodes; ++v) {
    for (int64_t e = g.indptr[static_cast<size_t>(v)]; e < g.indptr[static_cast<size_t>(v) + 1]; ++e) {
      src.push_back(g.indices[static_cast<size_t>(e)]);
      dst.push_back(v);
    }
  }
  t.first.neighbour_edges = static_cast<int64_t>(src.size());
  for (int64_t v = 0; v < g.num_nodes; ++v) {
    src.push_back(v);
    dst.push_back(v);
  }
  std::vector<float> norm(src.size()), inv(n);
  for (size_t e = 0; e < src.size(); ++e) {
    const auto du = static_cast<double>(g.degree(src[e]) + 1), dv = static_cast<double>(g.degree(dst[e]) + 1);
    norm[e] = static_cast<float>(1.0 / std::sqrt(du * dv));
  }
  for (size_t v = 0; v < n; ++v) {
    const int64_t d = g.degree(static_cast<int64_t>(v));
    inv[v] = d > 0 ? static_cast<float>(1.0 / static_cast<double>(d)) : 0.f;
  }
  const auto i64 = at::TensorOptions().dtype(at::kLong);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  t.first.src = at::tensor(src, i64);
  t.first.dst = at::tensor(dst, i64);
  t.first.gcn_norm = at::tensor(norm, f32);
  t.first.inv_degree = at::tensor(inv, f32);
  t.x = at::from_blob(const_cast<float*>(g.features.data()), {g.num_nodes, g.feature_dim}, f32).clone();
  return t;
}

namespace {
EdgeTensors layer_tensors(const BlockLayer& l) {
  EdgeTensors e;
  const auto i64 = at::TensorOptions().dtype(at::kLong);
  e.src = at::tensor(l.src, i64);
  e.dst = at::tensor(l.dst, i64);
  e.neighbour_edges = l.neighbour_edges;
  e.gcn_norm = at::tensor(l.gcn_weight, at::kFloat);
  e.inv_degree = at::tensor(l.inv_sampled, at::kFloat);
  return e;
}
}  // namespace

GraphTensors to_tensors(const Block& b) {
  GraphTensors t;
  t.nodes = b.rows;
  t.x = at::from_blob(const_cast<float*>(b.x.data()), {b.rows, b.feature_dim}, at::kFloat).clone();
  t.first = layer_tensors(b.first);
  t.last = layer_tensors(b.last);
  return t;
}

namespace {

// sum over edges u -> v of w_e * h_u, into v. `edges` limits to the first that many edges.
at::Tensor aggregate(int64_t nodes, const EdgeTensors& g, const at::Tensor& h, const at::Tensor& w, int64_t edges) {
  const at::Tensor src = g.src.narrow(0, 0, edges), dst = g.dst.narrow(0, 0, edges);
  at::Tensor msg = h.index_select(0, src);
  if (w.defined()) msg = msg * w.narrow(0, 0, edges).unsqueeze(1);
  return at::zeros({nodes, h.size(1)}, h.options()).index_add(0, dst, msg);
}

// Glorot-uniform weights (in x out), zero biases.
at::Tensor glorot(int64_t in, int64_t out, at::Generator& gen) {
  const double a = std::sqrt(6.0 / static_cast<double>(in + out));
  return at::empty({in, out}, at::kFloat).uniform_(-a, a, gen);
}

at::Tensor dropout(const at::Tensor& h, double p, bool training, at::Generator* gen) {
  if (!training || p <= 0) return h;
  at::Tensor keep = at::empty_like(h).bernoulli_(1.0 - p, gen ? std::optional<at::Generator>(*gen) : std::nullopt);
  return h * keep / (1.0 - p);
}

// One GAT layer: z = h W (nodes x heads x f); e_uv = LeakyReLU(a_l . z_u + a_r . z_v) over
// the edges into v (self loop included), softmax per v and head, out_v = sum_u alpha_uv z_u.
at::Tensor gat_layer(int64_t nodes, const EdgeTensors& g, const at::Tensor& h, const at::Tensor& w, const at::Tensor& al,
                     const at::Tensor& ar, int64_t heads) {
  const int64_t f = w.size(1) / heads;
  const at::Tensor z = at::matmul(h, w).view({nodes, heads, f});
  const at::Tensor el = (z * al.view({1, heads, f})).sum(-1), er = (z * ar.view({1, heads, f})).sum(-1);
  const at::Tensor e = at::leaky_relu(el.index_select(0, g.src) + er.index_select(0, g.dst), 0.2);  // E x heads
  // Per-destination maximum for a stable softmax (no gradient needed through it).
  const at::Tensor emax = at::full({nodes, heads}, -INFINITY, e.options())
                              .scatter_reduce(0, g.dst.unsqueeze(1).expand({-1, heads}), e.detach(), "amax", true);
  const at::Tensor ex = at::exp(e - emax.index_select(0, g.dst));
  const at::Tensor denom = at::zeros({nodes, heads}, e.options()).index_add(0, g.dst, ex);
  const at::Tensor alpha = ex / denom.index_select(0, g.dst);
  const at::Tensor msg = z.index_select(0, g.src) * alpha.unsqueeze(-1);
  return at::zeros({nodes, heads, f}, h.options()).index_add(0, g.dst, msg);
}

}  // namespace

at::Tensor& Backbone::add(const std::string& name, at::Tensor t) {
  params_.emplace_back(name, t.set_requires_grad(true));
  return params_.back().second;
}

Backbone::Backbone(const BackboneConfig& c, int64_t in_dim, int64_t classes, uint64_t seed)
    : c_(c), in_dim_(in_dim), classes_(classes) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int64_t h = c.hidden;
  if (c.name == "gcn") {
    add("layer1.weight", glorot(in_dim, h, gen));
    add("layer1.bias", at::zeros({h}));
    add("layer2.weight", glorot(h, classes, gen));
    add("layer2.bias", at::zeros({classes}));
  } else if (c.name == "sage") {
    add("layer1.weight_self", glorot(in_dim, h, gen));
    add("layer1.weight_neigh", glorot(in_dim, h, gen));
    add("layer1.bias", at::zeros({h}));
    add("layer2.weight_self", glorot(h, classes, gen));
    add("layer2.weight_neigh", glorot(h, classes, gen));
    add("layer2.bias", at::zeros({classes}));
  } else if (c.name == "gat") {
    if (c.gat_heads < 1 || h % c.gat_heads != 0) {
      throw core::ConfigError("model.hidden " + std::to_string(h) + " is not a multiple of model.gat_heads " +
                              std::to_string(c.gat_heads) + " (GAT concatenates its heads)");
    }
    const int64_t f = h / c.gat_heads;
    add("layer1.weight", glorot(in_dim, h, gen));
    add("layer1.attn_l", glorot(c.gat_heads, f, gen));
    add("layer1.attn_r", glorot(c.gat_heads, f, gen));
    add("layer1.bias", at::zeros({h}));
    add("layer2.weight", glorot(h, classes, gen));
    add("layer2.attn_l", glorot(1, classes, gen));
    add("layer2.attn_r", glorot(1, classes, gen));
    add("layer2.bias", at::zeros({classes}));
  } else {
    throw core::ConfigError("model.name '" + c.name + "': expected gcn, sage or gat");
  }
}

ForwardOut Backbone::forward(const GraphTensors& g, bool training, at::Generator* gen) const {
  ForwardOut o;
  const at::Tensor x = dropout(g.x, c_.dropout, training, gen);
  const EdgeTensors& e1 = g.layer(0);
  const EdgeTensors& e2 = g.layer(1);
  const int64_t n = g.nodes;
  if (c_.name == "gcn") {
    // Aggregate first on the narrow input (d < hidden), then transform.
    o.hidden = at::relu(at::matmul(aggregate(n, e1, x, e1.gcn_norm, e1.src.size(0)), p(0)) + p(1));
    const at::Tensor h = dropout(o.hidden, c_.dropout, training, gen);
    o.logits = aggregate(n, e2, at::matmul(h, p(2)), e2.gcn_norm, e2.src.size(0)) + p(3);
  } else if (c_.name == "sage") {
    o.hidden = at::relu(at::matmul(x, p(0)) +
                        at::matmul(aggregate(n, e1, x, {}, e1.neighbour_edges) * e1.inv_degree.unsqueeze(1), p(1)) + p(2));
    const at::Tensor h = dropout(o.hidden, c_.dropout, training, gen);
    o.logits = at::matmul(h, p(3)) + at::matmul(aggregate(n, e2, h, {}, e2.neighbour_edges) * e2.inv_degree.unsqueeze(1), p(4)) + p(5);
  } else {
    const int64_t heads = c_.gat_heads;
    o.hidden = at::elu(gat_layer(n, e1, x, p(0), p(1), p(2), heads).reshape({n, c_.hidden}) + p(3));
    const at::Tensor h = dropout(o.hidden, c_.dropout, training, gen);
    o.logits = gat_layer(n, e2, h, p(4), p(5), p(6), 1).reshape({n, classes_}) + p(7);
  }
  return o;
}

std::vector<at::Tensor> Backbone::parameters() const {
  std::vector<at::Tensor> out;
  for (const auto& [n, t] : params_) out.push_back(t);
  return out;
}

std::vector<at::Tensor> Backbone::snapshot() const {
  std::vector<at::Tensor> out;
  for (const auto& [n, t] : params_) out.push_back(t.detach().clone());
  return out;
}

void Backbone::restore(const std::vector<at::Tensor>& values) {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) params_[i].second.copy_(values[i]);
}

}  // namespace mlsys::gil
