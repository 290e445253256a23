// Sample ordering before the consecutive-partition DP (DynaPipe, arXiv 2311.10418):
// decoder-only models sort by length, descending; encoder-decoder models cluster the
// (input, target) pairs by complete linkage and order the clusters along an open tour
// over their centroids (L1 distance; nearest neighbour + 2-opt in place of LKH).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "plan/length_dataset.hpp"

namespace mlsys::plan {

// Indices into `samples`, longest (input + target) first; ties keep the input order.
std::vector<int64_t> order_by_length(const std::vector<SampleLength>& samples, const std::vector<int64_t>& ids);

// Complete-linkage agglomerative clustering of the (input, target) points with Euclidean
// distance, cut at `threshold` (NN-chain, O(n^2)). Returns clusters of positions in `points`.
std::vector<std::vector<int>> complete_linkage_clusters(const std::vector<SampleLength>& points, double threshold);

// Open tour over points (L1 distance) starting at the point of largest coordinate sum:
// nearest neighbour, then 2-opt until no improving move (at most `max_passes` passes).
std::vector<int> open_tour(const std::vector<std::pair<double, double>>& points, int max_passes = 20);

// The encoder-decoder order: clusters along the tour, each cluster sorted by length desc.
// `use_tsp` false = lexicographic (input, target) descending (the reference's disable_tsp).
// Clustering runs over the distinct (input, target) pairs; above kMaxClusterPoints
// distinct pairs (a 32 MB distance matrix) it falls back to the lexicographic order.
inline constexpr size_t kMaxClusterPoints = 2048;
std::vector<int64_t> order_by_clusters(const std::vector<SampleLength>& samples, const std::vector<int64_t>& ids,
                                       double threshold, bool use_tsp);

}  // namespace mlsys::plan
