// TGN / JODIE / DyRep on ATen with autograd (the only LibTorch translation unit of the
// module): parameters are plain leaf tensors registered by name, the layers are ATen ops
// (gru_cell, linear, layer_norm), Adam is written out (Kingma & Ba, Alg. 1).
#include "tgnn/model.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <random>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "kernels/dispatch.hpp"
#include "tensor/h5_tensor.hpp"

namespace mlsys::tgnn {

void ModelConfig::resolve() {
  if (updater.empty()) updater = name == "tgn" ? "gru" : "rnn";
  if (embedding.empty()) embedding = name == "tgn" ? "attention" : (name == "jodie" ? "time" : "identity");
}

void set_torch_threads(int n) {
  if (n > 0) at::set_num_threads(n);
}

namespace {

at::Tensor to_long(const std::vector<int64_t>& v) {
  return at::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, at::kLong).clone();
}
at::Tensor to_float(const std::vector<float>& v) {
  return at::from_blob(const_cast<float*>(v.data()), {static_cast<int64_t>(v.size())}, at::kFloat).clone();
}

}  // namespace

struct TemporalModel::Impl {
  ModelConfig cfg;
  const graph::EventStream& data;
  int64_t N, De, Dn, dm, dt, dz;
  bool attention, time_proj;
  at::Tensor edge_feat, node_feat;
  // Node memory and mailbox (TGL memorys.py; mailbox size 1, TGN's "last" aggregator).
  at::Tensor mem, mail;
  std::vector<double> mem_ts;
  std::vector<float> mail_dt;  // per node: time between its last two events (mail's dt)
  std::vector<std::pair<std::string, at::Tensor>> params;
  std::vector<at::Tensor> adam_m, adam_v, snapshot;
  int64_t adam_step = 0;
  std::mt19937_64 rng;
  std::vector<int64_t> stamp;  // scratch: last batch position of a node

  Impl(const ModelConfig& c, const graph::EventStream& d, uint64_t seed) : cfg(c), data(d), rng(seed) {
    cfg.resolve();
    at::manual_seed(seed);
    N = d.num_nodes, De = d.edge_dim, Dn = d.node_dim;
    dm = cfg.memory_dim, dt = cfg.time_dim;
    attention = cfg.embedding == "attention";
    time_proj = cfg.embedding == "time";
    dz = attention ? cfg.embed_dim : dm;
    if (De > 0) edge_feat = to_float(d.edge_feat).view({static_cast<int64_t>(d.size()), De});
    if (Dn > 0) node_feat = to_float(d.node_feat).view({N, Dn});
    // Time encoding phi(dt) = cos(w dt + b), w_i = 10^(-9 i / (d_t - 1)) (TGL TimeEncode).
    add("time_encoder.w", at::pow(10.0, at::linspace(0, -9, dt, at::kFloat)));
    add("time_encoder.b", at::zeros({dt}));
    const int64_t mail_dim = 2 * dm + De, gates = cfg.updater == "gru" ? 3 * dm : dm;
    const double bu = 1.0 / std::sqrt(static_cast<double>(dm));
    add("memory_updater.weight_ih", uniform({gates, mail_dim + dt}, bu));
    add("memory_updater.weight_hh", uniform({gates, dm}, bu));
    add("memory_updater.bias_ih", uniform({gates}, bu));
    add("memory_updater.bias_hh", uniform({gates}, bu));
    if (Dn > 0) linear("node_proj", dm, Dn);
    if (attention) {
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
    for (auto& [n, p] : params) {
      adam_m.push_back(at::zeros_like(p));
      adam_v.push_back(at::zeros_like(p));
    }
    stamp.assign(static_cast<size_t>(N), -1);
    reset_memory();
  }

  static at::Tensor uniform(at::IntArrayRef shape, double bound) { return at::rand(shape) * (2 * bound) - bound; }
  void add(const std::string& name, at::Tensor t) { params.emplace_back(name, t.contiguous().set_requires_grad(true)); }
  // torch.nn.Linear's initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  void linear(const std::string& name, int64_t out, int64_t in) {
    const double b = 1.0 / std::sqrt(static_cast<double>(in));
    add(name + ".weight", uniform({out, in}, b));
    add(name + ".bias", uniform({out}, b));
  }
  const at::Tensor& P(const std::string& name) const {
    for (const auto& [n, p] : params) {
      if (n == name) return p;
    }
    throw std::logic_error("tgnn: no parameter " + name);
  }
  at::Tensor lin(const at::Tensor& x, const std::string& name) const { return at::linear(x, P(name + ".weight"), P(name + ".bias")); }

