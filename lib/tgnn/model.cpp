// TGN / JODIE / APAN / DyRep on ATen with autograd: the model's assembly. Parameters are
// plain leaf tensors registered by name, the layers are ATen ops (linear, layer_norm, the
// RNN cell; the GRU cell's arithmetic is kernels::gru_cell), Adam is nn::AdamW. The stages
// of a batch live beside this file (model_impl.hpp lists them).
// Speed (bench/tgnn/README.md): every linear map is applied once per distinct input it
// sees in a batch (node, (node, time) pair) and the results gathered, rather than once per
// row of the concatenated input; the temporal attention runs in a factored form (GEMMs per
// root, kernels::slot_attention per slot); the time encoding is one kernel
// (kernels::time_encode); fp32 GEMMs go through OpenBLAS (kernels::linear_rows) with
// hand-written backward passes, as custom autograd functions (autograd_ops.hpp).
#include "tgnn/model.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>

#include "core/error.hpp"
#include "core/signals.hpp"
#include "core/timer.hpp"
#include "kernels/dispatch.hpp"
#include "nn/optim.hpp"
#include "tensor/h5_tensor.hpp"
#include "tgnn/autograd_ops.hpp"
#include "graph/block_store.hpp"
#include "graph/temporal_sampling.hpp"
#include "tgnn/model_impl.hpp"

