// Sample ordering: length sort, complete-linkage clustering, open tour of clusters.
#include "plan/ordering.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

namespace mlsys::plan {

std::vector<int64_t> order_by_length(const std::vector<SampleLength>& samples, const std::vector<int64_t>& ids) {
  std::vector<int64_t> out = ids;
  std::stable_sort(out.begin(), out.end(), [&](int64_t x, int64_t y) {
    const auto& a = samples[static_cast<size_t>(x)];
    const auto& b = samples[static_cast<size_t>(y)];
    return a.input + a.target > b.input + b.target;
  });
  return out;
}

std::vector<std::vector<int>> complete_linkage_clusters(const std::vector<SampleLength>& points, double threshold) {
  const int n = static_cast<int>(points.size());
  std::vector<std::vector<int>> members(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) members[static_cast<size_t>(i)] = {i};
  if (n <= 1) return members;
  // Cluster distance matrix, updated by Lance-Williams for complete linkage (max).
  std::vector<double> dist(static_cast<size_t>(n) * static_cast<size_t>(n));
  auto D = [&](int i, int j) -> double& { return dist[static_cast<size_t>(i) * static_cast<size_t>(n) + static_cast<size_t>(j)]; };
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      const double dx = static_cast<double>(points[static_cast<size_t>(i)].input - points[static_cast<size_t>(j)].input);
      const double dy = static_cast<double>(points[static_cast<size_t>(i)].target - points[static_cast<size_t>(j)].target);
      D(i, j) = std::sqrt(dx * dx + dy * dy);
    }
  }
  std::vector<char> active(static_cast<size_t>(n), 1);
  std::vector<std::vector<int>> done;
  int remaining = n;
  std::vector<int> chain;
  while (remaining > 0) {
    if (remaining == 1) {
      for (int i = 0; i < n; ++i) {
        if (active[static_cast<size_t>(i)]) done.push_back(std::move(members[static_cast<size_t>(i)]));
      }
      break;
    }
    if (chain.empty()) {
      for (int i = 0; i < n; ++i) {
        if (active[static_cast<size_t>(i)]) {
          chain.push_back(i);
          break;
        }
      }
    }
    const int a = chain.back();
    // Nearest active neighbour of a (prefer the previous chain element on ties).
    int best = -1;
    double bd = std::numeric_limits<double>::infinity();
    if (chain.size() >= 2) {
      best = chain[chain.size() - 2];
      bd = D(a, best);
    }
    for (int j = 0; j < n; ++j) {
      if (j == a || !active[static_cast<size_t>(j)]) continue;
      if (D(a, j) < bd) {
        bd = D(a, j);
        best = j;
      }
    }
    if (chain.size() >= 2 && best == chain[chain.size() - 2]) {
      // Reciprocal nearest neighbours: merge, or retire both when they are too far apart
      // (complete-linkage distances only grow, so neither can merge later).
      chain.pop_back();
      chain.pop_back();
      if (bd <= threshold) {
        auto& ma = members[static_cast<size_t>(a)];
        auto& mb = members[static_cast<size_t>(best)];
        ma.insert(ma.end(), mb.begin(), mb.end());
        mb.clear();
        active[static_cast<size_t>(best)] = 0;
        for (int k = 0; k < n; ++k) {
          if (!active[static_cast<size_t>(k)] || k == a) continue;
          D(a, k) = D(k, a) = std::max(D(a, k), D(best, k));
        }
        --remaining;
      } else {
        for (int x : {a, best}) {
          active[static_cast<size_t>(x)] = 0;
          done.push_back(std::move(members[static_cast<size_t>(x)]));
          --remaining;
        }
      }
    } else {
      chain.push_back(best);
    }
  }
  return done;
}

