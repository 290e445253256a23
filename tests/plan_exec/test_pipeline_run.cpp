// dynapipe-plan run's executor: two processes (one pipeline stage each, Gloo on loopback)
// executing DynaPipe's instruction lists give the loss and every parameter gradient of a
// single-process run of the same micro-batches (fp64), and complete every instruction;
// the linear and the zig-zag layout (rank 0 holding the first and the last stage). Also
// `dynapipe-plan profile` then `run` through the CLI.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "plan/dynapipe_planner.hpp"
#include "plan/measured_profile.hpp"
#include "plan_exec/pipeline_executor.hpp"
#include "plan_exec/run_iterations.hpp"
#include "plan_exec/stage_model.hpp"
#include "tensor/distributed.hpp"
#include "tests/support/harness.hpp"
#include "tests/support/multi_process.hpp"

using namespace mlsys::plan;

namespace {

constexpr const char* kWorkerTest = "pipeline run worker (run by the two-process test)";

ModelSpec tiny_model() {
  ModelSpec m;
  m.encoder_layers = 4;
  m.hidden = 16;
  m.heads = 2;
  m.kv_channels = 8;
  m.ffn = 32;
  m.vocab = 40;
  m.bytes_per_value = 8;
  return m;
}

// A hand-made profile of the tiny model's widths: times grow with the tokens.
std::shared_ptr<const MeasuredProfile> tiny_profile() {
  std::vector<ProfileRecord> recs;
  for (int64_t b : {1, 2, 4, 8}) {
    for (int64_t s : {8, 16, 32, 64}) {
      ProfileRecord r;
      r.mbs = b;
      r.seqlen = s;
      const double t = static_cast<double>(b * s);
      r.forward_encoder_ms = 0.1 + 0.01 * t;
      r.backward_encoder_ms = 0.2 + 0.02 * t;
      r.forward_postprocess_ms = 0.05 + 0.005 * t;
      r.backward_postprocess_ms = 0.1 + 0.01 * t;
      r.encoder_activation_mb = 0.001 * t;
      r.peak_encoder_activation_mb = 0.002 * t;
      r.model_embedding_mb = 0.01;
      r.model_encoder_mb = 0.02;
      recs.push_back(r);
    }
  }
  const ModelSpec m = tiny_model();
  return std::make_shared<const MeasuredProfile>(
      MeasuredProfile::from_records(ProfileMetadata{1, m.hidden, m.heads, m.kv_channels, m.ffn}, recs));
}

// Lengths of different sizes, so the planner makes several micro-batches of several shapes.
std::vector<SampleLength> samples() {
  return {{30, 4}, {5, 2}, {12, 9}, {40, 8}, {3, 1}, {22, 6}, {7, 7}, {50, 10}, {9, 3}, {16, 16}, {4, 2}, {28, 1}};
}

void run_worker(const std::string& layout) {
  const mlsys::tensor::DistEnv env = mlsys::tensor::dist_env_from_environment();
  ClusterSpec cl;
  cl.stages = 2;
  cl.device_memory_mb = 1000;
  const CostModel cost(tiny_model(), cl, tiny_profile());
  const auto s = samples();
  std::vector<int64_t> ids(s.size());
  for (size_t i = 0; i < s.size(); ++i) ids[i] = static_cast<int64_t>(i);
  PlannerOptions po;
  po.recompute = {Recompute::none};
  po.layouts = {layout};
  po.tmax_interval_ms = 0;
  const BatchPlan plan = plan_batch(cost, s, ids, po, true);
  REQUIRE(plan.layout == layout);
  REQUIRE(plan.microbatches.size() >= 2);
  const PlannedIteration it = dynapipe_iteration(cost, plan, s, 5);

  auto pg = mlsys::tensor::ProcessGroup::create(env, c10::Device(c10::DeviceType::CPU), std::chrono::seconds(60));
  const auto model = make_stage_model(cost.model(), 64, 11, at::kDouble, c10::Device(c10::DeviceType::CPU));
  const RankPlan& mine = it.ranks.at(static_cast<size_t>(env.rank));
  const RankRun rr = execute_rank_plan(model, it.exec, mine, &pg);
  // every instruction ran: each of the rank's stages did a forward and a backward per micro-batch
  CHECK(rr.executed == static_cast<int64_t>(mine.instructions.size()));
  CHECK(rr.forwards == static_cast<int64_t>(mine.stages.size() * plan.microbatches.size()));
  CHECK(rr.backwards == rr.forwards);
  CHECK(rr.sends > 0);
  CHECK(rr.recvs == rr.sends);

  // the single-process run of the same micro-batches
  const auto ref = make_stage_model(cost.model(), 64, 11, at::kDouble, c10::Device(c10::DeviceType::CPU));
  const double ref_loss = execute_unpipelined(ref, it.exec);
  at::Tensor loss = at::tensor({rr.loss}, at::kDouble);
  pg.all_reduce_sum(loss);
  CHECK(loss.item<double>() == Approx(ref_loss).epsilon(1e-12));
  CHECK(ref_loss > 1.0);  // a real loss (ln 40 ~ 3.7 per token at random weights)

  // each parameter's gradient is computed on exactly one rank and equals the reference's
  std::vector<std::string> names;
  for (const auto& [n, t] : model.params()) names.push_back(n);
  at::Tensor owned = at::zeros({static_cast<int64_t>(names.size())}, at::kDouble);
  for (size_t i = 0; i < names.size(); ++i) {
    const at::Tensor& g = model.params().at(names[i]).grad();
    const at::Tensor& want = ref.params().at(names[i]).grad();
    REQUIRE(want.defined());
    if (!g.defined()) continue;
    owned[static_cast<int64_t>(i)] = 1.0;
    INFO(names[i] << " max |diff| " << (g - want).abs().max().item<double>());
    CHECK(at::allclose(g, want, 1e-9, 1e-13));
    CHECK(want.abs().max().item<double>() > 0);
  }
  pg.all_reduce_sum(owned);
  CHECK(at::equal(owned, at::ones_like(owned)));
  pg.barrier();
}

// Runs this test binary's worker case on two processes; both must pass.
void run_two_ranks(const std::string& layout) {
  const std::vector<int> status = mlsys::test::run_ranks({.ranks = 2,
                                                          .args = {"test_plan_exec", kWorkerTest},
                                                          .extra_env = {"PIPELINE_LAYOUT=" + layout},
                                                          .timeout = std::chrono::minutes(3)});
  for (int r = 0; r < 2; ++r) {
    if (status[static_cast<size_t>(r)] == -1) FAIL("rank " << r << " did not finish within three minutes");
    INFO("layout " << layout << ", rank " << r << " wait status " << status[static_cast<size_t>(r)]);
    CHECK(WIFEXITED(status[static_cast<size_t>(r)]));
    CHECK(WEXITSTATUS(status[static_cast<size_t>(r)]) == 0);
  }
}

}  // namespace

