// c10d process groups: one process alone, and two processes on loopback (the test binary
// re-executed with RANK/WORLD_SIZE/MASTER_* set) whose all-reduce gives the exact sum.
#include "tests/support/torch_catch.hpp"  // first: see there

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>


#include "core/error.hpp"
#include "tensor/distributed.hpp"

extern char** environ;  // NOLINT: POSIX

using namespace mlsys;
using namespace mlsys::tensor;
using Catch::Matchers::Contains;

namespace {

// A TCP port free on loopback right now (the kernel's choice for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

constexpr auto kTimeout = std::chrono::seconds(60);
constexpr const char* kWorkerTest = "distributed worker (run by the two-process test)";

}  // namespace

TEST_CASE("a process group of one", "[tensor][distributed]") {
  DistEnv env;
  env.master_port = free_port();
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
  const int port = free_port();
  // Everything the children need is built before fork(): after it only exec.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('='));
    if (key == "RANK" || key == "WORLD_SIZE" || key == "MASTER_ADDR" || key == "MASTER_PORT" ||
        key.starts_with("SLURM_") || key == "GLOO_SOCKET_IFNAME") {
      continue;
    }
    env_strings.push_back(kv);
  }
  env_strings.push_back("WORLD_SIZE=2");
  env_strings.push_back("MASTER_ADDR=127.0.0.1");
  env_strings.push_back("MASTER_PORT=" + std::to_string(port));
  std::vector<std::vector<std::string>> envs(2, env_strings);
  envs[0].push_back("RANK=0");
  envs[1].push_back("RANK=1");
  std::vector<std::vector<char*>> envps(2);
  for (int r = 0; r < 2; ++r) {
    for (auto& s : envs[r]) envps[r].push_back(s.data());
    envps[r].push_back(nullptr);
  }
  std::string exe = "/proc/self/exe";
  std::string arg0 = "test_tensor";
  std::string warn = "--warn";
  std::string no_tests = "NoTests";  // a name that matches nothing must fail, not pass
  std::string name = kWorkerTest;
  char* argv[] = {arg0.data(), warn.data(), no_tests.data(), name.data(), nullptr};

  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::execve(exe.c_str(), argv, envps[r].data());
      ::_exit(127);
    }
    pids.push_back(pid);
  }

  // Wait for both, at most two minutes; a hung rank is killed and fails the test.
  std::vector<int> status(2, -1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  int left = 2;
  while (left > 0 && std::chrono::steady_clock::now() < deadline) {
    for (int r = 0; r < 2; ++r) {
      if (status[r] != -1) continue;
      int st = 0;
      if (::waitpid(pids[r], &st, WNOHANG) == pids[r]) {
        status[r] = st;
        --left;
      }
    }
    if (left > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int r = 0; r < 2; ++r) {
    if (status[r] == -1) {
      ::kill(pids[r], SIGKILL);
      ::waitpid(pids[r], &status[r], 0);
      FAIL("rank " << r << " did not finish within two minutes");
    }
  }
  for (int r = 0; r < 2; ++r) {
    INFO("rank " << r << " wait status " << status[r]);
    CHECK(WIFEXITED(status[r]));
    CHECK(WEXITSTATUS(status[r]) == 0);
  }
}
