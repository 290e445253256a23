// Simulator conformance with the reference implementation (its uniform case), schedules,
// and the execution-plan deadlock check.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "plan/cost_table.hpp"
#include "plan/execution_plan.hpp"
#include "plan/schedules.hpp"
#include "plan/simulator.hpp"

using namespace mlsys::plan;
using nlohmann::json;

namespace {

std::vector<std::vector<int64_t>> shapes(int n) { return std::vector<std::vector<int64_t>>(static_cast<size_t>(n), {4, 512, 0}); }

// The notes' uniform case, staged through the cost-table JSON a user would write.
StagedPipeline uniform(const std::vector<int>& assignment, const std::string& schedule = "wait-free-cyclic") {
  return merge_layers(parse_cost_table(to_json(uniform_cost_table(assignment, schedule)), "uniform.json"));
}

}  // namespace

TEST_CASE("the five rows of the reference's uniform table reproduce through the cost-table input", "[sim]") {
  // planners.md §2.6: makespan (ms) and peak memory (MB, the highest device) of the
  // reference simulator, no permutation.
  struct Row {
    std::vector<int> assignment;
    std::string schedule;
    double makespan, peak;
    size_t stages;
  };
  const std::vector<Row> rows = {{{0, 0, 1, 1, 2, 2, 3, 3}, "1f1b", 45.6, 9000, 4},
                                 {{0, 0, 1, 1, 2, 2, 3, 3}, "wait-free-cyclic", 44.6, 15000, 4},
                                 {{0, 1, 2, 3, 0, 1, 2, 3}, "interleaved-1f1b", 39.4, 12000, 8},
                                 {{0, 1, 2, 3, 0, 1, 2, 3}, "wait-free-cyclic", 39.4, 16000, 8},
                                 {{0, 1, 2, 3, 3, 2, 1, 0}, "wait-free-cyclic", 39.8, 15000, 7}};
  for (const auto& row : rows) {
    const CostTable t = parse_cost_table(to_json(uniform_cost_table(row.assignment, row.schedule)), "uniform.json");
    const StagedPipeline p = merge_layers(t);
    INFO(row.schedule << " on " << row.assignment[4] << row.assignment[5] << row.assignment[6] << row.assignment[7]);
    CHECK(p.stage_layers.size() == row.stages);  // consecutive layers on one device merged
    const SimResult r = simulate(p.spec, p.work, table_schedule(t, p, "uniform.json"));
    REQUIRE(r.ok);
    CHECK(r.makespan_ms == Approx(row.makespan).margin(1e-9));
    CHECK(r.max_peak_mb() == Approx(row.peak));
  }
}

TEST_CASE("merged stages add times and stored activation; the peak is the reference's", "[sim]") {
  CostTable t = uniform_cost_table({0, 0, 0, 1}, "1f1b");
  t.microbatches.resize(1);
  auto& lc = t.microbatches[0];
  lc.fw_ms = {1, 2, 3, 4};
  lc.stored_mb = {10, 20, 30, 40};
  lc.peak_mb = {100, 15, 60, 50};
  lc.activation_mb = {1, 2, 5};
  t.model_state_mb = {1, 2, 3, 4};
  const StagedPipeline p = merge_layers(t);
  REQUIRE(p.stage_layers.size() == 2);
  CHECK(p.work[0].fw_ms[0] == 6);
  CHECK(p.work[0].stored_mb[0] == 60);
  // max(0 + 100, 10 + 15, 30 + 60)
  CHECK(p.work[0].peak_mb[0] == 100);
  CHECK(p.spec.state_mb == std::vector<double>{6, 4});
  // The boundary after the merged stage is that of its last layer (5 MB at 100 Gb/s).
  CHECK(p.work[0].fw_comm_ms[0] == Approx(0.4));
}