TEST_CASE("pipeline run worker (run by the two-process test)", "[.worker]") {
  const char* layout = std::getenv("PIPELINE_LAYOUT");  // NOLINT(concurrency-mt-unsafe)
  REQUIRE(layout != nullptr);
  run_worker(layout);
}

TEST_CASE("two pipeline processes give the single-process loss and gradients (linear layout)", "[plan_exec]") {
  run_two_ranks("linear");
}

TEST_CASE("two pipeline processes give the single-process loss and gradients (zig-zag layout)", "[plan_exec]") {
  run_two_ranks("zigzag");
}

TEST_CASE("a single process runs a one-stage plan like the unpipelined model", "[plan_exec]") {
  ClusterSpec cl;
  cl.stages = 1;
  const CostModel cost(tiny_model(), cl, tiny_profile());
  const auto s = samples();
  std::vector<int64_t> ids(s.size());
  for (size_t i = 0; i < s.size(); ++i) ids[i] = static_cast<int64_t>(i);
  PlannerOptions po;
  po.recompute = {Recompute::none};
  po.layouts = {"linear"};
  const BatchPlan plan = plan_batch(cost, s, ids, po, true);
  const PlannedIteration it = dynapipe_iteration(cost, plan, s, 5);
  const auto model = make_stage_model(cost.model(), 64, 11, at::kDouble, c10::Device(c10::DeviceType::CPU));
  const RankRun rr = execute_rank_plan(model, it.exec, it.ranks.at(0), nullptr);
  const auto ref = make_stage_model(cost.model(), 64, 11, at::kDouble, c10::Device(c10::DeviceType::CPU));
  CHECK(rr.loss == Approx(execute_unpipelined(ref, it.exec)).epsilon(1e-12));
  // the padded rows' loss is over real tokens only: the scale is 1 / (tokens - 1 per sample)
  int64_t targets = 0;
  for (const auto& x : s) targets += x.input + x.target - 1;
  CHECK(it.exec.loss_scale == Approx(1.0 / static_cast<double>(targets)));
}

