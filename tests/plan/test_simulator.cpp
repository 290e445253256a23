// Simulator conformance with the reference implementation (its uniform case), schedules,
// and the execution-plan deadlock check.
#include <catch2/catch.hpp>

#include "plan/execution_plan.hpp"
#include "plan/schedules.hpp"
#include "plan/simulator.hpp"

using namespace mlsys::plan;

namespace {

std::vector<std::vector<int64_t>> shapes(int n) { return std::vector<std::vector<int64_t>>(static_cast<size_t>(n), {4, 512, 0}); }

}  // namespace

TEST_CASE("1F1B on the uniform case matches the reference: 45.600 ms, 9000 MB", "[sim]") {
  auto u = uniform_case({0, 0, 1, 1, 2, 2, 3, 3});
  const SimResult r = simulate(u.spec, u.work, one_f_one_b(u.spec, 8));
  REQUIRE(r.ok);
  CHECK(r.makespan_ms == Approx(45.6).margin(1e-9));
  CHECK(r.max_peak_mb() == Approx(9000.0));
}

TEST_CASE("interleaved 1F1B on 0,1,2,3,0,1,2,3 matches the reference: 39.400 ms", "[sim]") {
  auto u = uniform_case({0, 1, 2, 3, 0, 1, 2, 3});
  const SimResult r = simulate(u.spec, u.work, interleaved_one_f_one_b(u.spec, 8));
  REQUIRE(r.ok);
  CHECK(r.makespan_ms == Approx(39.4).margin(1e-9));
  CHECK(r.max_peak_mb() == Approx(12000.0));
}

TEST_CASE("wait-free-cyclic makespans match the reference on all three assignments", "[sim]") {
  // Reference: linear 44.600 ms / 15000 MB; interleaved 39.400; zig-zag 39.800 (one stage
  // per layer; merging layers 3 and 4 of the zig-zag into one stage gives another order).
  // The peaks of the non-linear assignments differ from the reference's (16000 / 15000 MB).
  auto lin = uniform_case({0, 0, 1, 1, 2, 2, 3, 3});
  const SimResult a = simulate(lin.spec, lin.work, cyclic(lin.spec, lin.work));
  REQUIRE(a.ok);
  CHECK(a.makespan_ms == Approx(44.6).margin(1e-9));
  CHECK(a.max_peak_mb() == Approx(15000.0));
  auto il = uniform_case({0, 1, 2, 3, 0, 1, 2, 3});
  CHECK(simulate(il.spec, il.work, cyclic(il.spec, il.work)).makespan_ms == Approx(39.4).margin(1e-9));
  auto zz = uniform_case({0, 1, 2, 3, 3, 2, 1, 0}, false);
  CHECK(simulate(zz.spec, zz.work, cyclic(zz.spec, zz.work)).makespan_ms == Approx(39.8).margin(1e-9));
}

TEST_CASE("the cyclic schedule keeps each device under its memory limit", "[sim]") {
  auto u = uniform_case({0, 0, 1, 1, 2, 2, 3, 3});
  u.spec.memory_limit_mb.assign(4, 7000.0);  // room for 2 stored micro-batches + a peak
  const SimResult r = simulate(u.spec, u.work, cyclic(u.spec, u.work));
  REQUIRE(r.ok);
  CHECK(r.max_peak_mb() <= 7000.0);
  // 1F1B needs 9000 MB on device 0 and cannot respect the limit.
  CHECK(simulate(u.spec, u.work, one_f_one_b(u.spec, 8)).max_peak_mb() > 7000.0);
}

TEST_CASE("a compute order that waits on itself is reported as a deadlock", "[sim]") {
  auto u = uniform_case({0, 0, 1, 1, 2, 2, 3, 3});
  Schedule s = one_f_one_b(u.spec, 8);
  // Device 3 runs the backward of micro-batch 1 before its forward.
  auto& o = s.order[3];
  std::swap(o[0], o[3]);
  const SimResult r = simulate(u.spec, u.work, s);
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.error, Catch::Contains("deadlock"));
}

TEST_CASE("execution plans of 1F1B and cyclic pass the deadlock check", "[plan]") {
  auto u = uniform_case({0, 0, 1, 1, 2, 2, 3, 3});
  for (const Schedule& s : {one_f_one_b(u.spec, 8), cyclic(u.spec, u.work)}) {
    const auto plans = build_execution_plans(u.spec, s, shapes(8));
    REQUIRE(plans.size() == 4);
    CHECK(check_deadlock(plans).empty());
    // Every micro-batch is loaded once on rank 0, computed forward and backward once per rank.
    int loads = 0, fw = 0, bw = 0;
    for (const auto& p : plans) {
      for (const auto& i : p.instructions) {
        loads += i.kind == InstrKind::load_input;
        fw += i.kind == InstrKind::forward;
        bw += i.kind == InstrKind::backward;
      }
    }
    CHECK(loads == 8);
    CHECK(fw == 32);
    CHECK(bw == 32);
  }
  auto il = uniform_case({0, 1, 2, 3, 0, 1, 2, 3});
  CHECK(check_deadlock(build_execution_plans(il.spec, interleaved_one_f_one_b(il.spec, 8), shapes(8))).empty());
}

TEST_CASE("the deadlock check catches a swapped send/recv and a wrong shape", "[plan]") {
  auto u = uniform_case({0, 0, 1, 1, 2, 2, 3, 3});
  const auto good = build_execution_plans(u.spec, one_f_one_b(u.spec, 8), shapes(8));
  REQUIRE(check_deadlock(good).empty());

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
    const Instruction rs = ins[recv - 1];
    ins.erase(ins.begin() + static_cast<long>(recv - 1), ins.begin() + static_cast<long>(recv + 1));
    ins.insert(ins.begin() + static_cast<long>(send), {rs, r});
    CHECK_THAT(check_deadlock(bad), Catch::Contains("deadlock"));
  }
  SECTION("a receive expecting another shape") {
    auto bad = good;
    for (auto& i : bad[2].instructions) {
      if (i.kind == InstrKind::recv_activation_start && i.mb == 3) i.shape = {4, 1024, 0};
    }
    CHECK_THAT(check_deadlock(bad), Catch::Contains("mismatched transfer"));
  }
}
