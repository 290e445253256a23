// AP, AUC and MRR (sklearn / TGL definitions) and the per-batch + global accumulator.
#include "tgnn/metrics.hpp"

#include <algorithm>
#include <utility>

namespace mlsys::tgnn {

double average_precision(const std::vector<double>& pos, const std::vector<double>& neg) {
  if (pos.empty()) return 0.0;
  std::vector<std::pair<double, int>> all;
  all.reserve(pos.size() + neg.size());
  for (double s : pos) all.emplace_back(s, 1);
  for (double s : neg) all.emplace_back(s, 0);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  const auto P = static_cast<double>(pos.size());
  double tp = 0, fp = 0, ap = 0;
  for (size_t i = 0; i < all.size();) {
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
  if (pos.empty() || neg.empty()) return 0.0;
  std::vector<std::pair<double, int>> all;
  for (double s : pos) all.emplace_back(s, 1);
  for (double s : neg) all.emplace_back(s, 0);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  double rank_sum = 0;  // ranks of the positives, 1-based, ties averaged
  for (size_t i = 0; i < all.size();) {
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
  if (pos.empty() || q == 0) return 0.0;
  double sum = 0;
  for (size_t i = 0; i < pos.size(); ++i) {
    double above = 0;
    for (size_t j = 0; j < q; ++j) above += neg[i * q + j] > pos[i] ? 1.0 : (neg[i * q + j] == pos[i] ? 0.5 : 0.0);
    sum += 1.0 / (1.0 + above);
  }
  return sum / static_cast<double>(pos.size());
}

void MetricAccumulator::add_batch(const std::vector<double>& pos, const std::vector<double>& neg) {
  if (pos.empty()) return;
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
