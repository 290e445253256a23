// The DynaPipe planner end to end on small batches: coverage, memory, baselines, inputs.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include "core/error.hpp"
#include "tests/support/harness.hpp"
#include "plan/baselines.hpp"
#include "plan/dynapipe_config.hpp"
#include "plan/dynapipe_planner.hpp"
#include "plan/ordering.hpp"

using namespace mlsys::plan;
namespace fs = std::filesystem;

namespace {

ModelSpec small_gpt() {
  ModelSpec m;
  m.encoder_layers = 8;
  m.hidden = 2048;
  m.heads = 16;
  m.kv_channels = 128;
  m.ffn = 8192;
  return m;
}

ModelSpec small_t5() {
  ModelSpec m;
  m.kind = ModelKind::t5;
  m.encoder_layers = 4;
  m.decoder_layers = 4;
  m.hidden = 1024;
  m.heads = 16;
  m.kv_channels = 64;
  m.ffn = 4096;
  return m;
}

void check_plan(const CostModel& cost, const std::vector<SampleLength>& samples, const std::vector<int64_t>& ids,
                const BatchPlan& p) {
  // Every sample exactly once.
  std::multiset<int64_t> seen;
  for (const auto& mb : p.microbatches) seen.insert(mb.samples.begin(), mb.samples.end());
  REQUIRE(seen.size() == ids.size());
  for (auto id : ids) CHECK(seen.count(id) == 1);
  // Memory never exceeded in any emitted plan, and the instructions pass the check.
  for (const auto& rp : p.replicas) {
    REQUIRE(rp.sim.ok);
    for (size_t d = 0; d < rp.sim.peak_mb.size(); ++d) CHECK(rp.sim.peak_mb[d] <= cost.cluster().device_memory_mb);
    CHECK(check_deadlock(rp.ranks).empty());
  }
  CHECK(p.real_tokens <= p.padded_tokens);
}

}  // namespace

TEST_CASE("lengths are clipped as the reference does", "[lengths]") {
  std::vector<SampleLength> gpt{{3000, 100}, {100, 3000}, {1000, 1000}, {2000, 48}};
  clip_lengths(gpt, 2048, /*concatenated=*/true);
  // Decoder-only: the concatenation fits max_seqlen, the target is kept, the input cut.
  CHECK(gpt[0].input == 1948);
  CHECK(gpt[0].target == 100);
  CHECK(gpt[1].input == 1);
  CHECK(gpt[1].target == 2047);
  CHECK(gpt[2].input == 1000);
  CHECK(gpt[2].target == 1000);
  CHECK(gpt[3].input == 2000);
  CHECK(gpt[3].target == 48);
  std::vector<SampleLength> t5{{3000, 100}, {100, 3000}};
  clip_lengths(t5, 2048, /*concatenated=*/false);
  CHECK(t5[0].input == 2048);
  CHECK(t5[0].target == 100);
  CHECK(t5[1].input == 100);
  CHECK(t5[1].target == 2048);
}

TEST_CASE("planned GPT batches cover every sample and respect memory", "[planner]") {
  FlanLikeConfig g;
  g.samples = 400;
  auto samples = generate_flan_like(g, 5);
  clip_lengths(samples, 2048, /*concatenated=*/true);
  const auto batches = split_global_batches(samples, 32768);
  for (double mem : {80000.0, 24000.0}) {
    ClusterSpec cl;
    cl.device_memory_mb = mem;
    const CostModel cost(small_gpt(), cl);
    PlannerOptions opt;
    const BatchPlan p = plan_batch(cost, samples, batches[0], opt);
    INFO("memory " << mem);
    check_plan(cost, samples, batches[0], p);
    CHECK(p.makespan_ms > 0);
  }
}

TEST_CASE("tight memory forces recomputation and the plan still fits", "[planner]") {
  FlanLikeConfig g;
  g.samples = 200;
  auto samples = generate_flan_like(g, 9);
  clip_lengths(samples, 4096, /*concatenated=*/true);
  const auto batches = split_global_batches(samples, 32768);
  ClusterSpec cl;
  cl.device_memory_mb = 9000;  // state ~2.7 GB per stage; a 4096-token sample needs recomputation
  const CostModel cost(small_gpt(), cl);
  std::vector<int64_t> ids = batches[0];
  samples.push_back({2048, 2048});
  ids.push_back(static_cast<int64_t>(samples.size() - 1));
  const BatchPlan p = plan_batch(cost, samples, ids, PlannerOptions{});
  check_plan(cost, samples, ids, p);
  CHECK(p.recompute != Recompute::none);
}

