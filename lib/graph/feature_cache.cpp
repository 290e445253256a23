// The dynamic feature cache: batch-granular LRU / LFU / FIFO over fixed slots.
#include "graph/feature_cache.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/error.hpp"

namespace mlsys::graph {

CachePolicy parse_cache_policy(const std::string& name, const std::string& field) {
  if (name == "lru") return CachePolicy::lru;
  if (name == "lfu") return CachePolicy::lfu;
  if (name == "fifo") return CachePolicy::fifo;
  throw core::ConfigError(field + ": expected lru, lfu or fifo, found '" + name + "'");
}

const char* to_string(CachePolicy p) {
  switch (p) {
    case CachePolicy::lru: return "lru";
    case CachePolicy::lfu: return "lfu";
    case CachePolicy::fifo: return "fifo";
  }
  return "?";
}

DynamicFeatureCache::DynamicFeatureCache(int64_t capacity, int64_t dim, CachePolicy policy)
    : capacity_(capacity), dim_(dim), policy_(policy) {
  if (capacity < 0 || dim < 1) {
    throw core::ConfigError("feature cache: expected capacity >= 0 and dim >= 1, found " + std::to_string(capacity) + " and " +
                            std::to_string(dim));
  }
  rows_.assign(static_cast<size_t>(capacity * dim), 0.0f);
  id_.assign(static_cast<size_t>(capacity), -1);
  key_.assign(static_cast<size_t>(capacity), 0);
}

size_t DynamicFeatureCache::bytes() const {
  return rows_.capacity() * sizeof(float) + (id_.capacity() + key_.capacity() + where_.capacity()) * sizeof(int64_t);
}

void DynamicFeatureCache::place(int64_t slot, int64_t id, const float* row) {
  const auto s = static_cast<size_t>(slot);
  if (id_[s] >= 0) where_[static_cast<size_t>(id_[s])] = -1;
  id_[s] = id;
  if (static_cast<size_t>(id) >= where_.size()) where_.resize(static_cast<size_t>(id) + 1, -1);
  where_[static_cast<size_t>(id)] = slot;
  key_[s] = policy_ == CachePolicy::lfu ? 1 : batch_;
  std::memcpy(rows_.data() + s * static_cast<size_t>(dim_), row, static_cast<size_t>(dim_) * sizeof(float));
}

std::vector<int64_t> DynamicFeatureCache::victims(size_t n) {
  std::vector<int64_t> out;
  if (policy_ == CachePolicy::fifo) {
    for (size_t i = 0; i < n; ++i) {
      out.push_back(ring_);
      ring_ = (ring_ + 1) % capacity_;
    }
    return out;
  }
  // Empty slots first, then the smallest keys; ties by slot index.
  std::vector<int64_t> order(static_cast<size_t>(capacity_));
  std::iota(order.begin(), order.end(), int64_t{0});
  auto rank = [&](int64_t s) {
    const auto i = static_cast<size_t>(s);
    return std::make_tuple(id_[i] >= 0, key_[i], s);
  };
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(),
                    [&](int64_t a, int64_t b) { return rank(a) < rank(b); });
  order.resize(n);
  std::sort(order.begin(), order.end());
  return order;
}

CacheStats DynamicFeatureCache::gather(std::span<const int64_t> ids, const FeatureSource& source, float* out) {
  CacheStats b;
  b.batches = 1;
  b.lookups = static_cast<int64_t>(ids.size());
  ++batch_;
  const auto d = static_cast<size_t>(dim_);
  std::vector<int64_t> miss_ids;       // distinct, first-appearance order
  std::vector<float> miss_rows;        // their rows
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0) {
      throw core::InputError("feature cache: lookup " + std::to_string(i) + ": expected an id >= 0, found " + std::to_string(ids[i]));
    }
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    const int64_t s = slot_of(id);
    if (s >= 0) {
      ++b.hits;
      const auto si = static_cast<size_t>(s);
      if (policy_ == CachePolicy::lru) key_[si] = batch_;
      if (policy_ == CachePolicy::lfu) ++key_[si];
      std::memcpy(out + i * d, rows_.data() + si * d, d * sizeof(float));
      continue;
    }
    // Distinct misses: a linear probe over this batch's misses would be quadratic, so a
    // temporary negative mark in where_ (-2 - miss index) dedups them in O(1).
    if (static_cast<size_t>(id) >= where_.size()) where_.resize(static_cast<size_t>(id) + 1, -1);
    auto& w = where_[static_cast<size_t>(id)];
    size_t m = 0;
    if (w <= -2) {
      m = static_cast<size_t>(-2 - w);
    } else {
      m = miss_ids.size();
      miss_ids.push_back(id);
      miss_rows.resize(miss_rows.size() + d);
      source(id, miss_rows.data() + m * d);
      w = -2 - static_cast<int64_t>(m);
    }
    std::memcpy(out + i * d, miss_rows.data() + m * d, d * sizeof(float));
  }
  for (int64_t id : miss_ids) where_[static_cast<size_t>(id)] = -1;
  b.fetched = static_cast<int64_t>(miss_ids.size());
  const size_t n = std::min(miss_ids.size(), static_cast<size_t>(capacity_));
  if (n > 0) {
    const std::vector<int64_t> slots = victims(n);
    for (size_t j = 0; j < n; ++j) {
      if (id_[static_cast<size_t>(slots[j])] >= 0) ++b.evicted;
      place(slots[j], miss_ids[j], miss_rows.data() + j * d);
    }
    b.inserted = static_cast<int64_t>(n);
  }
  total_.batches += 1;
  total_.lookups += b.lookups;
  total_.hits += b.hits;
  total_.fetched += b.fetched;
  total_.inserted += b.inserted;
  total_.evicted += b.evicted;
  return b;
}

int64_t DynamicFeatureCache::restore(std::span<const int64_t> ids, const FeatureSource& source) {
  for (size_t s = 0; s < id_.size(); ++s) {
    if (id_[s] >= 0) where_[static_cast<size_t>(id_[s])] = -1;
    id_[s] = -1;
    key_[s] = 0;
  }
  ring_ = 0;
  std::vector<float> row(static_cast<size_t>(dim_));
  int64_t loaded = 0;
  for (int64_t id : ids) {
    if (loaded == capacity_) break;
    if (id < 0 || contains(id)) continue;
    source(id, row.data());
    place(loaded, id, row.data());
    ++loaded;
  }
  if (capacity_ > 0) ring_ = loaded % capacity_;
  return loaded;
}

}  // namespace mlsys::graph
