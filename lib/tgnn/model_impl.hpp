// The inside of TemporalModel (model.hpp's pimpl), shared by the LibTorch sources of the
// module: the parameters, the node memory and mailboxes, and the members each stage of a
// batch defines in its own file (TGN, arXiv 2006.10637; TGL, arXiv 2203.14883):
//   model.cpp       assembly: parameters, the GEMMs, predictor, embed, run, save/load
//   memory.cpp      memory and mailbox: reset, write-back and mail delivery
//   updaters.cpp    memory updaters: GRU/RNN cell, APAN's attention over the mailbox
//   attention.cpp   temporal attention (TGN eq. 5-9): factored and K/V forms
//   autograd_ops.*  autograd functions over the kernels
//   train_state.cpp the full training state for resume (save_state / load_state)
// Internal: includes ATen; never include it from a torch-free source (model.hpp is the
// public face).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "graph/events.hpp"
#include "graph/sampler.hpp"
#include "graph/temporal_adjacency.hpp"
#include "nn/optim.hpp"
#include "tgnn/model.hpp"

namespace mlsys::tgnn {

namespace detail {

// Copies of plain vectors as 1-D tensors.
inline at::Tensor to_long(const std::vector<int64_t>& v) {
  return at::from_blob(const_cast<int64_t*>(v.data()), {static_cast<int64_t>(v.size())}, at::kLong).clone();
}
inline at::Tensor to_float(const std::vector<float>& v) {
  return at::from_blob(const_cast<float*>(v.data()), {static_cast<int64_t>(v.size())}, at::kFloat).clone();
}

// The rows a batch needs updated memory for (its roots, then the non-empty neighbour
// slots), collapsed to distinct (node, query time) pairs: the updater's output depends on
// nothing else, so equal pairs share one computation, and the parts that depend on the
// node only (mail and hidden-state projections) run once per distinct node.
struct Rows {
  std::vector<int64_t> nodes;      // distinct nodes
  std::vector<int64_t> pair_node;  // per pair: index into nodes
  std::vector<double> pair_t;      // per pair: query time
  std::vector<int64_t> root_pair;  // per root: its pair
  std::vector<int64_t> slot;       // non-empty neighbour slots (index into roots x k)
  std::vector<int64_t> slot_pair;  // per non-empty slot: the neighbour's pair
  [[nodiscard]] int64_t pairs() const { return static_cast<int64_t>(pair_t.size()); }
  // Pair p is node p (one pair per node, created together).
  [[nodiscard]] bool one_per_node() const { return pair_t.size() == nodes.size(); }
};

// The attention read-out of APAN's updater: weights over the mailbox and their sum of V.
struct Readout {
  at::Tensor value;  // P x dm
  at::Tensor att;    // P x S x H
  at::Tensor V;      // P x S x dm
};

}  // namespace detail

struct TemporalModel::Impl {
  using Rows = detail::Rows;
  using Readout = detail::Readout;

  ModelConfig cfg;
  const graph::EventStream& data;
  int64_t N, De, Dn, dm, dt, dz, S, mail_dim;
  bool attention, time_proj, apan_updater, dyrep_message, deliver_neighbors, by_time, bf16;
  // A node's mail starts with its own memory: mails go to the endpoints only and are built
  // from the updated memory that write_back also stores, and without query times a batch
  // computes one updated memory per node (so the occurrence each picks does not matter).
  // Holds from reset_memory (both zero) on: nothing else writes mem or mail.
  bool self_mail;
  at::Tensor edge_feat, node_feat;
  // Node memory and mailbox (TGL memorys.py): one mail per node (TGN's "last" aggregator),
  // or for the attention updater a ring of S mails with their times and an empty flag.
  at::Tensor mem, mail;
  std::vector<double> mem_ts;
  std::vector<float> mail_dt;  // per node: time between its last two events (mail's dt)
  std::vector<double> mail_ts;     // N x S (attention updater)
  std::vector<uint8_t> mail_full;  // N x S: slot holds a mail
  std::vector<int64_t> next_slot;  // N: ring position of the next mail
  std::vector<std::pair<std::string, at::Tensor>> params;
  std::vector<at::Tensor> snapshot;  // best-validation parameters (snapshot_params)
  std::optional<nn::AdamW> opt;      // over params, in their order
  std::mt19937_64 rng;
  // Dropout masks (keep_scales); its own stream, so that the uniform sampler's draws do not
  // depend on the dropout rates.
  mutable std::mt19937_64 drop_rng;
  // Scratch, -1 between uses: last batch position of a node (write-back), a node's index
  // in Rows::nodes, an event's index among a batch's distinct edges.
  std::vector<int64_t> stamp, node_slot, edge_slot;