namespace mlsys::tgnn {

void ModelConfig::resolve() {
  if (updater.empty()) updater = name == "tgn" ? "gru" : (name == "apan" ? "attention" : "rnn");
  if (embedding.empty()) embedding = name == "tgn" ? "attention" : (name == "jodie" ? "time" : "identity");
  if (deliver_to.empty()) deliver_to = name == "apan" ? "neighbors" : "self";
  if (message.empty()) message = name == "dyrep" ? "attention" : "memory";
}

void dropout_scales(std::mt19937_64& rng, double p, float* out, int64_t n) {
  if (!(p >= 0.0 && p < 1.0)) throw std::invalid_argument("tgnn::dropout_scales: p must be in [0, 1), got " + std::to_string(p));
  const auto scale = static_cast<float>(1.0 / (1.0 - p));
  const auto threshold = static_cast<uint64_t>(std::ldexp(1.0 - p, 32));  // keep when u < threshold
  for (int64_t i = 0; i < n; i += 2) {
    const uint64_t w = rng();
    out[i] = (w & 0xffffffffULL) < threshold ? scale : 0.0F;
    if (i + 1 < n) out[i + 1] = (w >> 32) < threshold ? scale : 0.0F;
  }
}

using detail::gather;
using detail::LinearRowsFn;
using detail::TimeEncodeFn;
using detail::to_float;
using detail::to_long;

TemporalModel::Impl::Impl(const ModelConfig& c, const graph::EventStream& d, uint64_t seed) : cfg(c), data(d), rng(seed), drop_rng(seed ^ 0x9e3779b97f4a7c15ULL) {
  cfg.resolve();
  at::manual_seed(seed);
  N = d.num_nodes, De = d.edge_dim, Dn = d.node_dim;
  dm = cfg.memory_dim, dt = cfg.time_dim;
  attention = cfg.embedding == "attention";
  time_proj = cfg.embedding == "time";
  apan_updater = cfg.updater == "attention";
  dyrep_message = cfg.message == "attention";
  deliver_neighbors = cfg.deliver_to == "neighbors";
  by_time = apan_updater || cfg.memory_time == "query";
  self_mail = cfg.use_memory && !apan_updater && !by_time && !deliver_neighbors;
  bf16 = cfg.precision == "bf16";
  S = apan_updater ? cfg.mailbox_size : 1;
  dz = attention ? cfg.embed_dim : dm;
  // A mail is [s_self || s_other || e]; DyRep puts the other endpoint's attention
  // embedding (embed_dim wide) in place of its memory.
  mail_dim = dm + (dyrep_message ? cfg.embed_dim : dm) + De;
  if (De > 0) edge_feat = to_float(d.edge_feat).view({static_cast<int64_t>(d.size()), De});
  if (Dn > 0) node_feat = to_float(d.node_feat).view({N, Dn});
  // Time encoding phi(dt) = cos(w dt + b), w_i = 10^(-9 i / (d_t - 1)) (TGL TimeEncode).
  add("time_encoder.w", at::pow(10.0, at::linspace(0, -9, dt, at::kFloat)));
  add("time_encoder.b", at::zeros({dt}));
  if (apan_updater) {
    // TGL's TransformerMemoryUpdater: w_q on the memory, w_k/w_v on [mail || phi].
    linear("memory_updater.w_q", dm, dm);
    linear("memory_updater.w_k", dm, mail_dim + dt);
    linear("memory_updater.w_v", dm, mail_dim + dt);
    add("memory_updater.layer_norm.weight", at::ones({dm}));
    add("memory_updater.layer_norm.bias", at::zeros({dm}));
    linear("memory_updater.mlp", dm, dm);
  } else {
    const int64_t gates = cfg.updater == "gru" ? 3 * dm : dm;
    const double bu = 1.0 / std::sqrt(static_cast<double>(dm));
    add("memory_updater.weight_ih", uniform({gates, mail_dim + dt}, bu));
    add("memory_updater.weight_hh", uniform({gates, dm}, bu));
    add("memory_updater.bias_ih", uniform({gates}, bu));
    add("memory_updater.bias_hh", uniform({gates}, bu));
  }
  if (Dn > 0) linear("node_proj", dm, Dn);
  if (attention || dyrep_message) {
    const int64_t de = cfg.embed_dim;
    linear("attention.w_q", de, dm + dt);
    linear("attention.w_k", de, dm + De + dt);
    linear("attention.w_v", de, dm + De + dt);
    linear("attention.w_out", de, de + dm);
    add("attention.layer_norm.weight", at::ones({de}));
    add("attention.layer_norm.bias", at::zeros({de}));
  }
  if (time_proj) {
    add("time_projection.weight", at::randn({dm, 1}) * 0.1);
    add("time_projection.bias", at::zeros({dm}));
  }
  linear("edge_predictor.src", dz, dz);
  linear("edge_predictor.dst", dz, dz);
  linear("edge_predictor.out", 1, dz);
  std::vector<at::Tensor> leaves;
  for (const auto& [n, p] : params) leaves.push_back(p);
  opt.emplace(std::move(leaves), nn::AdamWConfig{0.9, 0.999, 1e-8, 0.0});
  stamp.assign(static_cast<size_t>(N), -1);
  node_slot.assign(static_cast<size_t>(N), -1);
  edge_slot.assign(d.size(), -1);
  reset_memory();
}

at::Tensor TemporalModel::Impl::uniform(at::IntArrayRef shape, double bound) { return at::rand(shape) * (2 * bound) - bound; }
                                        
                                        void TemporalModel::Impl::add(const std::string& name, at::Tensor t) { params.emplace_back(name, t.contiguous().set_requires_grad(true)); }
                                        
