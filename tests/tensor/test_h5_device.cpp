// Tensor <-> HDF5 round trips, --device parsing and the launcher environment.
#include "tests/support/torch_catch.hpp"  // first: see there

#include <map>
#include <optional>
#include <string>

#include <torch/cuda.h>

#include "core/error.hpp"
#include "core/h5.hpp"
#include "tensor/device.hpp"
#include "tensor/distributed.hpp"
#include "tensor/h5_tensor.hpp"
#include "tests/support/harness.hpp"

using namespace mlsys;
using namespace mlsys::tensor;
using Catch::Matchers::Contains;
using mlsys::test::TempDir;

TEST_CASE("tensors round-trip through HDF5", "[tensor][h5]") {
  const TempDir dir("h5");
  const auto path = dir / "t.h5";
  at::manual_seed(3);
  const at::Tensor f32 = at::randn({2, 3}, at::kFloat);
  const at::Tensor f64 = at::randn({2, 1, 4}, at::kDouble);
  const at::Tensor i64 = at::tensor({int64_t{-5}, int64_t{1} << 50, int64_t{7}});
  const at::Tensor bf16 = at::tensor({1.5F, -2.0F, 0.0078125F}).to(at::kBFloat16);
  const at::Tensor f16 = at::tensor({0.25F, 1024.0F}).to(at::kHalf);
  const at::Tensor i32 = at::tensor({-3, 4});
  const at::Tensor flags = test::bools({1, 0});
  const at::Tensor transposed = at::arange(12, at::kFloat).reshape({3, 4}).t();  // non-contiguous
  const at::Tensor scalar = at::scalar_tensor(2.5, at::kDouble);
  const at::Tensor empty = at::empty({0, 3}, at::kFloat);
  {
    core::H5Writer w(path, core::ArtifactInfo{"test_tensor", "{}"});
    write_tensor(w, "/params/f32", f32);
    write_tensor(w, "/params/f64", f64);
    write_tensor(w, "/params/i64", i64);
    write_tensor(w, "/params/bf16", bf16);
    write_tensor(w, "/params/f16", f16);
    write_tensor(w, "/params/i32", i32);
    write_tensor(w, "/params/flags", flags);
    write_tensor(w, "/params/transposed", transposed);
    write_tensor(w, "/scalar", scalar);
    write_tensor(w, "/empty", empty);
    w.write_strings("/names", {"a", "b"});
    REQUIRE_THROWS_AS(write_tensor(w, "/c", at::zeros({2}, at::kComplexFloat)), core::RuntimeFailure);
    w.commit();
  }
  core::H5Reader r(path);
  const auto check = [&](const std::string& name, const at::Tensor& want) {
    INFO("dataset " << name);
    const at::Tensor got = read_tensor(r, name);
    CHECK(got.scalar_type() == want.scalar_type());
    CHECK(got.sizes() == want.sizes());
    CHECK(at::equal(got, want));
  };
  check("/params/f32", f32);
  check("/params/f64", f64);
  check("/params/i64", i64);
  check("/params/bf16", bf16.to(at::kFloat));  // stored as float32, exactly
  check("/params/f16", f16.to(at::kFloat));
  check("/params/i32", i32.to(at::kLong));
  check("/params/flags", at::tensor({int64_t{1}, int64_t{0}}));
  check("/params/transposed", transposed.contiguous());
  check("/scalar", scalar.reshape({1}));  // a 0-dim tensor comes back with shape [1]
  check("/empty", empty);
  CHECK(r.type("/params/bf16") == core::H5Type::f32);
  CHECK(r.shape("/params/transposed") == std::vector<uint64_t>{4, 3});

  REQUIRE_THROWS_AS(read_tensor(r, "/params/missing"), core::InputError);
  REQUIRE_THROWS_WITH(read_tensor(r, "/params/missing"), Contains(path.string()) && Contains("/params/missing"));
  REQUIRE_THROWS_AS(read_tensor(r, "/names"), core::InputError);
  REQUIRE_THROWS_WITH(read_tensor(r, "/names"), Contains("'/names'") && Contains("strings"));
}

