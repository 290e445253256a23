// The micro-batch DP against exhaustive search, and the ordering/partition helpers.
#include <catch2/catch.hpp>

#include <random>

#include "plan/cost_model.hpp"
#include "plan/dynapipe_planner.hpp"
#include "plan/microbatch_dp.hpp"
#include "plan/ordering.hpp"

using namespace mlsys::plan;

TEST_CASE("microbatch_dp equals brute force on synthetic costs", "[dp]") {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    const int n = 2 + static_cast<int>(rng() % 11);  // 2..12
    std::vector<int> len(static_cast<size_t>(n));
    for (auto& l : len) l = 1 + static_cast<int>(rng() % 64);
    std::sort(len.rbegin(), len.rend());
    const double overhead = 0.5 + static_cast<double>(rng() % 5);
    const int budget = 64 + static_cast<int>(rng() % 200);
    PartitionProblem p;
    p.n = n;
    p.stages = 1 + static_cast<int>(rng() % 8);
    p.dp_size = 1 + static_cast<double>(rng() % 3);
    p.tmax_interval = 0;
    p.cost = [&](int i, int j) -> std::optional<double> {
      int mx = 0;
      for (int k = i; k < j; ++k) mx = std::max(mx, len[static_cast<size_t>(k)]);
      if ((j - i) * mx > budget) return std::nullopt;
      // Non-linear in size, like a device that saturates.
      return overhead + 0.01 * (j - i) * mx + 0.002 * (j - i) * mx * mx / 64.0;
    };
    const Partition dp = microbatch_dp(p);
    const Partition bf = brute_force_partition(p);
    INFO("trial " << trial << " n " << n << " stages " << p.stages);
    REQUIRE(dp.objective == Approx(bf.objective).epsilon(1e-12));
    REQUIRE(dp.bounds.front() == 0);
    REQUIRE(dp.bounds.back() == n);
  }
}

TEST_CASE("microbatch_dp equals brute force on the analytical cost model", "[dp]") {
  ModelSpec gpt;
  gpt.encoder_layers = 8;
  gpt.hidden = 1024;
  gpt.heads = 16;
  gpt.kv_channels = 64;
  gpt.ffn = 4096;
  ClusterSpec cl;
  cl.stages = 4;
  cl.device_memory_mb = 16000;
  const CostModel cost(gpt, cl);
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 20; ++trial) {
    const int n = 4 + static_cast<int>(rng() % 9);
    std::vector<SampleLength> samples;
    for (int i = 0; i < n; ++i) samples.push_back({static_cast<int64_t>(8 + rng() % 2000), static_cast<int64_t>(1 + rng() % 200)});
    std::vector<int64_t> ids(static_cast<size_t>(n));
    std::iota(ids.begin(), ids.end(), 0);
    const auto order = order_by_length(samples, ids);
    PartitionProblem p;
    p.n = n;
    p.stages = cl.stages;
    p.cost = [&](int i, int j) -> std::optional<double> {
      const auto shape = shape_of(gpt, samples, order.data() + i, order.data() + j, 8, 2);
      if (cost.stage_cost(0, shape, Recompute::none).stored_mb > cost.available_mb(0) / 4) return std::nullopt;
      return microbatch_time(cost, shape, Recompute::none);
    };
    REQUIRE(microbatch_dp(p).objective == Approx(brute_force_partition(p).objective).epsilon(1e-12));
  }
}

TEST_CASE("microbatch_dp trades bubbles against per-micro-batch overhead", "[dp]") {
  // 8 equal samples, cost = 1 + k per micro-batch of k samples, 4 stages:
  // objective(k) = 3 (1 + k) + (8 / k)(1 + k) -> k = 2 gives 9 + 12 = 21 (k=1: 22, k=4: 25).
  PartitionProblem p;
  p.n = 8;
  p.stages = 4;
  p.cost = [](int i, int j) -> std::optional<double> { return 1.0 + (j - i); };
  const Partition r = microbatch_dp(p);
  CHECK(r.objective == Approx(21.0));
  CHECK(r.times.size() == 4);
}