  struct Forward {
    at::Tensor z;       // roots x dz
    at::Tensor s_root;  // roots x dm: updated memory of the roots (for write-back)
  };

  // ---- model.cpp: parameters and assembly
  Impl(const ModelConfig& c, const graph::EventStream& d, uint64_t seed);
  static at::Tensor uniform(at::IntArrayRef shape, double bound);
  void add(const std::string& name, at::Tensor t);
  void linear(const std::string& name, int64_t out, int64_t in);
  const at::Tensor& P(const std::string& name) const;
  at::Tensor mm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b = {}) const;
  at::Tensor lin(const at::Tensor& x, const std::string& name) const;
  std::pair<at::Tensor, at::Tensor> fused_kv(const std::string& prefix) const;
  at::Tensor phi(const at::Tensor& delta) const;
  at::Tensor keep_scales(int64_t n, double p) const;
  at::Tensor dropout(const at::Tensor& x, double p, bool train) const;
  std::pair<at::Tensor, at::Tensor> predict(const at::Tensor& z, int64_t B, int64_t q) const;
  Rows build_rows(const std::vector<int64_t>& roots, const std::vector<double>& ts, const graph::NeighborBlock* nb,
                  bool keyed_by_time);
  void sample(const graph::TemporalAdjacency& g, const std::vector<int64_t>& roots, const std::vector<double>& ts,
              graph::NeighborBlock& nb);
  Forward embed(const std::vector<int64_t>& roots, const std::vector<double>& ts, const graph::TemporalAdjacency& g, bool train,
                StageTimes& times, bool with_attention);
  void adam();
  PassOutput run(const std::vector<size_t>& events, const std::vector<int64_t>& negs, int64_t q, const graph::TemporalAdjacency& g,
                 bool train, size_t batch_size, StageTimes& times);

  // ---- memory.cpp: memory and mailbox
  void reset_memory();
  void write_back(const std::vector<size_t>& events, size_t b0, size_t B, const std::vector<int64_t>& roots,
                  const std::vector<double>& ts, const Forward& f, const graph::TemporalAdjacency& g, StageTimes& times);

  // ---- updaters.cpp: memory updaters
  Readout mailbox_readout(const at::Tensor& mem_p, const at::Tensor& kv_mail, const at::Tensor& w_kv, const at::Tensor& dts,
                          const at::Tensor& mask, bool train) const;
  at::Tensor updated_memory(const Rows& rw, bool train, StageTimes& times);

  // ---- attention.cpp: temporal attention
  at::Tensor attend(const at::Tensor& h_root, const at::Tensor& h, const Rows& rw, const graph::NeighborBlock& nb,
                    const std::vector<double>& ts, bool train, StageTimes& times);
  at::Tensor attend_kv(const at::Tensor& h_root, const at::Tensor& h, const Rows& rw, const graph::NeighborBlock& nb,
                       const std::vector<double>& ts, bool train, StageTimes& times);
  at::Tensor attention_query(const at::Tensor& h_root) const;
  at::Tensor attention_output(const at::Tensor& agg, const at::Tensor& h_root, bool train) const;
  at::Tensor dropout_keep(int64_t slots, bool train) const;
};

}  // namespace mlsys::tgnn