TEST_CASE("peak memory during a backward: the reference's definition and the working-set one", "[sim]") {
  // One device, one stage, one micro-batch: state 100, stored 1000, peak 3000 (fw), the
  // backward finds 1100 resident. Reference: a backward adds nothing on top (1100); working
  // set: 1100 + 3000 - 1000 = 3100 (and the forward's 100 + 3000 = 3100 too).
  CostTable t = uniform_cost_table({0}, "1f1b");
  t.microbatches.resize(1);
  t.microbatches[0].peak_mb = {3000};
  t.microbatches[0].stored_mb = {1000};
  t.model_state_mb = {100};
  StagedPipeline p = merge_layers(t);
  SimResult r = simulate(p.spec, p.work, one_f_one_b(p.spec, 1), true);
  REQUIRE(r.ok);
  CHECK(r.max_peak_mb() == 3100);
  // The per-op memory steps: forward 3100, backward 1100 (reference).
  std::vector<double> tops;
  for (const auto& [time, mb] : r.memory[0]) tops.push_back(mb);
  CHECK(tops == std::vector<double>{100, 3100, 1100, 1100, 100});
  p.spec.backward_peak = BackwardPeak::working_set;
  r = simulate(p.spec, p.work, one_f_one_b(p.spec, 1), true);
  tops.clear();
  for (const auto& [time, mb] : r.memory[0]) tops.push_back(mb);
  CHECK(tops == std::vector<double>{100, 3100, 1100, 3100, 100});
}

TEST_CASE("the cost table refuses what it cannot simulate, naming the field", "[sim]") {
  const json good = to_json(uniform_cost_table({0, 0, 1, 1}, "1f1b"));
  auto refuse = [&](json j, const std::string& what) {
    CHECK_THROWS_WITH(parse_cost_table(j, "t.json"), Catch::Contains(what));
  };
  json j = good;
  j["micro_batches"][0]["fw_us"] = {1, 2, 3};
  refuse(j, "t.json: micro_batches[0].fw_us: expected an array of 4 numbers, found an array of 3 elements");
  j = good;
  j["micro_batches"][1]["peak_activation_mb"][2] = -1;
  refuse(j, "micro_batches[1].peak_activation_mb[2]: expected a number in [0");
  j = good;
  j["device_assignment"] = {0, 2, 2, 0};
  refuse(j, "device_assignment: expected every device 0..2 used, found no layer on device 1");
  j = good;
  j["cluster"]["bandwith_gbps"] = 10;
  refuse(j, "cluster.bandwith_gbps: expected no such field");
  j = good;
  j["schedule"] = "gpipe";
  refuse(j, "schedule: expected one of 1f1b|interleaved-1f1b|wait-free-cyclic, found \"gpipe\"");
  // 1F1B on a zig-zag layout: refused when the schedule is made.
  j = good;
  j["device_assignment"] = {0, 1, 1, 0};
  const CostTable t = parse_cost_table(j, "t.json");
  CHECK_THROWS_WITH(table_schedule(t, merge_layers(t), "t.json"),
                    Catch::Contains("t.json: schedule: expected one of wait-free-cyclic for layout other"));
}

TEST_CASE("the cyclic schedule keeps each device under its memory limit", "[sim]") {
  auto u = uniform({0, 0, 1, 1, 2, 2, 3, 3});
  u.spec.memory_limit_mb.assign(4, 7000.0);  // room for 2 stored micro-batches + a peak
  const SimResult r = simulate(u.spec, u.work, cyclic(u.spec, u.work));
  REQUIRE(r.ok);
  CHECK(r.max_peak_mb() <= 7000.0);
  // 1F1B needs 9000 MB on device 0 and cannot respect the limit.
  CHECK(simulate(u.spec, u.work, one_f_one_b(u.spec, 8)).max_peak_mb() > 7000.0);
}