TEST_CASE("a sample that fits under no recomputation mode is an input error", "[planner]") {
  ClusterSpec cl;
  cl.device_memory_mb = 3600;
  const CostModel cost(small_gpt(), cl);
  std::vector<SampleLength> samples{{100, 10}, {200000, 10}};
  CHECK_THROWS_AS(plan_batch(cost, samples, {0, 1}, PlannerOptions{}), mlsys::core::InputError);
}

TEST_CASE("T5 plans with data parallel replicas", "[planner]") {
  FlanLikeConfig g;
  g.samples = 300;
  auto samples = generate_flan_like(g, 2);
  clip_lengths(samples, 2048, /*concatenated=*/false);
  const auto batches = split_global_batches(samples, 32768);
  ClusterSpec cl;
  cl.data_parallel = 2;
  cl.zero_stage = 1;
  const CostModel cost(small_t5(), cl);
  const BatchPlan p = plan_batch(cost, samples, batches[0], PlannerOptions{});
  check_plan(cost, samples, batches[0], p);
  REQUIRE(p.replicas.size() == 2);
  for (const auto& mb : p.microbatches) CHECK(mb.shape.dec_len > 0);
}

TEST_CASE("baselines: padding efficiency ordering and a full sweep", "[baselines]") {
  FlanLikeConfig g;
  g.samples = 300;
  auto samples = generate_flan_like(g, 4);
  clip_lengths(samples, 2048, /*concatenated=*/true);
  auto batches = split_global_batches(samples, 32768);
  batches.resize(2);
  ClusterSpec cl;
  const CostModel cost(small_gpt(), cl);
  BaselineOptions opt;
  auto eff = [&](BaselineMethod m, int64_t knob) {
    int64_t real = 0, padded = 0;
    for (auto id : batches[0]) real += samples[static_cast<size_t>(id)].input + samples[static_cast<size_t>(id)].target;
    for (const auto& s : baseline_microbatches(m, cost.model(), samples, batches[0], knob, opt)) padded += s.padded_tokens();
    return static_cast<double>(real) / static_cast<double>(padded);
  };
  // Sorting and per-micro-batch padding waste less than padding to the batch maximum.
  CHECK(eff(BaselineMethod::fixed_mbs, 8) > eff(BaselineMethod::padding, 8));
  CHECK(eff(BaselineMethod::packing, 4) > 0.75);
  for (auto m : {BaselineMethod::padding, BaselineMethod::packing, BaselineMethod::fixed_mbs, BaselineMethod::fixed_tokens}) {
    const BaselineResult r = run_baseline(m, cost, samples, batches, opt);
    INFO(to_string(m));
    REQUIRE(r.feasible);
    CHECK(r.time_ms > 0);
    CHECK(r.peak_mb <= cl.device_memory_mb);
  }
}

TEST_CASE("length files: JSONL and CSV, errors name file and line", "[data]") {
  const mlsys::test::TempDir dir("plan");
  auto write = [&](const std::string& name, const std::string& text) { return dir.write(name, text); };
  auto ok = load_lengths(write("a.jsonl", "{\"input\": 5, \"target\": 2}\n\n{\"input_ids\": [1,2,3], \"target_len\": 1}\n"));
  REQUIRE(ok.size() == 2);
  CHECK(ok[1].input == 3);
  auto csv = load_lengths(write("a.csv", "id,input,target\n1,10,3\n2,20,4\n"));
  REQUIRE(csv.size() == 2);
  CHECK(csv[1].target == 4);
  CHECK_THROWS_WITH(load_lengths(write("b.jsonl", "{\"input\": 5, \"target\": 2}\n{\"input\": \"x\"}\n")),
                    Catch::Contains("b.jsonl:2:") && Catch::Contains("'input'"));
  CHECK_THROWS_WITH(load_lengths(write("c.jsonl", "{\"input\": 5, \"target\": 2}\nnot json\n")),
                    Catch::Contains("c.jsonl:2:"));
  CHECK_THROWS_WITH(load_lengths(write("d.csv", "input,target\n1,2\n3,-4\n")), Catch::Contains("d.csv:3:"));
  CHECK_THROWS_AS(load_lengths(dir / "missing.jsonl"), mlsys::core::InputError);
}

