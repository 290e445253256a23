// Memory-based temporal GNNs (TGN, JODIE, APAN, DyRep) in TGL's batch order (TGN, arXiv
// 2006.10637; TGL, arXiv 2203.14883): per batch, sample neighbors strictly before t,
// update the memory of every involved node lazily with gradient from its mailbox (GRU,
// RNN, or APAN's attention over a mailbox of several mails), embed (temporal attention,
// identity, or JODIE's time projection), score (src,dst) and (src,neg) with the edge
// predictor, step Adam on BCE, and only then write back memory and deliver the new mails
// of the true src/dst (to themselves, or also to their most recent neighbours for APAN;
// last occurrence wins, no gradient), so an event never leaks into its own prediction.
// LibTorch stays behind this header (pimpl); callers see plain vectors.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/h5.hpp"
#include "graph/events.hpp"
#include "graph/sampler.hpp"
#include "graph/temporal_adjacency.hpp"

namespace mlsys::tgnn {

struct ModelConfig {
  // tgn | jodie | apan | dyrep (fills updater, embedding, message and deliver_to when
  // they are "").
  std::string name = "tgn";
  std::string updater;          // gru | rnn | attention (APAN: attention over the mailbox)
  std::string embedding;        // attention | identity | time
  // Where an event's mails go: "self" (its src and dst) or "neighbors" (also the
  // `neighbors` most recent neighbours of each endpoint, sampled for src/dst only, never
  // for negatives: TGL's no_neg; APAN's deliver_to: neighbors).
  std::string deliver_to;
  // What a mail carries for the other endpoint: "memory" (its updated memory; TGN, JODIE,
  // APAN) or "attention" (DyRep, TGN's --use_destination_embedding_in_message: its temporal
  // attention embedding over its most recent neighbours at the event time).
  std::string message;
  int64_t mailbox_size = 10;    // mails kept per node by the attention updater (APAN: 10)
  bool use_memory = true;       // false: memory zeroed (the ablation baseline)
  // The GRU/RNN updater's time input: "query" (TGL: query time - memory time, per row) or
  // "message" (TGN: time between the node's last two events). Either way the mail and
  // hidden-state projections run once per distinct node of the batch and the time part
  // once per distinct (node, query time). The attention updater always uses query time -
  // mail time per mail (TGL).
  std::string memory_time = "query";
  // The linear layers' inputs: "fp32", or "bf16" (weights and activations rounded to
  // bfloat16 for those GEMMs only, with float accumulation, as torch.autocast does on the
  // CPU; the per-head attention products, parameters, optimizer state, memory and every
  // other op stay float32). bf16 runs them on oneDNN (AVX512-BF16 where the CPU has it).
  std::string precision = "fp32";
  // Defaults sized for the `small` stream on a laptop CPU; TGL's are 100/100/100 and lr
  // 1e-4 (configs/tgnn-train/tgn-wiki.json).
  int64_t memory_dim = 32;
  int64_t time_dim = 32;
  int64_t embed_dim = 32;       // attention output (identity/time use memory_dim)
  int64_t heads = 2;
  int64_t neighbors = 10;
  std::string sampler = "recent";  // recent | uniform
  double dropout = 0.1;
  double att_dropout = 0.1;
  double lr = 1e-3;
  // Test-only: let the sampler see events at the query time itself (an event's own edge),
  // to show that the leakage test can fail. Never read from a config file.
  bool leak_own_edge = false;
  // Test-only: fp32 GEMMs through ATen (LibTorch's bundled MKL) instead of OpenBLAS, to
  // check the OpenBLAS path and its hand-written backward against autograd's.
  bool aten_gemm = false;
  // Test-only: the temporal attention in its K/V form (K and V per neighbour slot) instead
  // of the factored form (GEMMs per root); the same function up to float rounding.
  bool kv_attention = false;
  // Test-only: the GRU/RNN updater's mail GEMM on the whole mail even where the mail's
  // first block equals the memory (message time, mails to the endpoints only), instead of
  // folding that block into the hidden-state GEMM; the same function up to float rounding.
  bool unfolded_self_mail = false;

