// The chronological and inductive splits (TGN's data_processing: quantiles and hidden nodes).
#include "graph/split.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.hpp"

namespace mlsys::graph {

Split chronological_split(const EventStream& s, const SplitOptions& opt) {
  Split sp;
  const size_t n = s.size();
  std::vector<int8_t> part(n, 0);
  if (opt.method == "ext_roll") {
    if (s.ext_roll.size() != n) throw core::InputError(s.source + ": split.method is ext_roll, but the data has no ext_roll column");
    for (size_t i = 0; i < n; ++i) part[i] = s.ext_roll[i];
    sp.val_time = sp.test_time = s.t.front();
    for (size_t i = 0; i < n; ++i) {
      if (part[i] == 0) sp.val_time = s.t[i];
      if (part[i] <= 1) sp.test_time = s.t[i];
    }
  } else {
    // numpy's quantile (linear interpolation) on the sorted times.
    auto quantile = [&](double q) {
      const double pos = q * static_cast<double>(n - 1);
      const auto lo = static_cast<size_t>(std::floor(pos));
      const size_t hi = std::min(lo + 1, n - 1);
      return s.t[lo] + (pos - static_cast<double>(lo)) * (s.t[hi] - s.t[lo]);
    };
    sp.val_time = quantile(1.0 - opt.val_fraction - opt.test_fraction);
    sp.test_time = quantile(1.0 - opt.test_fraction);
    for (size_t i = 0; i < n; ++i) part[i] = s.t[i] <= sp.val_time ? 0 : (s.t[i] <= sp.test_time ? 1 : 2);
  }
  const auto nn = static_cast<size_t>(s.num_nodes);
  sp.hidden.assign(nn, 0);
  sp.new_node.assign(nn, 0);
  // Nodes seen after val_time, in id order, then a seeded draw of hidden_fraction of them.
  std::vector<uint8_t> late(nn, 0);
  for (size_t i = 0; i < n; ++i) {
    if (part[i] > 0) late[static_cast<size_t>(s.src[i])] = late[static_cast<size_t>(s.dst[i])] = 1;
  }
  std::vector<int64_t> late_ids;
  for (size_t v = 0; v < nn; ++v) {
    if (late[v]) late_ids.push_back(static_cast<int64_t>(v));
  }
  std::mt19937_64 rng(opt.seed);
  std::shuffle(late_ids.begin(), late_ids.end(), rng);
  const auto n_hidden = static_cast<size_t>(opt.hidden_fraction * static_cast<double>(late_ids.size()));
  for (size_t i = 0; i < n_hidden; ++i) sp.hidden[static_cast<size_t>(late_ids[i])] = 1;
  std::vector<uint8_t> seen(nn, 0);
  for (size_t i = 0; i < n; ++i) {
    if (part[i] == 0) {
      sp.train_all.push_back(i);
      if (!sp.hidden[static_cast<size_t>(s.src[i])] && !sp.hidden[static_cast<size_t>(s.dst[i])]) {
        sp.train.push_back(i);
        seen[static_cast<size_t>(s.src[i])] = seen[static_cast<size_t>(s.dst[i])] = 1;
      }
    } else if (part[i] == 1) {
      sp.val.push_back(i);
    } else {
      sp.test.push_back(i);
    }
  }
  for (size_t v = 0; v < nn; ++v) sp.new_node[v] = seen[v] ? 0 : 1;
  if (sp.train.empty() || sp.val.empty() || sp.test.empty()) {
    throw core::InputError(s.source + ": the chronological split leaves an empty part (train " + std::to_string(sp.train.size()) +
                           ", val " + std::to_string(sp.val.size()) + ", test " + std::to_string(sp.test.size()) +
                           " events); the data needs more distinct timestamps");
  }
  return sp;
}

}  // namespace mlsys::graph