TEST_CASE("fewer micro-batches than replicas leaves replicas idle", "[planner]") {
  // Three samples on 4 replicas: at most 3 micro-batches, so one replica at least idles.
  std::vector<SampleLength> samples{{100, 10}, {200, 10}, {300, 10}};
  ClusterSpec cl;
  cl.data_parallel = 4;
  const CostModel cost(small_gpt(), cl);
  const BatchPlan p = plan_batch(cost, samples, {0, 1, 2}, PlannerOptions{});
  check_plan(cost, samples, {0, 1, 2}, p);
  REQUIRE(p.replicas.size() == 4);
  int idle = 0;
  for (const auto& rp : p.replicas) {
    REQUIRE(rp.ranks.size() == 4);
    if (rp.order.empty()) {
      ++idle;
      CHECK(rp.schedule == "idle");
      for (const auto& r : rp.ranks) CHECK(r.instructions.empty());
    }
  }
  CHECK(idle >= 1);
  CHECK(p.makespan_ms > 0);
}

TEST_CASE("a sample too large is reported by its data set index; model state too large is a config error",
          "[planner]") {
  ClusterSpec cl;
  cl.device_memory_mb = 3600;
  const CostModel cost(small_gpt(), cl);
  std::vector<SampleLength> samples{{100, 10}, {120, 10}, {200000, 10}, {90, 5}};
  // Planning order differs from data set order (length sort puts the big one first).
  try {
    (void)plan_batch(cost, samples, {3, 0, 2, 1}, PlannerOptions{});
    FAIL("expected SampleTooLarge");
  } catch (const SampleTooLarge& e) {
    CHECK(e.sample == 2);
    CHECK_THAT(e.what(), Catch::Contains("sample 2 ") && Catch::Contains("input 200000"));
  }
  ClusterSpec tiny;
  tiny.device_memory_mb = 500;  // below the state of every stage (~2.7 GB)
  const CostModel no_room(small_gpt(), tiny);
  CHECK_THROWS_AS(plan_batch(no_room, samples, {0, 1}, PlannerOptions{}), mlsys::core::ConfigError);
  CHECK_THROWS_WITH(plan_batch(no_room, samples, {0, 1}, PlannerOptions{}),
                    Catch::Contains("cluster.device_memory_mb") && Catch::Contains("stage 0"));
}

TEST_CASE("many tiny samples plan quickly and exactly cover the batch", "[planner]") {
  // 4096 samples of 8 tokens: every contiguous run fits, so the DP rows are long (this took
  // tens of seconds before the rows were bounded and computed incrementally).
  std::vector<SampleLength> samples(4096, SampleLength{6, 2});
  for (size_t i = 0; i < samples.size(); i += 7) samples[i] = {3, 1};
  std::vector<int64_t> ids(samples.size());
  std::iota(ids.begin(), ids.end(), 0);
  ClusterSpec cl;
  const CostModel cost(small_gpt(), cl);
  const BatchPlan p = plan_batch(cost, samples, ids, PlannerOptions{});
  check_plan(cost, samples, ids, p);
  CHECK(p.microbatches.size() > 1);
  // T5 with thousands of distinct (input, target) pairs: the clustering falls back.
  std::vector<SampleLength> t5s;
  for (int i = 0; i < 3000; ++i) t5s.push_back({1 + i % 1500, 1 + (i * 7) % 61});
  std::vector<int64_t> t5ids(t5s.size());
  std::iota(t5ids.begin(), t5ids.end(), 0);
  const auto order = order_by_clusters(t5s, t5ids, 16, true);
  CHECK(std::multiset<int64_t>(order.begin(), order.end()) == std::multiset<int64_t>(t5ids.begin(), t5ids.end()));
}

