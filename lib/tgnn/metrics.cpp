// AP, AUC and MRR (sklearn / TGL definitions) and the per-batch + global accumulator.
#include "tgnn/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "core/error.hpp"
#include "core/signals.hpp"

namespace mlsys::tgnn {
namespace {


// Ranking needs ordered scores: NaN compares false with everything, so a tie group of a
// NaN never ends (AP and AUC looped for ever) and std::sort's ordering is broken. NaN
// scores mean a model gone wrong (diverged training, non-finite inputs): a run-time
// failure naming the metric and the score. +-inf are ordered and allowed.
void require_scores(const char* metric, const char* which, const std::vector<double>& scores) {
  for (size_t i = 0; i < scores.size(); ++i) {
    core::poll_stop(i);
    if (std::isnan(scores[i])) {
      throw core::RuntimeFailure(std::string(metric) + ": " + which + " score " + std::to_string(i) + " of " +
                                 std::to_string(scores.size()) +
                                 " is NaN (the model's scores are not numbers: diverged training or non-finite inputs)");
    }
  }
}

// q negatives per positive, laid out neg[i*q .. i*q+q).
void require_negatives(const char* metric, size_t positives, size_t q, size_t negatives) {
  if (negatives < positives * q) {
    throw core::RuntimeFailure(std::string(metric) + ": expected " + std::to_string(positives * q) + " negative scores (" +
                               std::to_string(q) + " per positive), found " + std::to_string(negatives));
  }
}

}  // namespace

double average_precision(const std::vector<double>& pos, const std::vector<double>& neg) {
  require_scores("average_precision", "positive", pos);
  require_scores("average_precision", "negative", neg);
  if (pos.empty()) return 0.0;
  std::vector<std::pair<double, int>> all;
  all.reserve(pos.size() + neg.size());
  for (double s : pos) all.emplace_back(s, 1);
  for (double s : neg) all.emplace_back(s, 0);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  const auto P = static_cast<double>(pos.size());
  double tp = 0, fp = 0, ap = 0;
  for (size_t i = 0; i < all.size();) {
    core::poll_stop(i);
    size_t j = i;
    double tp_group = 0;
    while (j < all.size() && all[j].first == all[i].first) {
      tp_group += all[j].second;
      fp += 1 - all[j].second;
      ++j;
    }
    tp += tp_group;
    if (tp_group > 0) ap += (tp_group / P) * (tp / (tp + fp));
    i = j;
  }
  return ap;
}

double roc_auc(const std::vector<double>& pos, const std::vector<double>& neg) {
  require_scores("roc_auc", "positive", pos);
  require_scores("roc_auc", "negative", neg);
  if (pos.empty() || neg.empty()) return 0.0;
  std::vector<std::pair<double, int>> all;
  for (double s : pos) all.emplace_back(s, 1);
  for (double s : neg) all.emplace_back(s, 0);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  double rank_sum = 0;  // ranks of the positives, 1-based, ties averaged
  for (size_t i = 0; i < all.size();) {
    core::poll_stop(i);
    size_t j = i;
    double npos = 0;
    while (j < all.size() && all[j].first == all[i].first) npos += all[j++].second;
    const double avg_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    rank_sum += npos * avg_rank;
    i = j;
  }
  const auto P = static_cast<double>(pos.size()), N = static_cast<double>(neg.size());
  return (rank_sum - P * (P + 1) / 2.0) / (P * N);
}

double mean_reciprocal_rank(const std::vector<double>& pos, const std::vector<double>& neg, size_t q) {
  require_scores("mean_reciprocal_rank", "positive", pos);
  require_scores("mean_reciprocal_rank", "negative", neg);
  if (pos.empty() || q == 0) return 0.0;
  require_negatives("mean_reciprocal_rank", pos.size(), q, neg.size());
  double sum = 0;
  for (size_t i = 0; i < pos.size(); ++i) {
    core::poll_stop(i);
    double above = 0;
    for (size_t j = 0; j < q; ++j) above += neg[i * q + j] > pos[i] ? 1.0 : (neg[i * q + j] == pos[i] ? 0.5 : 0.0);
    sum += 1.0 / (1.0 + above);
  }
  return sum / static_cast<double>(pos.size());
}

void MetricAccumulator::add_batch(const std::vector<double>& pos, const std::vector<double>& neg) {
  if (pos.empty()) return;
  require_negatives("MetricAccumulator::add_batch", pos.size(), q_, neg.size());
  std::vector<double> first(pos.size());
  for (size_t i = 0; i < pos.size(); ++i) first[i] = neg[i * q_];
  ap_sum_ += average_precision(pos, first);
  auc_sum_ += roc_auc(pos, first);
  ++batches_;
  pos_.insert(pos_.end(), pos.begin(), pos.end());
  neg_first_.insert(neg_first_.end(), first.begin(), first.end());
  neg_all_.insert(neg_all_.end(), neg.begin(), neg.end());
}

LinkMetrics MetricAccumulator::result() const {
  LinkMetrics m;
  m.events = pos_.size();
  if (batches_ == 0) return m;
  m.ap = average_precision(pos_, neg_first_);
  m.auc = roc_auc(pos_, neg_first_);
  m.ap_batch = ap_sum_ / static_cast<double>(batches_);
  m.auc_batch = auc_sum_ / static_cast<double>(batches_);
  m.mrr = mean_reciprocal_rank(pos_, neg_all_, q_);
  m.mrr_negatives = q_;
  return m;
}

}  // namespace mlsys::tgnn
