// lib/graph's DynamicFeatureCache: LRU, LFU and FIFO on a hand-made access sequence whose
// hits and contents were worked out by hand, rows always the source's, restoration, and
// hit rates that reward reuse.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "core/error.hpp"
#include "graph/feature_cache.hpp"
#include "tests/support/expect_error.hpp"

using namespace mlsys;
using namespace mlsys::graph;

namespace {

// Row of id: (id, id + 0.5); counts fetches.
struct Source {
  int64_t fetches = 0;
  FeatureSource fn() {
    return [this](int64_t id, float* row) {
      ++fetches;
      row[0] = static_cast<float>(id);
      row[1] = static_cast<float>(id) + 0.5f;
    };
  }
};

std::set<int64_t> contents(const DynamicFeatureCache& c) {
  std::set<int64_t> s;
  for (int64_t id : c.slots()) {
    if (id >= 0) s.insert(id);
  }
  return s;
}

int64_t run(DynamicFeatureCache& c, Source& src, std::vector<int64_t> ids) {
  std::vector<float> out(ids.size() * 2, -1.0f);
  const CacheStats b = c.gather(ids, src.fn(), out.data());
  for (size_t i = 0; i < ids.size(); ++i) {
    REQUIRE(out[2 * i] == static_cast<float>(ids[i]));
    REQUIRE(out[2 * i + 1] == static_cast<float>(ids[i]) + 0.5f);
  }
  return b.hits;
}

}  // namespace

TEST_CASE("feature cache: LRU, LFU and FIFO on a hand-made access sequence (capacity 3)") {
  // b1 [1 2 3]: all miss, all enter. b2 [1 1 2]: 3 hits. b3 [4]: LRU and LFU evict 3 (least
  // recent / least frequent), FIFO evicts 1 (oldest). b4 [2 5]: 2 hits everywhere; LRU
  // evicts 1 (last used b2), LFU evicts 4 (count 1), FIFO evicts 2 (next in ring, although
  // just hit). b5 [1 3]: LRU holds neither, LFU holds 1, FIFO holds 3.
  struct Want {
    CachePolicy p;
    std::vector<int64_t> hits;
    std::vector<std::set<int64_t>> after;
  };
  const std::vector<Want> wants = {
      {CachePolicy::lru, {0, 3, 0, 1, 0}, {{1, 2, 3}, {1, 2, 3}, {1, 2, 4}, {2, 4, 5}, {1, 2, 3}}},
      {CachePolicy::lfu, {0, 3, 0, 1, 1}, {{1, 2, 3}, {1, 2, 3}, {1, 2, 4}, {1, 2, 5}, {1, 2, 3}}},
      {CachePolicy::fifo, {0, 3, 0, 1, 1}, {{1, 2, 3}, {1, 2, 3}, {2, 3, 4}, {3, 4, 5}, {1, 4, 5}}},
  };
  const std::vector<std::vector<int64_t>> seq = {{1, 2, 3}, {1, 1, 2}, {4}, {2, 5}, {1, 3}};
  for (const Want& w : wants) {
    INFO(to_string(w.p));
    DynamicFeatureCache c(3, 2, w.p);
    Source src;
    int64_t fetched = 0;
    for (size_t b = 0; b < seq.size(); ++b) {
      INFO("batch " << b + 1);
      CHECK(run(c, src, seq[b]) == w.hits[b]);
      CHECK(contents(c) == w.after[b]);
      fetched = src.fetches;
    }
    int64_t hits = 0;
    for (int64_t h : w.hits) hits += h;
    CHECK(c.stats().lookups == 11);
    CHECK(c.stats().hits == hits);
    CHECK(c.stats().hit_rate() == Approx(static_cast<double>(hits) / 11));
    CHECK(c.stats().fetched == fetched);
    CHECK(c.stats().fetched == 11 - hits);  // no id missed twice within a batch here
  }
}

TEST_CASE("feature cache: distinct misses are fetched once per batch; at most capacity enter") {
  DynamicFeatureCache c(2, 2, CachePolicy::lru);
  Source src;
  CHECK(run(c, src, {7, 7, 8, 9, 7}) == 0);
  CHECK(src.fetches == 3);
  CHECK(contents(c) == std::set<int64_t>{7, 8});  // the first two distinct misses
  CHECK(c.stats().inserted == 2);
  CHECK(run(c, src, {7, 9}) == 1);
  CHECK(c.stats().evicted == 1);
  // A zero-capacity cache misses everything and never breaks.
  DynamicFeatureCache none(0, 2, CachePolicy::fifo);
  CHECK(run(none, src, {1, 1, 2}) == 0);
  CHECK(run(none, src, {1}) == 0);
  test::expect_error([&] {
    std::vector<float> out(4);
    c.gather(std::vector<int64_t>{1, -3}, src.fn(), out.data());
  }, {"lookup 1", "expected an id >= 0", "found -3"});
  CHECK(run(c, src, {7, 9}) == 2);  // the refused batch changed nothing
  test::expect_error<core::ConfigError>([] { (void)parse_cache_policy("mru"); }, {"cache.policy", "found 'mru'"});
}

TEST_CASE("feature cache: restoration pre-warms with the next round's ids") {
  for (const CachePolicy p : {CachePolicy::lru, CachePolicy::lfu, CachePolicy::fifo}) {
    INFO(to_string(p));
    DynamicFeatureCache c(3, 2, p);
    Source src;
    run(c, src, {1, 2, 3});
    CHECK(c.restore(std::vector<int64_t>{10, 11, 10, 12, 13}, src.fn()) == 3);
    CHECK(contents(c) == std::set<int64_t>{10, 11, 12});
    CHECK_FALSE(c.contains(1));
    CHECK(run(c, src, {10, 12, 13}) == 2);
  }
}