TEST_CASE("a compute order that waits on itself is reported as a deadlock", "[sim]") {
  auto u = uniform({0, 0, 1, 1, 2, 2, 3, 3});
  Schedule s = one_f_one_b(u.spec, 8);
  // Device 3 runs the backward of micro-batch 1 before its forward.
  auto& o = s.order[3];
  std::swap(o[0], o[3]);
  const SimResult r = simulate(u.spec, u.work, s);
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.error, Catch::Contains("deadlock"));
}

// Simulates `s`, builds the plans from its timeline and checks them: the send/receive
// check, the timed instruction run (no deadlock, the event simulator's makespan), and every
// op once.
void check_plans(const PipelineSpec& spec, const std::vector<MicroBatchWork>& work, const Schedule& s) {
  const int M = static_cast<int>(work.size());
  const SimResult r = simulate(spec, work, s, true);
  REQUIRE(r.ok);
  const auto plans = build_execution_plans(spec, r, shapes(M));
  REQUIRE(static_cast<int>(plans.size()) == spec.devices);
  CHECK(check_deadlock(plans).empty());
  const PlanRun run = execute_plans(plans);
  INFO(run.error);
  REQUIRE(run.ok);
  CHECK(run.makespan_ms == Approx(r.makespan_ms).epsilon(1e-12));
  int loads = 0, fw = 0, bw = 0;
  for (const auto& p : plans) {
    for (const auto& i : p.instructions) {
      loads += i.kind == InstrKind::load_input;
      fw += i.kind == InstrKind::forward;
      bw += i.kind == InstrKind::backward;
    }
  }
  CHECK(loads == M);
  CHECK(fw == M * spec.stages());
  CHECK(bw == M * spec.stages());
}

TEST_CASE("plans of every layout pass the deadlock check and run in the simulated time", "[plan]") {
  // Linear, interleaved, zig-zag (whose plans used to fail with "mismatched transfer") and a
  // user-given layout, each with every schedule the layout allows.
  for (const auto& asg : std::vector<std::vector<int>>{{0, 0, 1, 1, 2, 2, 3, 3},
                                                       {0, 1, 2, 3, 0, 1, 2, 3},
                                                       {0, 1, 2, 3, 3, 2, 1, 0},
                                                       {0, 2, 1, 3, 1, 0, 2, 3}}) {
    const auto u = uniform(asg);
    for (const auto& name : valid_schedules(u.spec, 8)) {
      INFO(name << " on " << asg[1] << asg[2] << asg[3] << asg[4] << asg[5]);
      check_plans(u.spec, u.work, make_schedule(name, u.spec, u.work));
    }
  }
}