  void reset_memory() {
    mem = at::zeros({N, dm});
    mail = at::zeros({N, 2 * dm + De});
    mem_ts.assign(static_cast<size_t>(N), 0.0);
    mail_dt.assign(static_cast<size_t>(N), 0.0F);
  }

  at::Tensor phi(const at::Tensor& delta) const {
    return at::cos(delta.unsqueeze(1) * P("time_encoder.w").unsqueeze(0) + P("time_encoder.b").unsqueeze(0));
  }

  at::Tensor predict(const at::Tensor& zu, const at::Tensor& zv) const {
    return lin(at::relu(lin(zu, "edge_predictor.src") + lin(zv, "edge_predictor.dst")), "edge_predictor.out").squeeze(1);
  }

  // Memory of `ids` updated from their mails (the lazy update, with gradient into the
  // updater): s' = Cell([mail || phi(dt)], mem). With memory_time "query" (TGL) dt is the
  // row's query time minus the node's memory time, one update per row; with "message"
  // (TGN) dt is the time between the node's last two events, fixed when the mail was
  // built, so the update runs once per distinct node of the batch.
  at::Tensor updated_memory(const std::vector<int64_t>& ids, const std::vector<double>& rows_t, StageTimes& times) {
    const auto n = static_cast<int64_t>(ids.size());
    if (!cfg.use_memory) return at::zeros({n, dm});
    core::Timer tf;
    std::vector<int64_t> uniq, inverse;
    std::vector<float> delta;
    if (cfg.memory_time == "query") {
      uniq = ids;
      for (size_t i = 0; i < ids.size(); ++i) delta.push_back(static_cast<float>(rows_t[i] - mem_ts[static_cast<size_t>(ids[i])]));
    } else {
      inverse.resize(ids.size());
      for (size_t i = 0; i < ids.size(); ++i) {
        auto& slot = stamp[static_cast<size_t>(ids[i])];
        if (slot < 0) {
          slot = static_cast<int64_t>(uniq.size());
          uniq.push_back(ids[i]);
        }
        inverse[i] = slot;
      }
      for (int64_t v : uniq) {
        delta.push_back(mail_dt[static_cast<size_t>(v)]);
        stamp[static_cast<size_t>(v)] = -1;
      }
    }
    const at::Tensor idx = to_long(uniq);
    const at::Tensor m = kernels::gather_rows(mem, idx);
    const at::Tensor x = at::cat({kernels::gather_rows(mail, idx), phi(to_float(delta))}, 1);
    times.fetch += tf.seconds();
    at::Tensor s;
    if (cfg.updater == "gru") {
      s = at::gru_cell(x, m, P("memory_updater.weight_ih"), P("memory_updater.weight_hh"), P("memory_updater.bias_ih"),
                       P("memory_updater.bias_hh"));
    } else {
      s = at::rnn_tanh_cell(x, m, P("memory_updater.weight_ih"), P("memory_updater.weight_hh"), P("memory_updater.bias_ih"),
                            P("memory_updater.bias_hh"));
    }
    return inverse.empty() ? s : s.index_select(0, to_long(inverse));
  }

  struct Forward {
    at::Tensor z;       // roots x dz
    at::Tensor s_root;  // roots x dm: updated memory of the roots (for write-back)
  };

