// GNNFlow's dynamic feature cache (notes gnnflow.md §3) for node or edge features: a fixed
// number of slots holding feature rows by id, updated at batch granularity. Per batch:
// every lookup that finds its id cached is a hit; the distinct missing ids are fetched from
// the source once each; after the batch, the first min(capacity, distinct misses) of them
// (in order of first appearance) enter the cache, evicting by policy:
//   lru:  each slot's key is the last batch that used it; evict the smallest key.
//   lfu:  each hit adds 1 to its slot's key, a new entry starts at 1; evict the smallest.
//   fifo: a ring pointer; new entries overwrite the slots in ring order (hits change nothing).
// Empty slots fill first (lowest index); among equal keys the lower slot goes first. The
// cache persists across batches and increments (reuse); restore() reloads it with given
// ids (restoration: pre-warming with the next round's edges).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace mlsys::graph {

enum class CachePolicy { lru, lfu, fifo };

// "lru", "lfu" or "fifo" (core::ConfigError naming `field` otherwise).
CachePolicy parse_cache_policy(const std::string& name, const std::string& field = "cache.policy");
const char* to_string(CachePolicy p);

struct CacheStats {
  int64_t batches = 0, lookups = 0, hits = 0;
  int64_t fetched = 0;   // distinct misses read from the source
  int64_t inserted = 0, evicted = 0;
  [[nodiscard]] double hit_rate() const { return lookups == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(lookups); }
};

// Writes the feature row of `id` (dim floats) to `row`.
using FeatureSource = std::function<void(int64_t id, float* row)>;

class DynamicFeatureCache {
 public:
  // capacity >= 0 slots (0 = no cache: every lookup misses), rows of `dim` floats.
  DynamicFeatureCache(int64_t capacity, int64_t dim, CachePolicy policy);

  // Gathers the rows of `ids` (non-negative; duplicates allowed) into out (ids.size() x dim)
  // and updates the cache as above. Returns this batch's statistics (also added to stats()).
  CacheStats gather(std::span<const int64_t> ids, const FeatureSource& source, float* out);
  // Restoration: empties the cache, then loads the first `capacity` distinct ids of `ids`
  // (keys as new entries of the current batch). Returns how many were loaded.
  int64_t restore(std::span<const int64_t> ids, const FeatureSource& source);

  [[nodiscard]] bool contains(int64_t id) const { return slot_of(id) >= 0; }
  // The cached ids by slot (-1 = empty).
  [[nodiscard]] const std::vector<int64_t>& slots() const { return id_; }
  [[nodiscard]] const CacheStats& stats() const { return total_; }
  [[nodiscard]] int64_t capacity() const { return capacity_; }
  [[nodiscard]] CachePolicy policy() const { return policy_; }
  // Bytes held: feature rows, slot keys and ids, the id -> slot map.
  [[nodiscard]] size_t bytes() const;

 private:
  [[nodiscard]] int64_t slot_of(int64_t id) const {
    return id >= 0 && static_cast<size_t>(id) < where_.size() ? where_[static_cast<size_t>(id)] : -1;
  }
  void place(int64_t slot, int64_t id, const float* row);
  // `n` slots to receive new entries, by policy.
  std::vector<int64_t> victims(size_t n);

  int64_t capacity_, dim_;
  CachePolicy policy_;
  std::vector<float> rows_;        // capacity x dim
  std::vector<int64_t> id_, key_;  // per slot
  std::vector<int64_t> where_;     // id -> slot (-1), grown on demand
  int64_t ring_ = 0;               // fifo
  int64_t batch_ = 0;
  CacheStats total_;
};

}  // namespace mlsys::graph