                                        // torch.nn.Linear's initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
                                        void TemporalModel::Impl::linear(const std::string& name, int64_t out, int64_t in) {
  const double b = 1.0 / std::sqrt(static_cast<double>(in));
  add(name + ".weight", uniform({out, in}, b));
  add(name + ".bias", uniform({out}, b));
}

const at::Tensor& TemporalModel::Impl::P(const std::string& name) const {
  for (const auto& [n, p] : params) {
    if (n == name) return p;
  }
  throw std::logic_error("tgnn: no parameter " + name);
}

// x W^T (+ b) in the configured precision. fp32: kernels::linear_rows (OpenBLAS) with its
// own backward. bf16: both factors rounded to bfloat16, the
// rows padded to a multiple of 256 (oneDNN compiles a kernel per GEMM shape; a batch's
// row counts vary, their buckets repeat), the product back in float32, then the bias.
at::Tensor TemporalModel::Impl::mm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const {
  if (!bf16) {
    if (cfg.aten_gemm) return at::linear(x, w, b);
    if (!at::GradMode::is_enabled()) return kernels::linear_rows(x, w, b);
    return LinearRowsFn::apply(x, w, b.defined() ? b : at::empty({0}));
  }
  const int64_t M = x.size(0), Mp = (M + 255) / 256 * 256;
  at::Tensor xb = x.to(at::kBFloat16);
  if (Mp != M) xb = at::constant_pad_nd(xb, {0, 0, 0, Mp - M});
  at::Tensor y = at::linear(xb, w.to(at::kBFloat16)).narrow(0, 0, M).to(at::kFloat);
  return b.defined() ? y + b : y;
}

at::Tensor TemporalModel::Impl::lin(const at::Tensor& x, const std::string& name) const { return mm(x, P(name + ".weight"), P(name + ".bias")); }
                                    
