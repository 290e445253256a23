// c10d process groups: one process alone, and two processes on loopback (the test binary
// re-executed with RANK/WORLD_SIZE/MASTER_* set) whose all-reduce gives the exact sum.
#include "tests/support/torch_catch.hpp"  // first: see there

#include <sys/wait.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "tensor/distributed.hpp"
#include "tests/support/multi_process.hpp"

using namespace mlsys;
using namespace mlsys::tensor;
using Catch::Matchers::Contains;

namespace {

constexpr auto kTimeout = std::chrono::seconds(60);
constexpr const char* kWorkerTest = "distributed worker (run by the two-process test)";

}  // namespace

TEST_CASE("a process group of one", "[tensor][distributed]") {
  DistEnv env;
  env.master_port = mlsys::test::free_loopback_port();
  ProcessGroup pg = ProcessGroup::create(env, c10::Device(c10::DeviceType::CPU), kTimeout);
  CHECK(pg.rank() == 0);
  CHECK(pg.size() == 1);
  CHECK(pg.device().is_cpu());
  at::Tensor t = at::tensor({1.5F, -2.0F});
  pg.all_reduce_sum(t);
  CHECK(at::equal(t, at::tensor({1.5F, -2.0F})));
  pg.broadcast(t, 0);
  CHECK(at::equal(t, at::tensor({1.5F, -2.0F})));
  pg.barrier();
  REQUIRE_THROWS_AS(pg.broadcast(t, 1), core::RuntimeFailure);
  REQUIRE_THROWS_WITH(pg.broadcast(t, 1), Contains("root rank in [0, 1)"));

  DistEnv wrong;
  wrong.rank = 2;
  wrong.world_size = 2;
  REQUIRE_THROWS_AS(ProcessGroup::create(wrong, c10::Device(c10::DeviceType::CPU)), core::UsageError);
#ifndef MLSYS_WITH_CUDA
  REQUIRE_THROWS_AS(ProcessGroup::create(env, c10::Device(c10::DeviceType::CUDA, 0)), core::UsageError);
  REQUIRE_THROWS_WITH(ProcessGroup::create(env, c10::Device(c10::DeviceType::CUDA, 0)), Contains("NCCL"));
#endif
}

// Run only when named on the command line (the "[.]" tag hides it): one rank of the
// two-process test below, configured from the environment like a real launch.
TEST_CASE(kWorkerTest, "[.][distributed-worker]") {
  const DistEnv env = dist_env_from_environment();
  REQUIRE(env.world_size == 2);
  ProcessGroup pg = ProcessGroup::create(env, c10::Device(c10::DeviceType::CPU), kTimeout);
  REQUIRE(pg.rank() == env.rank);
  REQUIRE(pg.size() == 2);
  const float r = static_cast<float>(pg.rank());

  at::Tensor t = at::tensor({r + 1, 10 * (r + 1)});
  pg.all_reduce_sum(t);
  REQUIRE(t[0].item<float>() == 3.0F);
  REQUIRE(t[1].item<float>() == 30.0F);

  // int64 and a non-contiguous view: [[0,1],[2,3]] + 100*rank, transposed.
  at::Tensor m = (at::arange(4, at::kLong).reshape({2, 2}) + 100 * pg.rank()).t();
  pg.all_reduce_sum(m);
  REQUIRE(at::equal(m, at::tensor({int64_t{100}, int64_t{104}, int64_t{102}, int64_t{106}}).reshape({2, 2})));

  at::Tensor b = pg.rank() == 1 ? at::tensor({7.0, -0.5, 1e300}) : at::zeros({3}, at::kDouble);
  pg.broadcast(b, 1);
  REQUIRE(at::equal(b, at::tensor({7.0, -0.5, 1e300})));
  pg.barrier();
}

TEST_CASE("two processes all-reduce and broadcast over Gloo on loopback", "[tensor][distributed]") {
  // argv: a name that matches nothing must fail, not pass (--warn NoTests), then the worker.
  const std::vector<int> status = mlsys::test::run_ranks(
      {.ranks = 2, .args = {"test_tensor", "--warn", "NoTests", kWorkerTest}, .timeout = std::chrono::minutes(2)});
  for (int r = 0; r < 2; ++r) {
    if (status[r] == -1) FAIL("rank " << r << " did not finish within two minutes");
  }
  for (int r = 0; r < 2; ++r) {
    INFO("rank " << r << " wait status " << status[r]);
    CHECK(WIFEXITED(status[r]));
    CHECK(WEXITSTATUS(status[r]) == 0);
  }
}