TEST_CASE("plans of random layouts and costs pass the deadlock check and run in the simulated time", "[plan]") {
  std::mt19937_64 rng(12);
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  auto pick = [&](int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng); };
  int with_limit_held = 0;
  for (int trial = 0; trial < 120; ++trial) {
    const int L = pick(2, 12);
    const int D = pick(2, std::min(L, 5));
    std::vector<int> asg(static_cast<size_t>(L));
    for (int l = 0; l < L; ++l) asg[static_cast<size_t>(l)] = l < D ? l : pick(0, D - 1);
    std::shuffle(asg.begin(), asg.end(), rng);
    if (trial % 4 == 0) {  // an interleaved layout now and then
      for (int l = 0; l < L; ++l) asg[static_cast<size_t>(l)] = l % D;
    }
    CostTable t = uniform_cost_table(asg, "wait-free-cyclic");
    const int M = pick(1, 12);
    t.microbatches.resize(static_cast<size_t>(M), t.microbatches[0]);
    for (auto& lc : t.microbatches) {
      for (int l = 0; l < L; ++l) {
        lc.fw_ms[static_cast<size_t>(l)] = uni(0.05, 3);
        lc.bw_ms[static_cast<size_t>(l)] = uni(0.05, 6);
        lc.stored_mb[static_cast<size_t>(l)] = uni(0, 100);
        lc.peak_mb[static_cast<size_t>(l)] = lc.stored_mb[static_cast<size_t>(l)] + uni(0, 50);
      }
      for (int l = 0; l + 1 < L; ++l) {
        lc.activation_mb[static_cast<size_t>(l)] = uni(0, 20);
        lc.gradient_mb[static_cast<size_t>(l)] = uni(0, 20);
      }
    }
    t.cluster.latency_us = t.cluster.inter_latency_us = uni(0, 50);
    t.max_in_flight = pick(0, 3);
    // A tight memory limit on half of the trials: the cyclic schedule then holds forwards back.
    if (trial % 2 == 1) t.cluster.memory_limit_mb.assign(static_cast<size_t>(D), uni(100, 600));
    const StagedPipeline p = merge_layers(t);
    for (const auto& name : valid_schedules(p.spec, M)) {
      INFO("trial " << trial << " " << name << " L=" << L << " D=" << D << " M=" << M);
      const Schedule s = make_schedule(name, p.spec, p.work, CyclicOptions{t.max_in_flight, true});
      if (name == "wait-free-cyclic" && !t.cluster.memory_limit_mb.empty()) {
        const Schedule unlimited = make_schedule(name, p.spec, p.work, CyclicOptions{t.max_in_flight, false});
        with_limit_held += s.order != unlimited.order;
      }
      check_plans(p.spec, p.work, s);
    }
  }
  CHECK(with_limit_held > 10);  // the memory-limited cyclic orders were exercised
}

TEST_CASE("the deadlock check catches a swapped send/recv and a wrong shape", "[plan]") {
  auto u = uniform({0, 0, 1, 1, 2, 2, 3, 3});
  const auto good = build_execution_plans(u.spec, simulate(u.spec, u.work, one_f_one_b(u.spec, 8), true), shapes(8));
  REQUIRE(check_deadlock(good).empty());
  REQUIRE(execute_plans(good).ok);

  SECTION("two receives swapped") {
    auto bad = good;
    auto& ins = bad[1].instructions;
    std::vector<size_t> recv;
    for (size_t i = 0; i < ins.size(); ++i) {
      if (ins[i].kind == InstrKind::recv_activation_start) recv.push_back(i);
    }
    REQUIRE(recv.size() >= 2);
    std::swap(ins[recv[0]], ins[recv[1]]);
    CHECK_THAT(check_deadlock(bad), Catch::Contains("mismatched transfer"));
    CHECK_THAT(execute_plans(bad).error, Catch::Contains("mismatched transfers from rank 0 to rank 1"));
  }
  SECTION("a receive moved before the send it depends on") {
    // Rank 1 waits for micro-batch 0's gradient before sending that micro-batch's activation.
    auto bad = good;
    auto& ins = bad[1].instructions;
    size_t send = 0, recv = 0;
    for (size_t i = 0; i < ins.size(); ++i) {
      if (ins[i].kind == InstrKind::send_activation_start && ins[i].mb == 0 && send == 0) send = i;
      if (ins[i].kind == InstrKind::recv_grad_finish && ins[i].mb == 0 && recv == 0) recv = i;
    }
    REQUIRE(send < recv);
    const Instruction r = ins[recv];
    ins.erase(ins.begin() + static_cast<long>(recv));
    ins.insert(ins.begin() + static_cast<long>(send), r);
    CHECK_THAT(check_deadlock(bad), Catch::Contains("deadlock"));
    const PlanRun run = execute_plans(bad);
    CHECK_FALSE(run.ok);
    CHECK_THAT(run.error, Catch::Contains("deadlock: rank"));
  }
  SECTION("a receive expecting another shape") {
    auto bad = good;
    for (auto& i : bad[2].instructions) {
      if (i.kind == InstrKind::recv_activation_start && i.mb == 3) i.shape = {4, 1024, 0};
    }
    CHECK_THAT(check_deadlock(bad), Catch::Contains("mismatched transfer"));
  }
}
