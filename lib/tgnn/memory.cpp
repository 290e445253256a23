// Node memory and mailbox (TGN, arXiv 2006.10637; TGL's memorys.py): their reset at the
// start of an epoch or a replay, and the write-back after each batch's loss, which stores
// the updated memory of the batch's true endpoints and delivers their new mails.
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "core/timer.hpp"
#include "kernels/dispatch.hpp"
#include "tgnn/model_impl.hpp"

namespace mlsys::tgnn {

using detail::to_long;

void TemporalModel::Impl::reset_memory() {
  mem = at::zeros({N, dm});
  mail = apan_updater ? at::zeros({N, S, mail_dim}) : at::zeros({N, mail_dim});
  mem_ts.assign(static_cast<size_t>(N), 0.0);
  mail_dt.assign(static_cast<size_t>(N), 0.0F);
  mail_ts.assign(static_cast<size_t>(N * S), 0.0);
  mail_full.assign(static_cast<size_t>(N * S), 0);
  next_slot.assign(static_cast<size_t>(N), 0);
}

// Write-back after the loss (no gradient). Memory of the true src/dst only, the last
// occurrence in the batch winning (TGL's unique scatter; TGN's "last"). Mails: src gets
// [s_src || s_dst || e] and dst [s_dst || s_src || e] (DyRep: the other endpoint's
// attention embedding in place of its memory); with deliver_to "neighbors" (APAN) each
// endpoint's mail also goes to its most recent neighbours before t. One mail per node
// per batch (TGL's "last" combine): the node's own last mail if it had an event in the
// batch, else the last mail delivered to it as a neighbour (TGL lets neighbour mails win;
// here they would flood the mailbox of every active node, so own mails take priority);
// the attention updater keeps it in its ring of S mails.
void TemporalModel::Impl::write_back(const std::vector<size_t>& events, size_t b0, size_t B, const std::vector<int64_t>& roots,
                                     const std::vector<double>& ts, const Forward& f, const graph::TemporalAdjacency& g, StageTimes& times) {
  at::NoGradGuard ng;
  const auto Bi = static_cast<int64_t>(B);
  const at::Tensor s_src = f.s_root.narrow(0, 0, Bi).detach(), s_dst = f.s_root.narrow(0, Bi, Bi).detach();
  const std::vector<int64_t> ends(roots.begin(), roots.begin() + static_cast<long>(2 * B));
  const std::vector<double> ends_t(ts.begin(), ts.begin() + static_cast<long>(2 * B));
  at::Tensor other_of_src = s_dst, other_of_dst = s_src;
  if (dyrep_message) {
    // DyRep (TGN's --use_destination_embedding_in_message): the other endpoint's temporal
    // attention embedding over its neighbours at t. Built here, without gradient, as TGN
    // detaches stored messages, so the attention weights keep their initialisation.
    StageTimes inner;
    const at::Tensor z = embed(ends, ends_t, g, false, inner, true).z;
    times.sample += inner.sample;
    other_of_src = z.narrow(0, Bi, Bi);
    other_of_dst = z.narrow(0, 0, Bi);
  }
  std::vector<at::Tensor> src_mail{s_src, other_of_src}, dst_mail{s_dst, other_of_dst};
  if (De > 0) {
    std::vector<int64_t> eids(B);
    for (size_t i = 0; i < B; ++i) eids[i] = static_cast<int64_t>(events[b0 + i]);
    const at::Tensor e = kernels::gather_rows(edge_feat, to_long(eids));
    src_mail.push_back(e);
    dst_mail.push_back(e);
  }
  const at::Tensor mails = at::cat({at::cat(src_mail, 1), at::cat(dst_mail, 1)}, 0);  // 2B x mail_dim
  // Deliveries (node, mail row) in event order.
  std::vector<int64_t> to, from;
  graph::NeighborBlock nb;
  if (deliver_neighbors) {
    core::Timer t0;
    sample(g, ends, ends_t, nb);
    times.sample += t0.seconds();
  }
  const auto k = static_cast<size_t>(nb.k);
  for (size_t i = 0; deliver_neighbors && i < B; ++i) {
    for (size_t side : {i, B + i}) {
      for (size_t j = 0; j < k; ++j) {
        const int64_t v = nb.nbr[side * k + j];
        if (v < 0) continue;
        to.push_back(v);
        from.push_back(static_cast<int64_t>(side));
      }
    }
  }
  for (size_t i = 0; i < B; ++i) {
    to.push_back(roots[i]);
    from.push_back(static_cast<int64_t>(i));
    to.push_back(roots[B + i]);
    from.push_back(static_cast<int64_t>(B + i));
  }
  for (size_t p = 0; p < to.size(); ++p) stamp[static_cast<size_t>(to[p])] = static_cast<int64_t>(p);
  std::vector<int64_t> mail_at, mail_rows;
  for (size_t p = 0; p < to.size(); ++p) {
    const auto v = static_cast<size_t>(to[p]);
    if (stamp[v] != static_cast<int64_t>(p)) continue;
    stamp[v] = -1;
    const double t_event = data.t[events[b0 + static_cast<size_t>(from[p]) % B]];
    mail_dt[v] = static_cast<float>(t_event - mem_ts[v]);
    if (apan_updater) {
      const int64_t slot = next_slot[v];
      next_slot[v] = (slot + 1) % S;
      const size_t fl = v * static_cast<size_t>(S) + static_cast<size_t>(slot);
      mail_ts[fl] = t_event;
      mail_full[fl] = 1;
      mail_at.push_back(static_cast<int64_t>(fl));
    } else {
      mail_at.push_back(to[p]);
    }
    mail_rows.push_back(from[p]);
  }
  (apan_updater ? mail.view({N * S, mail_dim}) : mail).index_copy_(0, to_long(mail_at), mails.index_select(0, to_long(mail_rows)));
  // Memory and its time: the true src/dst, last occurrence (dst after src within an event).
  std::vector<int64_t> nodes, rows;
  for (size_t i = 0; i < B; ++i) {
    stamp[static_cast<size_t>(roots[i])] = static_cast<int64_t>(i);
    stamp[static_cast<size_t>(roots[B + i])] = static_cast<int64_t>(B + i);
  }
  for (size_t r = 0; r < 2 * B; ++r) {
    const auto v = static_cast<size_t>(roots[r]);
    if (stamp[v] != static_cast<int64_t>(r)) continue;
    stamp[v] = -1;
    nodes.push_back(roots[r]);
    rows.push_back(static_cast<int64_t>(r));
    mem_ts[v] = data.t[events[b0 + (r % B)]];
  }
  mem.index_copy_(0, to_long(nodes), at::cat({s_src, s_dst}, 0).index_select(0, to_long(rows)));
}
}  // namespace mlsys::tgnn
