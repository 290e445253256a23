// Metrics of node-wise graph incremental learning (CGLB's pipeline.py; research notes
// dot_ssrm.md §B.5): class-balanced accuracy, and from the accuracy matrix
// acc[t][j] (test accuracy on task j after learning task t, in percent) the average
// performance AP and the average forgetting AF, with CGLB's sign (negative = forgetting).
// No LibTorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mlsys::gil {

// Mean over the classes present in `labels` of the share of their nodes predicted right.
// 0 when `labels` is empty. RuntimeFailure when the two sizes differ.
double class_balanced_accuracy(const std::vector<int64_t>& predicted, const std::vector<int64_t>& labels);

// A T x T accuracy matrix, row-major: acc[t * T + j]. Entries above the diagonal (tasks not
// yet seen) are not read.
struct AccuracyMatrix {
  int64_t tasks = 0;
  std::vector<double> acc;
  [[nodiscard]] double at(int64_t t, int64_t j) const { return acc[static_cast<size_t>(t * tasks + j)]; }
  double& at(int64_t t, int64_t j) { return acc[static_cast<size_t>(t * tasks + j)]; }
};

// AP = mean_j acc[T-1][j] over all T tasks.
double average_performance(const AccuracyMatrix& m);
// AF = mean_{j < T-1} (acc[T-1][j] - acc[j][j]); 0 for a single task. Negative = forgetting.
double average_forgetting(const AccuracyMatrix& m);

// Mean and sample standard deviation (0 for fewer than two values).
struct MeanStd {
  double mean = 0, std = 0;
};
MeanStd mean_std(const std::vector<double>& v);

}  // namespace mlsys::gil
