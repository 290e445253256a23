// Temporal attention (TGN eq. 5-9, TGL's one-layer form): each root's embedding from its
// sampled neighbours, in the factored form training uses and the K/V form the tests
// compare it with; the attention's query, output layer and dropout.
#include <ATen/ATen.h>

#include <vector>

#include "core/timer.hpp"
#include "kernels/dispatch.hpp"
#include "tgnn/autograd_ops.hpp"
#include "tgnn/model_impl.hpp"

namespace mlsys::tgnn {

using detail::SegmentAttentionFn;
using detail::SlotAttentionFn;
using detail::to_float;
using detail::to_long;

// TGN eq. 5-9 in TGL's form: one layer, H heads, LeakyReLU(0.2) scores, over the
// non-empty neighbour slots of each root (no neighbours: h~ = 0), with a slot's input
// x_j = [h_j || e_j || phi(dt_j)], K_j = W_k x_j + b_k and V_j = W_v x_j + b_v.
//
// Factored form (the default): K and V are never formed per slot. Per root and head,
// q . K_j = (W_k,h^T q_h) . x_j + q_h . b_k,h and sum_j a_j V_j = W_v,h (sum_j a_j x_j)
// + b_v,h sum_j a_j, so the GEMMs run on the roots (2 x R x d_h x d_x each way) instead
// of the slots (S x d_x x 2 d_e), ~3x fewer multiply-adds, and kernels::slot_attention
// does the per-slot work (scores, softmax, dropout, the weighted sum of x) and its
// backward. cfg.kv_attention (test-only) runs the K/V form instead: the same function
// up to float rounding.
at::Tensor TemporalModel::Impl::attend(const at::Tensor& h_root, const at::Tensor& h, const Rows& rw, const graph::NeighborBlock& nb,
                                       const std::vector<double>& ts, bool train, StageTimes& times) {
  if (cfg.kv_attention) return attend_kv(h_root, h, rw, nb, ts, train, times);
  core::Timer tf;
  const int64_t R = h_root.size(0), k = nb.k, H = cfg.heads, de = cfg.embed_dim, dh = de / H;
  const int64_t Dx = dm + De + dt;
  const size_t nv = rw.slot.size();
  std::vector<float> dnb(nv);
  std::vector<int64_t> offsets(static_cast<size_t>(R + 1), 0), slot_eid(De > 0 ? nv : 0);
  for (size_t s = 0; s < nv; ++s) {
    const auto i = static_cast<size_t>(rw.slot[s]);
    if (De > 0) slot_eid[s] = nb.eid[i];
    dnb[s] = static_cast<float>(ts[i / static_cast<size_t>(k)] - nb.t[i]);
    ++offsets[i / static_cast<size_t>(k) + 1];
  }
  for (size_t r = 0; r < static_cast<size_t>(R); ++r) offsets[r + 1] += offsets[r];
  times.fetch += tf.seconds();
  // The kernel sees x_j = [h_j || phi(dt_j) || e_j] (the columns with a gradient first),
  // so W_k and W_v (TGL's column order [h || e || phi]) are permuted to match.
  auto permuted = [&](const at::Tensor& w) {
    if (De == 0) return w;
    const auto b = w.split_with_sizes({dm, De, dt}, 1);
    return at::cat({b[0], b[2], b[1]}, 1);
  };
  const at::Tensor q = attention_query(h_root);
  const at::Tensor qh = q.view({R, H, dh}).transpose(0, 1);                                  // H x R x dh
  const at::Tensor qk = at::bmm(qh, permuted(P("attention.w_k.weight")).view({H, dh, Dx}));  // H x R x Dx
  const at::Tensor c = (qh * P("attention.w_k.bias").view({H, 1, dh})).sum(-1);             // H x R
  const auto ax = SlotAttentionFn::apply(qk, c, h, P("time_encoder.w"), P("time_encoder.b"), to_long(rw.slot_pair), to_float(dnb),
                                         De > 0 ? edge_feat : at::empty({0}), De > 0 ? to_long(slot_eid) : at::empty({0}, at::kLong),
                                         to_long(offsets), dropout_keep(static_cast<int64_t>(nv), train),
                                         at::GradMode::is_enabled() ? 1 : 0);
  // W_v,h (sum_j a_j x_j) + b_v,h sum_j a_j, per head; then heads side by side.
  const at::Tensor vh = at::baddbmm(ax[1].unsqueeze(-1) * P("attention.w_v.bias").view({H, 1, dh}), ax[0],
                                    permuted(P("attention.w_v.weight")).view({H, dh, Dx}).transpose(1, 2));  // H x R x dh
  const at::Tensor agg = vh.transpose(0, 1).reshape({R, de});
  return attention_output(agg, h_root, train);
}

// The attention's query of each root: W_q [h_root || phi(0)] + b_q (the time part is the
// same for every root: one row, broadcast as a bias). Both attention forms.
at::Tensor TemporalModel::Impl::attention_query(const at::Tensor& h_root) const {
  const auto wq = P("attention.w_q.weight").split_with_sizes({dm, dt}, 1);
  return mm(h_root, wq[0], at::linear(phi(at::zeros({1})), wq[1], P("attention.w_q.bias")).squeeze(0));
}

// TGN's attention output: LayerNorm(ReLU(Dropout(W_out [agg || h_root] + b_out))).
at::Tensor TemporalModel::Impl::attention_output(const at::Tensor& agg, const at::Tensor& h_root, bool train) const {
  const at::Tensor out = at::relu(dropout(lin(at::cat({agg, h_root}, 1), "attention.w_out"), cfg.dropout, train));
  return at::layer_norm(out, {cfg.embed_dim}, P("attention.layer_norm.weight"), P("attention.layer_norm.bias"));
}

// The attention dropout's keep scales (slots x heads), or an empty tensor when off.
at::Tensor TemporalModel::Impl::dropout_keep(int64_t slots, bool train) const {
  if (!train || cfg.att_dropout <= 0) return at::empty({0});
  if (cfg.att_dropout >= 1) return at::zeros({slots, cfg.heads});
  return keep_scales(slots * cfg.heads, cfg.att_dropout).view({slots, cfg.heads});
}

// The K/V form of attend (test-only reference): K and V as one GEMM on [W_k; W_v], split
// by input block: the node part once per distinct neighbour pair, the edge part once per
// distinct edge, the time part per slot; then kernels::segment_attention.
at::Tensor TemporalModel::Impl::attend_kv(const at::Tensor& h_root, const at::Tensor& h, const Rows& rw, const graph::NeighborBlock& nb,
                                          const std::vector<double>& ts, bool train, StageTimes& times) {
  core::Timer tf;
  const int64_t R = h_root.size(0), k = nb.k, H = cfg.heads;
  const size_t nv = rw.slot.size();
  std::vector<int64_t> local(static_cast<size_t>(rw.pairs()), -1), nb_pairs, slot_nb, eids, slot_e;
  std::vector<float> dnb(nv);
  std::vector<int64_t> offsets(static_cast<size_t>(R + 1), 0);  // root r's slots: [offsets[r], offsets[r+1])
  slot_nb.reserve(nv);
  for (size_t s = 0; s < nv; ++s) {
    const auto i = static_cast<size_t>(rw.slot[s]);
    auto& lp = local[static_cast<size_t>(rw.slot_pair[s])];
    if (lp < 0) {
      lp = static_cast<int64_t>(nb_pairs.size());
      nb_pairs.push_back(rw.slot_pair[s]);
    }
    slot_nb.push_back(lp);
    if (De > 0) {
      auto& le = edge_slot[static_cast<size_t>(nb.eid[i])];
      if (le < 0) {
        le = static_cast<int64_t>(eids.size());
        eids.push_back(nb.eid[i]);
      }
      slot_e.push_back(le);
    }
    dnb[s] = static_cast<float>(ts[i / static_cast<size_t>(k)] - nb.t[i]);
    ++offsets[i / static_cast<size_t>(k) + 1];
  }
  for (size_t r = 0; r < static_cast<size_t>(R); ++r) offsets[r + 1] += offsets[r];
  for (int64_t e : eids) edge_slot[static_cast<size_t>(e)] = -1;
  const at::Tensor e_feat = De > 0 ? kernels::gather_rows(edge_feat, to_long(eids)) : at::Tensor();
  times.fetch += tf.seconds();
  const auto [w_kv, b_kv] = fused_kv("attention");
  at::Tensor kv = mm(h.index_select(0, to_long(nb_pairs)), w_kv.narrow(1, 0, dm)).index_select(0, to_long(slot_nb));
  if (De > 0) kv = kv + mm(e_feat, w_kv.narrow(1, dm, De)).index_select(0, to_long(slot_e));
  kv = mm(phi(to_float(dnb)), w_kv.narrow(1, dm + De, dt), b_kv) + kv;  // nv x 2de
  const at::Tensor q = attention_query(h_root);
  const at::Tensor agg = SegmentAttentionFn::apply(q, kv, to_long(offsets), dropout_keep(static_cast<int64_t>(nv), train), H);
  return attention_output(agg, h_root, train);
}
}  // namespace mlsys::tgnn
