// Link-prediction evaluation of a temporal graph stream, shared by the programs that train
// on one (tgnn-train, gnnflow-stream): negative destinations (TGN's fixed evaluation seeds
// are the caller's), the destination pool they are drawn from, per-batch and global
// metrics over a split and its inductive subset, the EdgeBank baseline, the generator's
// oracle AP, and the split-and-negatives CSV for other tools. No LibTorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "graph/events.hpp"
#include "graph/generator.hpp"
#include "graph/split.hpp"
#include "tgnn/metrics.hpp"

namespace mlsys::tgnn {

// Negative destinations, uniform over `pool` (non-empty), q per event: n * q entries, event
// i's at [i*q, i*q + q), from std::mt19937_64(seed).
std::vector<int64_t> sample_negatives(const std::vector<int64_t>& pool, size_t n, size_t q, uint64_t seed);

// Layout neg[i*q .. i*q+q): slot 0 is event i's AP/AUC negative, drawn one per event from
// `ap_seed` (independent of q); slots 1..q-1 are MRR-only negatives from `mrr_seed`.
std::vector<int64_t> eval_negatives(const std::vector<int64_t>& pool, size_t n, size_t q, uint64_t ap_seed,
                                    uint64_t mrr_seed);

// The destinations negatives are drawn from: every node ("nodes"), or else the distinct
// destinations of `events` ("destinations"), ascending.
std::vector<int64_t> destination_pool(const graph::EventStream& s, const std::vector<size_t>& events, const std::string& kind);

struct SplitMetrics {
  LinkMetrics all, inductive;
};

// Per-batch + global metrics over a split's scores (pos per event, q negatives per event
// as neg[i*q ..]), in batches of `batch` events, and over its inductive subset (events
// touching a node unseen in training).
SplitMetrics score_split(const graph::EventStream& s, const graph::Split& sp, const std::vector<size_t>& events,
                         const std::vector<double>& pos, const std::vector<double>& neg, size_t q, size_t batch);

struct Eval {
  SplitMetrics val, test;
};

// EdgeBank (unlimited memory): the training pairs, then each evaluated batch scored before
// its own pairs are added; val with one negative per event, test with q.
Eval edgebank_eval(const graph::EventStream& s, const graph::Split& sp, const std::vector<int64_t>& val_neg,
                   const std::vector<int64_t>& test_neg, size_t q, size_t batch);

// The generator's oracle AP over the test split (its true probabilities against its own
// negatives, one per event), global; the per-batch mean into *per_batch when given. -1
// when the data has no oracle.
double oracle_ap(const graph::Oracle& oracle, const graph::Split& sp, size_t batch, double* per_batch);

// eval.negatives_out: one CSV row per train, val and test event, in the order this program
// batches them (train = training events after the inductive hold-out), with the event's
// row in the data (0-based, = edges.csv row and edge-feature row), src, dst, time and its
// fixed AP/AUC negative destination (-1 for train: training negatives are redrawn per epoch).
// Written atomically; core::ConfigError when `path` is a folder.
void write_split_negatives(const std::filesystem::path& path, const graph::EventStream& s, const graph::Split& sp,
                           const std::vector<int64_t>& val_neg, const std::vector<int64_t>& test_neg, size_t q);

}  // namespace mlsys::tgnn
