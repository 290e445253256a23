// Link-prediction metrics as TGN/TGL/sklearn define them: average precision (sklearn's
// step-wise sum over thresholds, ties grouped), ROC-AUC (ties count one half), MRR with q
// negatives per positive (rank = 1 + #{neg > pos} + #{neg == pos}/2: TGL's rank for
// distinct scores, OGB/TGB's tie-averaged one so a 0/1 scorer like EdgeBank is not
// flattered), and an accumulator that keeps both the per-batch average (what TGN/TGL
// report) and the global value over the split. NaN scores (a diverged model) are a
// core::RuntimeFailure naming the metric and the score, never an endless ranking loop;
// every loop polls core::stop_requested().
#pragma once

#include <cstddef>
#include <vector>

namespace mlsys::tgnn {

// AP = sum_n (R_n - R_{n-1}) P_n over the distinct score thresholds, from high to low.
double average_precision(const std::vector<double>& pos, const std::vector<double>& neg);
// P(score(pos) > score(neg)) + 0.5 P(equal), over all pairs.
double roc_auc(const std::vector<double>& pos, const std::vector<double>& neg);
// pos[i] against neg[i*q .. i*q+q): mean of 1 / (1 + #{neg > pos} + #{neg == pos} / 2).
double mean_reciprocal_rank(const std::vector<double>& pos, const std::vector<double>& neg, size_t q);

struct LinkMetrics {
  size_t events = 0;
  double ap = 0, auc = 0;              // global over the split
  double ap_batch = 0, auc_batch = 0;  // mean over batches
  double mrr = 0;
  size_t mrr_negatives = 0;
};

// Feed the batches of one split in order; the first of a positive's q negatives is its
// AP/AUC negative, all q count for MRR.
class MetricAccumulator {
 public:
  explicit MetricAccumulator(size_t q = 1) : q_(q) {}
  void add_batch(const std::vector<double>& pos, const std::vector<double>& neg);
  [[nodiscard]] LinkMetrics result() const;

 private:
  size_t q_;
  std::vector<double> pos_, neg_first_, neg_all_;
  double ap_sum_ = 0, auc_sum_ = 0;
  size_t batches_ = 0;
};

}  // namespace mlsys::tgnn