TEST_CASE("parse_device", "[tensor][device]") {
  CHECK(parse_device("cpu") == c10::Device(c10::DeviceType::CPU));
  for (const std::string bad : {"", "gpu", "CPU", "cpu:0", "cuda:", "cuda0", "cuda:x", "cuda:-1", "cuda:1x",
                                "cuda: 1", "cuda:99999999999999"}) {
    INFO("spec '" << bad << "'");
    REQUIRE_THROWS_AS(parse_device(bad), core::UsageError);
    REQUIRE_THROWS_WITH(parse_device(bad), Contains("'" + bad + "'"));
  }
  if (torch::cuda::is_available()) {
    CHECK(parse_device("cuda") == c10::Device(c10::DeviceType::CUDA, 0));
    CHECK(parse_device("cuda:0") == c10::Device(c10::DeviceType::CUDA, 0));
    const auto n = static_cast<int>(torch::cuda::device_count());
    REQUIRE_THROWS_WITH(parse_device("cuda:" + std::to_string(n)), Contains("out of range"));
  } else {
    REQUIRE_THROWS_AS(parse_device("cuda"), core::UsageError);
    REQUIRE_THROWS_WITH(parse_device("cuda"), Contains("no CUDA device"));
    REQUIRE_THROWS_WITH(parse_device("cuda:1"), Contains("'cuda:1'") && Contains("no CUDA device"));
  }
}

TEST_CASE("dist_env_from reads the launcher environment", "[tensor][distributed]") {
  std::map<std::string, std::string> vars;
  const EnvLookup lookup = [&vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };

  DistEnv e = dist_env_from(lookup);
  CHECK(e.rank == 0);
  CHECK(e.world_size == 1);
  CHECK(e.master_addr == "127.0.0.1");
  CHECK(e.master_port == 29500);

  vars = {{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "1234"}};
  e = dist_env_from(lookup);
  CHECK(e.rank == 3);
  CHECK(e.world_size == 4);
  CHECK(e.master_addr == "node7");
  CHECK(e.master_port == 1234);

  vars = {{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}};
  e = dist_env_from(lookup);
  CHECK(e.rank == 5);
  CHECK(e.world_size == 8);

  vars = {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}};
  e = dist_env_from(lookup);
  CHECK(e.rank == 1);  // the torchrun variables win over Slurm's
  CHECK(e.world_size == 2);

  const auto bad = [&](std::map<std::string, std::string> v, const std::string& var, const std::string& found) {
    vars = std::move(v);
    INFO("variable " << var);
    REQUIRE_THROWS_AS(dist_env_from(lookup), core::UsageError);
    REQUIRE_THROWS_WITH(dist_env_from(lookup), Contains(var) && Contains(found));
  };
  bad({{"RANK", "one"}}, "RANK", "'one'");
  bad({{"RANK", ""}}, "RANK", "''");
  bad({{"RANK", "1"}, {"WORLD_SIZE", "2x"}}, "WORLD_SIZE", "'2x'");
  bad({{"WORLD_SIZE", "0"}}, "WORLD_SIZE", "found 0");
  bad({{"RANK", "2"}, {"WORLD_SIZE", "2"}}, "RANK", "[0, 2)");
  bad({{"RANK", "-1"}, {"WORLD_SIZE", "2"}}, "RANK", "found -1");
  bad({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}}, "SLURM_PROCID", "found 4");
  bad({{"SLURM_NTASKS", "many"}}, "SLURM_NTASKS", "'many'");
  bad({{"MASTER_PORT", "70000"}}, "MASTER_PORT", "70000");
  bad({{"MASTER_PORT", "http"}}, "MASTER_PORT", "'http'");
  bad({{"MASTER_ADDR", ""}}, "MASTER_ADDR", "found ''");
}