TEST_CASE("the reported baseline setting is the fastest simulated one", "[baselines]") {
  FlanLikeConfig g;
  g.samples = 300;
  auto samples = generate_flan_like(g, 4);
  clip_lengths(samples, 2048, /*concatenated=*/true);
  auto batches = split_global_batches(samples, 32768);
  batches.resize(2);
  ClusterSpec cl;
  cl.device_memory_mb = 30000;  // some knobs fit only with recomputation
  const CostModel cost(small_gpt(), cl);
  BaselineOptions opt;
  for (auto m : {BaselineMethod::packing, BaselineMethod::fixed_mbs, BaselineMethod::fixed_tokens}) {
    const BaselineResult best = run_baseline(m, cost, samples, batches, opt);
    INFO(to_string(m));
    REQUIRE(best.feasible);
    const double best_tput = static_cast<double>(best.real_tokens) / best.time_ms;
    int feasible = 0;
    for (int64_t knob : m == BaselineMethod::fixed_tokens ? opt.token_budgets : opt.microbatch_sizes) {
      for (Recompute rc : opt.recompute) {
        const BaselineResult r = evaluate_baseline(m, cost, samples, batches, knob, rc, opt);
        if (!r.feasible) continue;
        ++feasible;
        INFO("knob " << knob << " " << to_string(rc));
        CHECK(best_tput >= static_cast<double>(r.real_tokens) / r.time_ms * (1 - 1e-12));
        CHECK(r.peak_mb <= cl.device_memory_mb);
      }
    }
    CHECK(feasible > 1);
  }
}

TEST_CASE("the built-in defaults equal configs/dynapipe-plan/default.json", "[config]") {
  const auto builtin = read_dynapipe_config(mlsys::core::parse_config("{}", "<builtin>"));
  const auto file = read_dynapipe_config(
      mlsys::core::load_config(std::string(MLSYS_SOURCE_ROOT) + "/configs/dynapipe-plan/default.json"));
  CHECK(builtin.resolved.dump() == file.resolved.dump());
  CHECK(builtin.cluster.device_memory_mb == 80000.0);
}

TEST_CASE("the planner picks the fastest layout that fits, per batch", "[planner]") {
  // Linear, interleaved and zig-zag are each planned alone and all together, under device
  // memories from roomy to tight: the joint plan is the fastest single-layout plan that fits
  // (its layout, its makespan), never above the memory limit, and its stages follow it.
  FlanLikeConfig g;
  g.samples = 400;
  const auto samples = generate_flan_like(g, 3);
  const auto batches = split_global_batches(samples, 16384);
  REQUIRE(!batches.empty());
  std::set<std::string> chosen;
  int some_layout_failed = 0;
  for (double memory : {80000.0, 5000.0, 4500.0, 4000.0}) {
    ClusterSpec cl;
    cl.device_memory_mb = memory;
    const CostModel cost(small_gpt(), cl);
    PlannerOptions opt;
    opt.permutation_search = false;
    for (size_t b = 0; b < std::min<size_t>(batches.size(), 2); ++b) {
      INFO("memory " << memory << " batch " << b);
      double best = std::numeric_limits<double>::infinity();
      std::string best_layout;
      for (const std::string name : {"linear", "interleaved", "zigzag"}) {
        PlannerOptions one = opt;
        one.layouts = {name};
        try {
          const BatchPlan p = plan_batch(cost, samples, batches[b], one);
          CHECK(p.layout == name);
          if (p.makespan_ms < best) {
            best = p.makespan_ms;
            best_layout = name;
          }
        } catch (const mlsys::core::InputError&) {
          ++some_layout_failed;
        }
      }
      REQUIRE(!best_layout.empty());
      const BatchPlan p = plan_batch(cost, samples, batches[b], opt);
      check_plan(cost, samples, batches[b], p);
      CHECK(p.layout == best_layout);
      CHECK(p.makespan_ms == Approx(best).epsilon(1e-12));
      CHECK(p.spec.stage_device.size() == (p.layout == "linear" ? 4u : p.layout == "interleaved" ? 8u : 7u));
      for (const auto& rp : p.replicas) CHECK(rp.ranks.size() == 4);
      chosen.insert(p.layout);
    }
  }
  CHECK(chosen.size() == 3);      // each layout wins somewhere: the choice depends on the memory
  CHECK(some_layout_failed > 0);  // and some layout did not fit somewhere
}