  // Embeddings of `roots` at `ts`: memory update, node features, then the embedding module.
  Forward embed(const std::vector<int64_t>& roots, const std::vector<double>& ts, const graph::TemporalGraph& g, bool train,
                StageTimes& times) {
    const auto R = static_cast<int64_t>(roots.size());
    const int64_t k = attention ? cfg.neighbors : 0;
    graph::NeighborBlock nb;
    if (attention) {
      core::Timer t0;
      if (cfg.sampler == "uniform") {
        graph::sample_uniform(g, roots, ts, k, rng, nb);
      } else {
        graph::sample_recent(g, roots, ts, k, nb, cfg.leak_own_edge);
      }
      times.sample += t0.seconds();
    }
    std::vector<int64_t> ids(roots);
    std::vector<double> rows_t(ts);
    for (size_t i = 0; i < nb.nbr.size(); ++i) {
      ids.push_back(std::max<int64_t>(nb.nbr[i], 0));
      rows_t.push_back(ts[i / static_cast<size_t>(k)]);
    }
    at::Tensor s = updated_memory(ids, rows_t, times);
    at::Tensor h = s;
    if (Dn > 0) h = h + lin(kernels::gather_rows(node_feat, to_long(ids)), "node_proj");
    Forward f;
    f.s_root = s.narrow(0, 0, R);
    at::Tensor h_root = h.narrow(0, 0, R);
    if (attention) {
      // TGN eq. 5-9 in TGL's form: one layer, H heads, LeakyReLU(0.2) scores.
      core::Timer tf;
      const int64_t H = cfg.heads, de = cfg.embed_dim, dh = de / H;
      std::vector<float> dnb(nb.nbr.size()), valid(nb.nbr.size());
      std::vector<int64_t> eids(nb.nbr.size());
      for (size_t i = 0; i < nb.nbr.size(); ++i) {
        valid[i] = nb.nbr[i] >= 0 ? 1.0F : 0.0F;
        dnb[i] = nb.nbr[i] >= 0 ? static_cast<float>(ts[i / static_cast<size_t>(k)] - nb.t[i]) : 0.0F;
        eids[i] = std::max<int64_t>(nb.eid[i], 0);
      }
      std::vector<at::Tensor> kv_parts{h.narrow(0, R, R * k)};
      if (De > 0) kv_parts.push_back(kernels::gather_rows(edge_feat, to_long(eids)));
      kv_parts.push_back(phi(to_float(dnb)));
      const at::Tensor mask = to_float(valid).view({R, k, 1});
      times.fetch += tf.seconds();
      const at::Tensor kv_in = at::cat(kv_parts, 1);
      const at::Tensor q = lin(at::cat({h_root, phi(at::zeros({R}))}, 1), "attention.w_q").view({R, 1, H, dh});
      const at::Tensor K = lin(kv_in, "attention.w_k").view({R, k, H, dh});
      const at::Tensor V = lin(kv_in, "attention.w_v").view({R, k, H, dh});
      at::Tensor att = at::leaky_relu((q * K).sum(-1), 0.2);  // R x k x H
      att = at::softmax(att.masked_fill(mask == 0, -1e9), 1) * mask;  // no neighbours: all zero
      att = at::dropout(att, cfg.att_dropout, train);
      const at::Tensor agg = (att.unsqueeze(-1) * V).sum(1).reshape({R, de});
      const at::Tensor out = at::relu(at::dropout(lin(at::cat({agg, h_root}, 1), "attention.w_out"), cfg.dropout, train));
      f.z = at::layer_norm(out, {de}, P("attention.layer_norm.weight"), P("attention.layer_norm.bias"));
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

  void adam() {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    ++adam_step;
    const double c1 = 1 - std::pow(b1, static_cast<double>(adam_step));
    const double c2 = 1 - std::pow(b2, static_cast<double>(adam_step));
    at::NoGradGuard ng;
    for (size_t i = 0; i < params.size(); ++i) {
      at::Tensor& p = params[i].second;
      const at::Tensor g = p.grad();
      if (!g.defined()) continue;
      adam_m[i].mul_(b1).add_(g, 1 - b1);
      adam_v[i].mul_(b2).addcmul_(g, g, 1 - b2);
      p.addcdiv_(adam_m[i], (adam_v[i] / c2).sqrt_().add_(eps), -cfg.lr / c1);
      p.mutable_grad() = at::Tensor();
    }
  }

  PassOutput run(const std::vector<size_t>& events, const std::vector<int64_t>& negs, int64_t q, const graph::TemporalGraph& g,
                 bool train, size_t batch_size, StageTimes& times) {
    PassOutput out;
    out.pos.reserve(events.size());
    out.neg.reserve(events.size() * static_cast<size_t>(q));
    std::optional<at::NoGradGuard> no_grad;
    if (!train) no_grad.emplace();
    for (size_t b0 = 0; b0 < events.size(); b0 += batch_size) {
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
      Forward f = embed(roots, ts, g, train, inner);
      times.sample += inner.sample;
      times.fetch += inner.fetch;
      const at::Tensor zs = f.z.narrow(0, 0, Bi);
      const at::Tensor pos = predict(zs, f.z.narrow(0, Bi, Bi));
      at::Tensor neg;
      if (q > 0) neg = predict(q == 1 ? zs : zs.repeat_interleave(q, 0), f.z.narrow(0, 2 * Bi, Bi * q));
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
      // Write-back after the loss (no gradient): memory and mails of the true src/dst only,
      // the last occurrence in the batch winning (TGL's unique scatter; TGN's "last").
      if (cfg.use_memory) {
        core::Timer tu;
        at::NoGradGuard ng;
        const at::Tensor s_src = f.s_root.narrow(0, 0, Bi).detach(), s_dst = f.s_root.narrow(0, Bi, Bi).detach();
        std::vector<at::Tensor> src_mail{s_src, s_dst}, dst_mail{s_dst, s_src};
        if (De > 0) {
          std::vector<int64_t> eids(B);
          for (size_t i = 0; i < B; ++i) eids[i] = static_cast<int64_t>(events[b0 + i]);
          const at::Tensor e = kernels::gather_rows(edge_feat, to_long(eids));
          src_mail.push_back(e);
          dst_mail.push_back(e);
        }
        const at::Tensor states = at::cat({s_src, s_dst}, 0);
        const at::Tensor mails = at::cat({at::cat(src_mail, 1), at::cat(dst_mail, 1)}, 0);
        std::vector<int64_t> nodes, rows;
        for (size_t r = 0; r < 2 * B; ++r) stamp[static_cast<size_t>(roots[r])] = -1;
        for (size_t i = 0; i < B; ++i) {  // event order; dst after src within an event
          stamp[static_cast<size_t>(roots[i])] = static_cast<int64_t>(i);
          stamp[static_cast<size_t>(roots[B + i])] = static_cast<int64_t>(B + i);
        }
        for (size_t r = 0; r < 2 * B; ++r) {
          const auto v = static_cast<size_t>(roots[r]);
          if (stamp[v] == static_cast<int64_t>(r)) {
            stamp[v] = -1;  // scratch back to -1 for the next user
            nodes.push_back(roots[r]);
            rows.push_back(static_cast<int64_t>(r));
            const double t_event = data.t[events[b0 + (r % B)]];
            mail_dt[v] = static_cast<float>(t_event - mem_ts[v]);
            mem_ts[v] = t_event;
          }
        }
        const at::Tensor ni = to_long(nodes), ri = to_long(rows);
        mem.index_copy_(0, ni, states.index_select(0, ri));
        mail.index_copy_(0, ni, mails.index_select(0, ri));
        times.update += tu.seconds();
      }
    }
    return out;
  }
};

TemporalModel::TemporalModel(const ModelConfig& cfg, const graph::EventStream& data, uint64_t seed)
    : impl_(std::make_unique<Impl>(cfg, data, seed)) {}
TemporalModel::~TemporalModel() = default;

void TemporalModel::reset_memory() { impl_->reset_memory(); }

PassOutput TemporalModel::run(const std::vector<size_t>& events, const std::vector<int64_t>& negatives, int64_t q,
                              const graph::TemporalGraph& graph, bool train, size_t batch_size, StageTimes& times) {
  return impl_->run(events, negatives, q, graph, train, batch_size, times);
}

NodeStates TemporalModel::node_states(const graph::TemporalGraph& graph, double t) {
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
    std::vector<int64_t> roots;
    for (int64_t v = b; v < std::min(st.nodes, b + 1000); ++v) roots.push_back(v);
    const std::vector<double> ts(roots.size(), t);
    const at::Tensor z = impl_->embed(roots, ts, graph, false, unused).z.contiguous();
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

int64_t TemporalModel::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, p] : impl_->params) n += p.numel();
  return n;
}

}  // namespace mlsys::tgnn
