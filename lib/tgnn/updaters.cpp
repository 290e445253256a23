// Memory updaters (TGN, arXiv 2006.10637; APAN, arXiv 2011.11545): the lazy update of a
// batch's memory rows from their mails, with gradient into the updater: the GRU/RNN cell
// of TGN and JODIE/DyRep, and APAN's attention over a mailbox of several mails (with its
// test hook, TemporalModel::mailbox_attention).
#include <ATen/ATen.h>

#include <stdexcept>
#include <vector>

#include "core/timer.hpp"
#include "kernels/dispatch.hpp"
#include "tgnn/autograd_ops.hpp"
#include "tgnn/model_impl.hpp"

namespace mlsys::tgnn {

using detail::gather;
using detail::GruCellFn;
using detail::to_float;
using detail::to_long;

// APAN's read-out (TGL TransformerMemoryUpdater, with empty slots masked): per pair,
// att = softmax_s(LeakyReLU(Q . K_s)) per head with Q = W_q mem and K/V =
// W_{k,v}[mail_s || phi(t - mail_ts_s)]; `kv_mail` is the mail part of K/V (with bias),
// `dts` the P x S times, `mask` P x S x 1. A node without mails reads out 0.
detail::Readout TemporalModel::Impl::mailbox_readout(const at::Tensor& mem_p, const at::Tensor& kv_mail, const at::Tensor& w_kv, const at::Tensor& dts,
                                                     const at::Tensor& mask, bool train) const {
  const int64_t Pn = mem_p.size(0), H = cfg.heads, dh = dm / H;
  const at::Tensor kv = kv_mail + mm(phi(dts), w_kv.narrow(1, mail_dim, dt)).view({Pn, S, 2 * dm});
  const at::Tensor K = kv.narrow(2, 0, dm).reshape({Pn, S, H, dh});
  Readout r;
  r.V = kv.narrow(2, dm, dm);
  const at::Tensor q = lin(mem_p, "memory_updater.w_q").view({Pn, 1, H, dh});
  at::Tensor att = at::leaky_relu((q * K).sum(-1), 0.2);                 // P x S x H
  att = at::softmax(att.masked_fill(mask == 0, -1e9), 1) * mask;         // empty slots: 0
  r.att = dropout(att, cfg.att_dropout, train);
  r.value = (r.att.unsqueeze(-1) * r.V.reshape({Pn, S, H, dh})).sum(1).reshape({Pn, dm});
  return r;
}

// Memory of the rows' pairs updated from their mails (the lazy update, with gradient into
// the updater). GRU/RNN: s' = Cell([mail || phi(dt)], mem), with dt the pair's query time
// minus the node's memory time ("query", TGL) or the time between the node's last two
// events ("message", TGN); the gates are split as W_mail mail (per node) + W_t phi(dt)
// (per pair) + W_hh mem (per node), the same sum as one GEMM on the concatenation.
// Attention (APAN): s' = ReLU(Dropout(MLP(LayerNorm(readout + mem)))).
at::Tensor TemporalModel::Impl::updated_memory(const Rows& rw, bool train, StageTimes& times) {
  const int64_t Pn = rw.pairs();
  if (!cfg.use_memory) return at::zeros({Pn, dm});
  core::Timer tf;
  const at::Tensor idx = to_long(rw.nodes);
  const bool same = rw.one_per_node();
  const at::Tensor pn = same ? at::Tensor() : to_long(rw.pair_node);
  auto per_pair = [&](const at::Tensor& x) { return same ? x : gather(x, pn); };
  const at::Tensor m = kernels::gather_rows(mem, idx);
  const auto U = static_cast<int64_t>(rw.nodes.size());
  if (apan_updater) {
    const at::Tensor mails = kernels::gather_rows(mail.view({N, S * mail_dim}), idx).view({U * S, mail_dim});
    std::vector<float> dts(static_cast<size_t>(Pn * S)), full(static_cast<size_t>(Pn * S));
    for (size_t p = 0; p < static_cast<size_t>(Pn); ++p) {
      const auto v = static_cast<size_t>(rw.nodes[static_cast<size_t>(rw.pair_node[p])]);
      for (size_t s = 0; s < static_cast<size_t>(S); ++s) {
        const size_t f = v * static_cast<size_t>(S) + s, o = p * static_cast<size_t>(S) + s;
        full[o] = mail_full[f] ? 1.0F : 0.0F;
        dts[o] = mail_full[f] ? static_cast<float>(rw.pair_t[p] - mail_ts[f]) : 0.0F;
      }
    }
    times.fetch += tf.seconds();
    const auto [w_kv, b_kv] = fused_kv("memory_updater");
    const at::Tensor kv_mail = per_pair(mm(mails, w_kv.narrow(1, 0, mail_dim), b_kv).view({U, S, 2 * dm}));
    const at::Tensor mp = per_pair(m);
    const Readout r = mailbox_readout(mp, kv_mail, w_kv, to_float(dts), to_float(full).view({Pn, S, 1}), train);
    const at::Tensor x = at::layer_norm(r.value + mp, {dm}, P("memory_updater.layer_norm.weight"), P("memory_updater.layer_norm.bias"));
    return at::relu(dropout(lin(x, "memory_updater.mlp"), cfg.dropout, train));
  }
  const at::Tensor mails = kernels::gather_rows(mail, idx);
  std::vector<float> delta(static_cast<size_t>(Pn));
  for (size_t p = 0; p < delta.size(); ++p) {
    const auto v = static_cast<size_t>(rw.nodes[static_cast<size_t>(rw.pair_node[p])]);
    delta[p] = by_time ? static_cast<float>(rw.pair_t[p] - mem_ts[v]) : mail_dt[v];
  }
  times.fetch += tf.seconds();
  const at::Tensor& w_ih = P("memory_updater.weight_ih");
  const at::Tensor &w_hh = P("memory_updater.weight_hh"), &b_hh = P("memory_updater.bias_hh");
  if (self_mail && !cfg.unfolded_self_mail && same) {  // (self_mail implies one pair per node)
    // The mail is [mem || rest] (see self_mail), so W_ih,self mail_self + W_hh mem =
    // (W_ih,self + W_hh) mem wherever the two sums are added: all of the RNN's, the GRU's
    // r and z gates (its n gate multiplies W_hh mem + b_hh by r). One GEMM of mem against
    // [W_ih,self + W_hh (r, z); W_ih,self (n); W_hh (n)] replaces the mail GEMM's first
    // dm columns and the hidden-state GEMM (U x dm x 4dm multiply-adds instead of 6dm).
    const auto wi = w_ih.split_with_sizes({dm, mail_dim - dm, dt}, 1);  // self, other + edge, time
    const at::Tensor gi = mm(mails.narrow(1, dm, mail_dim - dm), wi[1], P("memory_updater.bias_ih")) + mm(phi(to_float(delta)), wi[2]);
    if (cfg.updater != "gru") return at::tanh(gi + mm(m, wi[0] + w_hh, b_hh));
    const auto ws = wi[0].split_with_sizes({2 * dm, dm}), wh = w_hh.split_with_sizes({2 * dm, dm});
    const auto bh = b_hh.split_with_sizes({2 * dm, dm});
    const at::Tensor g = mm(m, at::cat({ws[0] + wh[0], ws[1], wh[1]}), at::cat({bh[0], at::zeros({dm}), bh[1]}));  // U x 4dm
    return GruCellFn::apply(gi, g, m);
  }
  const auto wi = w_ih.split_with_sizes({mail_dim, dt}, 1);
  const at::Tensor gi = per_pair(mm(mails, wi[0], P("memory_updater.bias_ih"))) + mm(phi(to_float(delta)), wi[1]);
  const at::Tensor gh = per_pair(mm(m, w_hh, b_hh));
  if (cfg.updater != "gru") return at::tanh(gi + gh);
  // torch.nn.GRUCell: r, z, n gates in that order.
  return GruCellFn::apply(gi, gh, per_pair(m));
}

TemporalModel::MailboxReadout TemporalModel::mailbox_attention(const std::vector<float>& memory, const std::vector<float>& mails,
                                                               const std::vector<double>& mail_ts, const std::vector<uint8_t>& valid,
                                                               double t) const {
  const Impl& m = *impl_;
  if (!m.apan_updater) throw std::logic_error("tgnn: mailbox_attention needs the attention updater");
  at::NoGradGuard ng;
  const int64_t S = m.S, n = static_cast<int64_t>(memory.size()) / m.dm;
  std::vector<float> dts(mail_ts.size()), full(valid.size());
  for (size_t i = 0; i < dts.size(); ++i) {
    full[i] = valid[i] ? 1.0F : 0.0F;
    dts[i] = valid[i] ? static_cast<float>(t - mail_ts[i]) : 0.0F;
  }
  const auto [w_kv, b_kv] = m.fused_kv("memory_updater");
  const at::Tensor kv_mail = m.mm(to_float(mails).view({n * S, m.mail_dim}), w_kv.narrow(1, 0, m.mail_dim), b_kv).view({n, S, 2 * m.dm});
  const detail::Readout r = m.mailbox_readout(to_float(memory).view({n, m.dm}), kv_mail, w_kv, to_float(dts), to_float(full).view({n, S, 1}), false);
  auto vec = [](const at::Tensor& x) {
    const at::Tensor c = x.contiguous();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  };
  return {vec(r.value), vec(r.att), vec(r.V)};
}

}  // namespace mlsys::tgnn
