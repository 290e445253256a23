// EdgeBank (Poursafaei et al., NeurIPS'22), unlimited memory: a pair scores 1 when it was
// seen in any earlier batch, else 0. The baseline every memory model must beat.
#pragma once

#include <cstdint>
#include <unordered_set>

namespace mlsys::tgnn {

class EdgeBank {
 public:
  void add(int64_t src, int64_t dst) { seen_.insert(key(src, dst)); }
  [[nodiscard]] double score(int64_t src, int64_t dst) const { return seen_.count(key(src, dst)) ? 1.0 : 0.0; }
  [[nodiscard]] size_t size() const { return seen_.size(); }

 private:
  // Node ids are below 2^32 (the loaders' id space is far smaller).
  static uint64_t key(int64_t s, int64_t d) { return (static_cast<uint64_t>(s) << 32) | static_cast<uint32_t>(d); }
  std::unordered_set<uint64_t> seen_;
};

}  // namespace mlsys::tgnn