TEST_CASE("microbatch_dp reports a sample that fits nowhere", "[dp]") {
  PartitionProblem p;
  p.n = 3;
  p.cost = [](int i, int) -> std::optional<double> {
    if (i == 1) return std::nullopt;
    return 1.0;
  };
  CHECK_THROWS_WITH(microbatch_dp(p), Catch::Contains("position 1"));
}

TEST_CASE("karmarkar_karp balances and covers every item", "[dp]") {
  const auto groups = karmarkar_karp({8, 7, 6, 5, 4}, 2);
  REQUIRE(groups.size() == 2);
  std::vector<double> v{8, 7, 6, 5, 4};
  double a = 0, b = 0;
  for (int i : groups[0]) a += v[static_cast<size_t>(i)];
  for (int i : groups[1]) b += v[static_cast<size_t>(i)];
  CHECK(groups[0].size() + groups[1].size() == 5);
  CHECK(std::abs(a - b) <= 2.0);  // KK gives 16/14 here (optimum 15/15)
  const auto three = karmarkar_karp({5, 5, 5, 5, 5, 5}, 3);
  for (const auto& g : three) CHECK(g.size() == 2);
}

TEST_CASE("complete-linkage clustering and the open tour", "[order]") {
  std::vector<SampleLength> pts{{100, 10}, {104, 12}, {500, 40}, {98, 9}, {505, 44}, {2000, 3}};
  auto clusters = complete_linkage_clusters(pts, 16);
  REQUIRE(clusters.size() == 3);
  size_t total = 0;
  for (const auto& c : clusters) total += c.size();
  CHECK(total == pts.size());
  // With threshold 0 every point is its own cluster.
  CHECK(complete_linkage_clusters(pts, 0).size() == pts.size());
  // Complete linkage: a chain 0,10,20,30 with threshold 16 never merges all four.
  std::vector<SampleLength> chain{{0, 0}, {10, 0}, {20, 0}, {30, 0}};
  for (const auto& c : complete_linkage_clusters(chain, 16)) CHECK(c.size() <= 2);
  // The tour starts at the largest point and visits every point once.
  std::vector<std::pair<double, double>> cents{{0, 0}, {10, 0}, {5, 0}, {20, 0}};
  auto tour = open_tour(cents);
  CHECK(tour == std::vector<int>{3, 1, 2, 0});
  std::vector<int64_t> ids{0, 1, 2, 3, 4, 5};
  auto order = order_by_clusters(pts, ids, 16, true);
  CHECK(order.size() == 6);
  CHECK(order.front() == 5);
}

TEST_CASE("the FLANv2-like generator is seeded and bimodal", "[data]") {
  FlanLikeConfig cfg;
  cfg.samples = 5000;
  const auto a = generate_flan_like(cfg, 3);
  const auto b = generate_flan_like(cfg, 3);
  const auto c = generate_flan_like(cfg, 4);
  REQUIRE(a.size() == 5000);
  CHECK(to_jsonl(a) == to_jsonl(b));
  CHECK(to_jsonl(a) != to_jsonl(c));
  int short_inputs = 0, long_inputs = 0, labels = 0;
  for (const auto& s : a) {
    CHECK(s.input >= cfg.input_min);
    CHECK(s.input <= cfg.input_max);
    CHECK(s.target >= 1);
    short_inputs += s.input < 250;
    long_inputs += s.input > 400;
    labels += s.target <= 8;
  }
  CHECK(short_inputs > 1500);
  CHECK(long_inputs > 1500);
  CHECK(labels > 2500);
  const auto batches = split_global_batches(a, 65536);
  size_t n = 0;
  for (const auto& batch : batches) {
    int64_t t = 0;
    for (auto i : batch) t += a[static_cast<size_t>(i)].input + a[static_cast<size_t>(i)].target;
    CHECK((t <= 65536 || batch.size() == 1));
    n += batch.size();
  }
  CHECK(n == a.size());
}