std::vector<int> open_tour(const std::vector<std::pair<double, double>>& pts, int max_passes) {
  const int n = static_cast<int>(pts.size());
  std::vector<int> tour;
  if (n == 0) return tour;
  auto dist = [&](int i, int j) {
    return std::abs(pts[static_cast<size_t>(i)].first - pts[static_cast<size_t>(j)].first) +
           std::abs(pts[static_cast<size_t>(i)].second - pts[static_cast<size_t>(j)].second);
  };
  int start = 0;
  for (int i = 1; i < n; ++i) {
    const auto& p = pts[static_cast<size_t>(i)];
    const auto& q = pts[static_cast<size_t>(start)];
    if (p.first + p.second > q.first + q.second) start = i;
  }
  std::vector<char> used(static_cast<size_t>(n), 0);
  tour.push_back(start);
  used[static_cast<size_t>(start)] = 1;
  for (int step = 1; step < n; ++step) {
    const int cur = tour.back();
    int best = -1;
    double bd = std::numeric_limits<double>::infinity();
    for (int j = 0; j < n; ++j) {
      if (!used[static_cast<size_t>(j)] && dist(cur, j) < bd) {
        bd = dist(cur, j);
        best = j;
      }
    }
    tour.push_back(best);
    used[static_cast<size_t>(best)] = 1;
  }
  // 2-opt on an open path with a fixed start: reverse tour[i..j].
  for (int pass = 0; pass < max_passes; ++pass) {
    bool improved = false;
    for (int i = 1; i + 1 < n; ++i) {
      for (int j = i + 1; j < n; ++j) {
        const int a = tour[static_cast<size_t>(i - 1)], b = tour[static_cast<size_t>(i)];
        const int c = tour[static_cast<size_t>(j)];
        const double before = dist(a, b) + (j + 1 < n ? dist(c, tour[static_cast<size_t>(j + 1)]) : 0.0);
        const double after = dist(a, c) + (j + 1 < n ? dist(b, tour[static_cast<size_t>(j + 1)]) : 0.0);
        if (after + 1e-9 < before) {
          std::reverse(tour.begin() + i, tour.begin() + j + 1);
          improved = true;
        }
      }
    }
    if (!improved) break;
  }
  return tour;
}

std::vector<int64_t> order_by_clusters(const std::vector<SampleLength>& samples, const std::vector<int64_t>& ids,
                                       double threshold, bool use_tsp) {
  auto lex_desc = [&](int64_t x, int64_t y) {
    const auto& a = samples[static_cast<size_t>(x)];
    const auto& b = samples[static_cast<size_t>(y)];
    return a.input != b.input ? a.input > b.input : a.target > b.target;
  };
  std::vector<int64_t> out = ids;
  if (!use_tsp) {
    std::stable_sort(out.begin(), out.end(), lex_desc);
    return out;
  }
  // Cluster the distinct (input, target) pairs: equal points sit at distance 0, so they
  // share a cluster either way, and the distance matrix is over distinct pairs only.
  std::map<std::pair<int64_t, int64_t>, std::vector<int64_t>> by_point;
  for (auto id : ids) {
    const auto& s = samples[static_cast<size_t>(id)];
    by_point[{s.input, s.target}].push_back(id);
  }
  if (by_point.size() > kMaxClusterPoints) {
    // The O(n^2) distance matrix would be too large: fall back to the lexicographic order.
    std::stable_sort(out.begin(), out.end(), lex_desc);
    return out;
  }
  std::vector<SampleLength> pts;
  std::vector<const std::vector<int64_t>*> members;
  for (const auto& [pt, m] : by_point) {
    pts.push_back({pt.first, pt.second});
    members.push_back(&m);
  }
  auto clusters = complete_linkage_clusters(pts, threshold);
  std::vector<std::pair<double, double>> centroids;
  for (const auto& c : clusters) {
    double x = 0, y = 0, w = 0;
    for (int m : c) {
      const double k = static_cast<double>(members[static_cast<size_t>(m)]->size());
      x += k * static_cast<double>(pts[static_cast<size_t>(m)].input);
      y += k * static_cast<double>(pts[static_cast<size_t>(m)].target);
      w += k;
    }
    centroids.emplace_back(x / w, y / w);
  }
  out.clear();
  for (int ci : open_tour(centroids)) {
    std::vector<int64_t> part;
    for (int m : clusters[static_cast<size_t>(ci)]) {
      const auto& ms = *members[static_cast<size_t>(m)];
      part.insert(part.end(), ms.begin(), ms.end());
    }
    std::stable_sort(part.begin(), part.end(), lex_desc);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

}  // namespace mlsys::plan
