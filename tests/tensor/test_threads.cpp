// --threads reaches LibTorch's intra-op pool (tensor::thread_control, applied by
// core::run_program before a subcommand runs): with 1 thread a parallel loop runs on one.
#include <catch2/catch.hpp>

#include <ATen/Parallel.h>

#include <mutex>
#include <set>
#include <thread>

#include "tensor/threads.hpp"

namespace {
// The distinct threads an ATen parallel loop over `n` items ran on.
size_t threads_used(int64_t n) {
  std::mutex mu;
  std::set<std::thread::id> ids;
  at::parallel_for(0, n, 1, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  return ids.size();
}
}  // namespace

TEST_CASE("thread_control sets LibTorch's intra-op pool", "[tensor][threads]") {
  const auto tc = mlsys::tensor::thread_control();
  REQUIRE(tc.set_threads != nullptr);
  tc.set_threads(1);
  CHECK(tc.get_threads() == 1);
  CHECK(at::get_num_threads() == 1);
  CHECK(threads_used(1 << 16) == 1);
  tc.set_threads(2);
  CHECK(at::get_num_threads() == 2);
  tc.set_threads(0);  // 0 leaves it alone
  CHECK(at::get_num_threads() == 2);
  tc.set_threads(1);
}