TEST_CASE("microbatch_dp with monotone rows and the row fast path equals brute force", "[dp]") {
  std::mt19937_64 rng(17);
  for (int trial = 0; trial < 60; ++trial) {
    const int n = 2 + static_cast<int>(rng() % 11);
    std::vector<int> len(static_cast<size_t>(n));
    for (auto& l : len) l = 1 + static_cast<int>(rng() % 64);
    std::sort(len.rbegin(), len.rend());
    const double overhead = 0.5 + static_cast<double>(rng() % 5);
    const int budget = 64 + static_cast<int>(rng() % 200);
    auto T = [&](int i, int j) -> std::optional<double> {
      int mx = 0;
      for (int k = i; k < j; ++k) mx = std::max(mx, len[static_cast<size_t>(k)]);
      if ((j - i) * mx > budget) return std::nullopt;
      return overhead + 0.01 * (j - i) * mx + 0.002 * (j - i) * mx * mx / 64.0;
    };
    PartitionProblem p;
    p.n = n;
    p.stages = 1 + static_cast<int>(rng() % 8);
    p.dp_size = 1 + static_cast<double>(rng() % 3);
    p.cost = T;
    p.monotone = true;
    if (trial % 2) {
      p.row = [&](int i, int max_len, double cap, std::vector<double>& row) {
        for (int j = i + 1; j <= i + max_len; ++j) {
          auto t = T(i, j);
          if (!t || *t > cap) break;
          row.push_back(*t);
        }
      };
    }
    const Partition dp = microbatch_dp(p);
    const Partition bf = brute_force_partition(p);
    INFO("trial " << trial << " n " << n << " stages " << p.stages);
    REQUIRE(dp.objective == Approx(bf.objective).epsilon(1e-12));
    // With a t_max spacing the result is a valid partition no better than the optimum.
    p.tmax_interval = 0.7;
    const Partition th = microbatch_dp(p);
    CHECK(th.objective >= bf.objective * (1 - 1e-12));
    CHECK(th.bounds.front() == 0);
    CHECK(th.bounds.back() == n);
  }
}

// Measured profiles are noisy: a larger micro-batch can time faster than a single sample.
// The cap from the upper bound then leaves no usable run from some position; that is not
// "does not fit" (it did: dynapipe-plan run failed on a profile measured under load).
TEST_CASE("microbatch_dp with times that are not monotone: a sample slower than the cap still plans", "[dp]") {
  PartitionProblem p;
  p.n = 2;
  p.stages = 2;
  p.dp_size = 1;
  p.tmax_interval = 0;
  p.monotone = false;
  p.cost = [](int i, int j) -> std::optional<double> { return j - i == 2 ? 1.0 : 10.0; };
  const Partition dp = microbatch_dp(p);
  CHECK(dp.bounds == std::vector<int>{0, 2});
  CHECK(dp.objective == Approx(2.0));
  CHECK(dp.objective == Approx(brute_force_partition(p).objective));
  // Random non-monotone costs against exhaustive search, with the default t_max spacing too.
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 80; ++trial) {
    const int n = 2 + static_cast<int>(rng() % 9);
    std::vector<double> noise(static_cast<size_t>(n * n));
    for (auto& x : noise) x = 0.2 + static_cast<double>(rng() % 1000) / 100.0;
    PartitionProblem q;
    q.n = n;
    q.stages = 1 + static_cast<int>(rng() % 5);
    q.dp_size = 1;
    q.tmax_interval = trial % 2 == 0 ? 0.0 : 5.0;
    q.monotone = false;
    q.cost = [&](int i, int j) -> std::optional<double> { return noise[static_cast<size_t>(i * n + j - 1)]; };
    INFO("trial " << trial);
    const Partition a = microbatch_dp(q);
    const Partition b = brute_force_partition(q);
    if (q.tmax_interval == 0.0) {
      CHECK(a.objective == Approx(b.objective).epsilon(1e-12));
    } else {
      CHECK(a.objective >= b.objective - 1e-9);  // thinned candidates: feasible, maybe not optimal
    }
    CHECK(a.bounds.front() == 0);
    CHECK(a.bounds.back() == n);
  }
}