                                    // K and V of an attention as one GEMM: [W_k; W_v] and [b_k; b_v].
                                    std::pair<at::Tensor, at::Tensor> TemporalModel::Impl::fused_kv(const std::string& prefix) const {
  return {at::cat({P(prefix + ".w_k.weight"), P(prefix + ".w_v.weight")}, 0),
          at::cat({P(prefix + ".w_k.bias"), P(prefix + ".w_v.bias")}, 0)};
}

at::Tensor TemporalModel::Impl::phi(const at::Tensor& delta) const {
  const at::Tensor &w = P("time_encoder.w"), &b = P("time_encoder.b");
  if (!at::GradMode::is_enabled()) return kernels::time_encode(delta, w, b, false).first;
  return TimeEncodeFn::apply(delta, w, b);
}

// dropout_scales as a tensor, from drop_rng. (ATen's bernoulli_ draws one 64-bit number
// per unit through its generator and took ~2% of a TGN epoch; this is ~10x cheaper.)
at::Tensor TemporalModel::Impl::keep_scales(int64_t n, double p) const {
  at::Tensor k = at::empty({n});
  dropout_scales(drop_rng, p, k.mutable_data_ptr<float>(), n);
  return k;
}

// Dropout with rate p (identity unless training).
at::Tensor TemporalModel::Impl::dropout(const at::Tensor& x, double p, bool train) const {
  if (!train || p <= 0) return x;
  if (p >= 1) return x * 0.0;
  return x * keep_scales(x.numel(), p).view(x.sizes());
}

// TGL's edge predictor on [src (B) || dst (B) || neg (B q)] embeddings: scores of
// (src, dst) and of (src, each negative). W_s z_src runs once and is shared by the
// positive and the negative pairs; W_d runs on dst and negatives in one GEMM.
std::pair<at::Tensor, at::Tensor> TemporalModel::Impl::predict(const at::Tensor& z, int64_t B, int64_t q) const {
  // split, not narrow: one backward node that assembles the gradient, where each narrow
  // would build a zero tensor of the full size for its block.
  const auto zs = z.split_with_sizes({B, B * (1 + q)});
  const at::Tensor ps = lin(zs[0], "edge_predictor.src");
  const at::Tensor pd = lin(zs[1], "edge_predictor.dst");
  auto head = [&](const at::Tensor& x) { return lin(at::relu(x), "edge_predictor.out").squeeze(1); };
  if (q == 0) return {head(ps + pd), at::Tensor()};
  const auto pds = pd.split_with_sizes({B, B * q});
  return {head(ps + pds[0]), head((q == 1 ? ps : ps.repeat_interleave(q, 0)) + pds[1])};
}

// Roots and (when nb) the non-empty slots of their neighbour block as distinct pairs;
// without `keyed_by_time` one pair per node (the updater ignores the query time).
detail::Rows TemporalModel::Impl::build_rows(const std::vector<int64_t>& roots, const std::vector<double>& ts, const graph::NeighborBlock* nb, bool keyed_by_time) {
  Rows rw;
  std::vector<int64_t> head, next;  // per node: its latest pair; per pair: the node's previous pair
  auto pair_of = [&](int64_t v, double t) {
    auto& slot = node_slot[static_cast<size_t>(v)];
    if (slot < 0) {
      slot = static_cast<int64_t>(rw.nodes.size());
      rw.nodes.push_back(v);
      head.push_back(-1);
    }
    for (int64_t p = head[static_cast<size_t>(slot)]; p >= 0; p = next[static_cast<size_t>(p)]) {
      if (!keyed_by_time || rw.pair_t[static_cast<size_t>(p)] == t) return p;
    }
    const auto p = static_cast<int64_t>(rw.pair_t.size());
    rw.pair_t.push_back(t);
    rw.pair_node.push_back(slot);
    next.push_back(head[static_cast<size_t>(slot)]);
    head[static_cast<size_t>(slot)] = p;
    return p;
  };
  rw.root_pair.reserve(roots.size());
  for (size_t i = 0; i < roots.size(); ++i) rw.root_pair.push_back(pair_of(roots[i], ts[i]));
  if (nb != nullptr) {
    const auto k = static_cast<size_t>(nb->k);
    for (size_t i = 0; i < nb->nbr.size(); ++i) {
      if (nb->nbr[i] < 0) continue;  // an empty slot: masked, needs no memory
      rw.slot.push_back(static_cast<int64_t>(i));
      rw.slot_pair.push_back(pair_of(nb->nbr[i], ts[i / k]));
    }
  }
  for (int64_t v : rw.nodes) node_slot[static_cast<size_t>(v)] = -1;
  return rw;
}

// Every graph gives the same samples (graph/temporal_sampling.hpp); the T-CSR and the block
// store each go through their own fast path, anything else through the interface.
void TemporalModel::Impl::sample(const graph::TemporalAdjacency& g, const std::vector<int64_t>& roots, const std::vector<double>& ts, graph::NeighborBlock& nb) {
  const bool uniform = cfg.sampler == "uniform";
  if (const auto* t = dynamic_cast<const graph::TcsrAdjacency*>(&g)) {
    if (uniform) {
      graph::sample_uniform(t->graph(), roots, ts, cfg.neighbors, rng, nb);
    } else {
      graph::sample_recent(t->graph(), roots, ts, cfg.neighbors, nb, cfg.leak_own_edge);
    }
  } else if (const auto* s = dynamic_cast<const graph::TimeIndexedBlockStore*>(&g)) {
    if (uniform) {
      graph::sample_uniform(*s, roots, ts, cfg.neighbors, rng, nb);
    } else {
      graph::sample_recent(*s, roots, ts, cfg.neighbors, nb, cfg.leak_own_edge);
    }
  } else if (uniform) {
    graph::sample_uniform(g, roots, ts, cfg.neighbors, rng, nb);
  } else {
    graph::sample_recent(g, roots, ts, cfg.neighbors, nb, cfg.leak_own_edge);
  }
}

// Embeddings of `roots` at `ts`: memory update, node features, then the embedding module
// (temporal attention when `with_attention`).
TemporalModel::Impl::Forward TemporalModel::Impl::embed(const std::vector<int64_t>& roots, const std::vector<double>& ts, const graph::TemporalAdjacency& g, bool train,
                                                        StageTimes& times, bool with_attention) {
  graph::NeighborBlock nb;
  if (with_attention) {
    core::Timer t0;
    sample(g, roots, ts, nb);
    times.sample += t0.seconds();
  }
  const Rows rw = build_rows(roots, ts, with_attention ? &nb : nullptr, by_time);
  const at::Tensor s = updated_memory(rw, train, times);
  at::Tensor h = s;
  if (Dn > 0) {
    const at::Tensor x = lin(kernels::gather_rows(node_feat, to_long(rw.nodes)), "node_proj");
    h = h + (rw.one_per_node() ? x : gather(x, to_long(rw.pair_node)));
  }
  const at::Tensor ri = to_long(rw.root_pair);
  Forward f;
  f.s_root = gather(s, ri);
  const at::Tensor h_root = gather(h, ri);
  if (with_attention) {
    f.z = attend(h_root, h, rw, nb, ts, train, times);
  } else if (time_proj) {
    // JODIE's projection h * (1 + w (t - mem_ts) / (t + 1)) (TGL's normalised form).
    std::vector<float> rel(roots.size());
    for (size_t i = 0; i < roots.size(); ++i) {
      rel[i] = static_cast<float>((ts[i] - mem_ts[static_cast<size_t>(roots[i])]) / (ts[i] + 1.0));
    }
    f.z = h_root * (1 + at::linear(to_float(rel).unsqueeze(1), P("time_projection.weight"), P("time_projection.bias")));
  } else {
    f.z = h_root;
  }
  return f;
}

// Adam (Kingma & Ba, Alg. 1): nn::AdamW without weight decay, the optimizer every program
// uses. The gradients are then set to none, so a parameter that gets no gradient in a
// batch is left alone by the next step (moments included), not moved by its momentum. (A
// fused one-pass kernel was tried: equal per step up to an ulp, ~3% faster per epoch, but
// over 7 seeds its one-epoch test AP averaged 0.930 against 0.935 with ATen's ops, 6 of 7
// seeds lower; unexplained, so not kept. bench/tgnn/README.md.)
void TemporalModel::Impl::adam() {
  opt->step(cfg.lr);
  opt->zero_grad();
}

PassOutput TemporalModel::Impl::run(const std::vector<size_t>& events, const std::vector<int64_t>& negs, int64_t q, const graph::TemporalAdjacency& g,
                                    bool train, size_t batch_size, StageTimes& times) {
  PassOutput out;
  out.pos.reserve(events.size());
  out.neg.reserve(events.size() * static_cast<size_t>(q));
  std::optional<at::NoGradGuard> no_grad;
  if (!train) no_grad.emplace();
  for (size_t b0 = 0; b0 < events.size(); b0 += batch_size) {
    // Between batches: a pass over a split ends within one batch of a stop. Not before
    // the first, so a one-batch training step (fit's) never throws: the training loop's
    // own check before each step stops a fit with a checkpoint.
    if (b0 > 0) core::throw_if_stop_requested();
    const size_t B = std::min(batch_size, events.size() - b0);
    const auto Bi = static_cast<int64_t>(B);
    core::Timer ts0;
    std::vector<int64_t> roots;
    std::vector<double> ts;
    roots.reserve(B * (2 + static_cast<size_t>(q)));
    for (size_t i = 0; i < B; ++i) roots.push_back(data.src[events[b0 + i]]);
    for (size_t i = 0; i < B; ++i) roots.push_back(data.dst[events[b0 + i]]);
    for (size_t i = 0; i < B * static_cast<size_t>(q); ++i) roots.push_back(negs[b0 * static_cast<size_t>(q) + i]);
    for (size_t r = 0; r < roots.size(); ++r) {
      const size_t i = r < 2 * B ? r % B : (r - 2 * B) / static_cast<size_t>(q);
      ts.push_back(data.t[events[b0 + i]]);
    }
    times.sample += ts0.seconds();
    core::Timer tt;
    StageTimes inner;
    Forward f = embed(roots, ts, g, train, inner, attention);
    times.sample += inner.sample;
    times.fetch += inner.fetch;
    const auto [pos, neg] = predict(f.z, Bi, q);
    if (train) {
      at::Tensor loss = at::binary_cross_entropy_with_logits(pos, at::ones_like(pos));
      if (q > 0) {
        const at::Tensor n0 = neg.view({Bi, q}).select(1, 0);
        loss = loss + at::binary_cross_entropy_with_logits(n0, at::zeros_like(n0));
      }
      loss.backward();
      adam();
      out.loss_sum += loss.item<double>();
    }
    {
      at::NoGradGuard ng;
      const at::Tensor ps = at::sigmoid(pos).to(at::kDouble).contiguous();
      out.pos.insert(out.pos.end(), ps.data_ptr<double>(), ps.data_ptr<double>() + B);
      if (q > 0) {
        const at::Tensor ns = at::sigmoid(neg).to(at::kDouble).contiguous();
        out.neg.insert(out.neg.end(), ns.data_ptr<double>(), ns.data_ptr<double>() + ns.numel());
      }
    }
    times.train += tt.seconds() - inner.sample - inner.fetch;
    ++out.batches;
    if (cfg.use_memory) {
      core::Timer tu;
      StageTimes wb;
      write_back(events, b0, B, roots, ts, f, g, wb);
      times.sample += wb.sample;
      times.update += tu.seconds() - wb.sample;
    }
  }
  return out;
}

TemporalModel::TemporalModel(const ModelConfig& cfg, const graph::EventStream& data, uint64_t seed)
    : impl_(std::make_unique<Impl>(cfg, data, seed)) {}
TemporalModel::~TemporalModel() = default;

void TemporalModel::reset_memory() { impl_->reset_memory(); }

PassOutput TemporalModel::run(const std::vector<size_t>& events, const std::vector<int64_t>& negatives, int64_t q,
                              const graph::TemporalAdjacency& graph, bool train, size_t batch_size, StageTimes& times) {
  return impl_->run(events, negatives, q, graph, train, batch_size, times);
}

NodeStates TemporalModel::node_states(const graph::TemporalAdjacency& graph, double t) {
  at::NoGradGuard ng;
  NodeStates st;
  st.nodes = impl_->N;
  st.memory_dim = impl_->dm;
  st.embed_dim = impl_->dz;
  const at::Tensor m = impl_->mem.contiguous();
  st.memory.assign(m.data_ptr<float>(), m.data_ptr<float>() + m.numel());
  st.memory_ts = impl_->mem_ts;
  StageTimes unused;
  for (int64_t b = 0; b < st.nodes; b += 1000) {
    core::throw_if_stop_requested();
    std::vector<int64_t> roots;
    for (int64_t v = b; v < std::min(st.nodes, b + 1000); ++v) roots.push_back(v);
    const std::vector<double> ts(roots.size(), t);
    const at::Tensor z = impl_->embed(roots, ts, graph, false, unused, impl_->attention).z.contiguous();
    st.embeddings.insert(st.embeddings.end(), z.data_ptr<float>(), z.data_ptr<float>() + z.numel());
  }
  return st;
}

void TemporalModel::snapshot_params() {
  at::NoGradGuard ng;
  impl_->snapshot.clear();
  for (const auto& [n, p] : impl_->params) impl_->snapshot.push_back(p.detach().clone());
}

void TemporalModel::restore_params() {
  if (impl_->snapshot.empty()) return;
  at::NoGradGuard ng;
  for (size_t i = 0; i < impl_->params.size(); ++i) impl_->params[i].second.copy_(impl_->snapshot[i]);
}

void TemporalModel::save(core::H5Writer& w) const {
  for (const auto& [n, p] : impl_->params) tensor::write_tensor(w, "/params/" + n, p.detach());
}

void TemporalModel::load(const core::H5Reader& r) {
  at::NoGradGuard ng;
  for (auto& [n, p] : impl_->params) {
    const std::string name = "/params/" + n;
    if (!r.has(name)) throw core::InputError(r.path().string() + ": no dataset " + name + " (a checkpoint of another model?)");
    const at::Tensor t = tensor::read_tensor(r, name);
    if (t.sizes() != p.sizes()) {
      throw core::InputError(r.path().string() + ": " + name + " has shape " + c10::str(t.sizes()) + ", the configured model expects " +
                             c10::str(p.sizes()));
    }
    p.copy_(t);
  }
}

int64_t TemporalModel::mail_dim() const { return impl_->mail_dim; }


int64_t TemporalModel::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, p] : impl_->params) n += p.numel();
  return n;
}

}  // namespace mlsys::tgnn
