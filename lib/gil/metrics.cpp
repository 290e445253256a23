// Class-balanced accuracy, AP and AF (CGLB sign convention).
#include "gil/metrics.hpp"

#include <cmath>
#include <map>

#include "core/error.hpp"

namespace mlsys::gil {

double class_balanced_accuracy(const std::vector<int64_t>& predicted, const std::vector<int64_t>& labels) {
  if (predicted.size() != labels.size()) {
    throw core::RuntimeFailure("class_balanced_accuracy: " + std::to_string(predicted.size()) + " predictions for " +
                               std::to_string(labels.size()) + " labels");
  }
  std::map<int64_t, std::pair<double, double>> per_class;  // class -> (right, all)
  for (size_t i = 0; i < labels.size(); ++i) {
    auto& [right, all] = per_class[labels[i]];
    right += predicted[i] == labels[i] ? 1 : 0;
    all += 1;
  }
  if (per_class.empty()) return 0;
  double sum = 0;
  for (const auto& [c, ra] : per_class) sum += ra.first / ra.second;
  return sum / static_cast<double>(per_class.size());
}

double average_performance(const AccuracyMatrix& m) {
  if (m.tasks < 1) return 0;
  double s = 0;
  for (int64_t j = 0; j < m.tasks; ++j) s += m.at(m.tasks - 1, j);
  return s / static_cast<double>(m.tasks);
}

double average_forgetting(const AccuracyMatrix& m) {
  if (m.tasks < 2) return 0;
  double s = 0;
  for (int64_t j = 0; j + 1 < m.tasks; ++j) s += m.at(m.tasks - 1, j) - m.at(j, j);
  return s / static_cast<double>(m.tasks - 1);
}

MeanStd mean_std(const std::vector<double>& v) {
  MeanStd r;
  if (v.empty()) return r;
  for (double x : v) r.mean += x;
  r.mean /= static_cast<double>(v.size());
  if (v.size() < 2) return r;
  double ss = 0;
  for (double x : v) ss += (x - r.mean) * (x - r.mean);
  r.std = std::sqrt(ss / static_cast<double>(v.size() - 1));
  return r;
}

}  // namespace mlsys::gil