TEST_CASE("dynapipe-plan profile then run on two processes: every plan completes, measured beside simulated",
          "[plan_exec][cli]") {
  mlsys::test::TempDir out("dynapipe-run");
  const std::string common =
      " --quiet --threads 1 --set model.encoder_layers=2 --set model.hidden=16 --set model.heads=2"
      " --set model.kv_channels=8 --set model.ffn=32 --set model.vocab=40 --set model.bytes_per_value=4"
      " --set cluster.stages=2 --set cluster.device_memory_mb=1000 --set 'planner.recompute=[\"none\"]'"
      " --set data.max_seqlen=64 --set data.global_batch_tokens=512 --set data.generate.samples=200"
      " --set 'baselines.microbatch_sizes=[1,2,4]' --set 'baselines.token_budgets=[128,256]'"
      " --set 'profile.microbatch_sizes=[1,4,16]' --set 'profile.seqlens=[16,64]' --set profile.repeats=1"
      " --set profile.warmup=0 --out " + out.path.string();
  const auto dp = mlsys::test::program("dynapipe-plan");
  const auto prof = mlsys::test::run_program(dp, "profile" + common);
  INFO(prof.err);
  REQUIRE(prof.code == 0);
  const MeasuredProfile p = MeasuredProfile::read(out.path / "profile");
  CHECK((p.microbatch_sizes() == std::vector<int64_t>{1, 4, 16}));
  CHECK((p.seqlens() == std::vector<int64_t>{16, 64}));
  // memory counted from real allocations: a layer on 16 x 64 tokens keeps more than on 1 x 16
  CHECK(p.records().back().encoder_activation_mb > 10 * p.records().front().encoder_activation_mb);
  CHECK(p.records().front().encoder_activation_mb > 0);
  CHECK(p.records().back().peak_encoder_activation_mb >= p.records().back().encoder_activation_mb);

  const auto run = mlsys::test::run_program(dp, "run --set model.profile=" + (out.path / "profile").string() +
                                                    " --set run.iterations=2 --set 'run.baselines=[\"packing\"]'" + common);
  INFO(run.err);
  REQUIRE(run.code == 0);
  std::ifstream in(out.path / "run.json");
  const auto j = nlohmann::json::parse(in);
  REQUIRE(j.at("methods").size() == 2);
  for (const auto& m : j.at("methods")) {
    REQUIRE(m.at("iterations").size() == 2);
    for (const auto& it : m.at("iterations")) {
      CHECK(it.at("instructions_completed").get<bool>());
      CHECK(it.at("instructions").get<int64_t>() > 0);
      CHECK(it.at("measured_ms").get<double>() > 0);
      CHECK(it.at("predicted_ms").get<double>() > 0);
      CHECK(std::isfinite(it.at("loss").get<double>()));
      CHECK(it.at("rank_ms").size() == 2);
    }
  }
  CHECK(j.at("methods")[0].at("method") == "dynapipe");
  CHECK(j.at("speedup_vs_packing").at("simulated").get<double>() > 0);
  CHECK(j.at("program") == "dynapipe-plan");  // the artifact header
}