  // Fills updater/embedding from name; ConfigError-free (checked by the config reader).
  void resolve();
};

struct StageTimes {
  double sample = 0, fetch = 0, train = 0, update = 0;  // seconds (MSPipe's stages S, F/M, T, U)
};

struct PassOutput {
  std::vector<double> pos, neg;  // per event; neg holds q per event (event-major)
  double loss_sum = 0;
  size_t batches = 0;
};

struct NodeStates {
  int64_t nodes = 0, memory_dim = 0, embed_dim = 0;
  std::vector<float> memory, embeddings;  // nodes x dim, row-major
  std::vector<double> memory_ts;
};

class TemporalModel {
 public:
  TemporalModel(const ModelConfig& cfg, const graph::EventStream& data, uint64_t seed);
  ~TemporalModel();
  TemporalModel(const TemporalModel&) = delete;
  TemporalModel& operator=(const TemporalModel&) = delete;

  // Zeroes memory, memory timestamps and mailboxes (start of an epoch / a replay).
  void reset_memory();
  // Runs `events` (chronological indices into the data) in batches of `batch_size`.
  // negatives[i*q + j] is the j-th negative destination of events[i] (q may be 0: only the
  // memory is advanced). With `train`: dropout on, BCE on the first negative, Adam step.
  PassOutput run(const std::vector<size_t>& events, const std::vector<int64_t>& negatives, int64_t q,
                 const graph::TemporalAdjacency& graph, bool train, size_t batch_size, StageTimes& times);
  // Memory and embeddings of every node as of time t (after the events run so far).
  NodeStates node_states(const graph::TemporalAdjacency& graph, double t);
  // The same over a T-CSR directly.
  PassOutput run(const std::vector<size_t>& events, const std::vector<int64_t>& negatives, int64_t q,
                 const graph::TemporalGraph& graph, bool train, size_t batch_size, StageTimes& times) {
    return run(events, negatives, q, graph::TcsrAdjacency(graph), train, batch_size, times);
  }
  NodeStates node_states(const graph::TemporalGraph& graph, double t) { return node_states(graph::TcsrAdjacency(graph), t); }

  void snapshot_params();  // keep a copy (best-val selection)
  void restore_params();
  void save(core::H5Writer& w) const;  // /params/<name>
  // InputError naming the file and parameter on a missing one or a shape mismatch.
  void load(const core::H5Reader& r);
  // The full training state under `group` (e.g. "/train_state"), for checkpoints that
  // resume bit for bit: everything that evolves while training. <group>/params/<name>,
  // <group>/adam/{m,v}/<name> and <group>/adam/steps (nn::AdamW's moments and step count),
  // <group>/best/<name> (the snapshot_params copy, when one was taken),
  // <group>/memory/{mem, mem_ts, mail, mail_dt, mail_ts, mail_full, next_slot} (node
  // memory, its times, the mailbox and its ring) and <group>/rng/{sampler, dropout} (the
  // std::mt19937_64 states, as text) and <group>/rng/aten_cpu (ATen's default CPU
  // generator, which the model seeds and draws its initial parameters from).
  void save_state(core::H5Writer& w, const std::string& group) const;
  // Restores what save_state wrote into this model, built with the same config and data
  // (the seed does not matter: the state replaces everything it seeded). Validates every
  // dataset before changing anything: core::InputError naming the file and the dataset
  // when one is missing or its shape, size or type differs from this model's.
  void load_state(const core::H5Reader& r, const std::string& group);
  [[nodiscard]] int64_t num_parameters() const;
  [[nodiscard]] int64_t mail_dim() const;  // width of one mail

  // Test hook for the attention (APAN) updater's read-out. `mails` holds n nodes x
  // mailbox_size slots x mail_dim(), `mail_ts` and `valid` (0 = empty slot) n x slots,
  // `memory` n x memory_dim; every node is queried at time t. Returns, without dropout,
  // the read-out sum_s att_s V_s (n x memory_dim, before residual/LayerNorm/MLP), the
  // weights att (n x slots x heads) and each slot's value projection V_s (n x slots x
  // memory_dim), computed by the same function training uses.
  struct MailboxReadout {
    std::vector<float> readout, weights, values;
  };
  MailboxReadout mailbox_attention(const std::vector<float>& memory, const std::vector<float>& mails,
                                   const std::vector<double>& mail_ts, const std::vector<uint8_t>& valid, double t) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Inverted-dropout scales for n units: out[i] = 0 with probability p, else 1 / (1 - p)
// (0 <= p < 1), each from 32 bits of rng (two units per draw). The model's dropout masks.
void dropout_scales(std::mt19937_64& rng, double p, float* out, int64_t n);

}  // namespace mlsys::tgnn
