// gather_rows / scatter_add_rows / gather_rows_into: the CUDA kernels (kernels/cuda) against
// the CPU reference on the same random inputs. GPU only: part of test_kernels_cuda, which
// meson reports as skipped where there is no CUDA device (cuda_main.cpp).
#include "tests/support/torch_catch.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/dispatch.hpp"
#include "tests/kernels/gather_scatter_cases.hpp"

namespace mk = mlsys::kernels;
using namespace mlsys::test::gather_scatter;

TEST_CASE("CUDA kernels match the CPU reference", "[kernels][cuda]") {
  if (!mk::built_with_cuda()) {  // a GPU, but kernels/cuda not built: a clear error, not a crash
    const at::Tensor src = at::randn({3, 2}, at::device(at::kCUDA));
    const at::Tensor index = at::zeros({1}, at::device(at::kCUDA).dtype(at::kLong));
    REQUIRE_THROWS_WITH(mk::gather_rows(src, index), Catch::Contains("built without CUDA"));
    return;
  }
  at::manual_seed(7);
  const auto cuda = at::device(at::kCUDA);

  SECTION("random shapes, dtypes and index types") {
    for (const auto& s : kShapes) {
      for (auto dtype : kDtypes) {
        for (auto index_type : kIndexTypes) {
          INFO(describe(s, dtype, index_type));
          const at::Tensor src = at::randn({s.rows, s.cols}).to(dtype);
          const at::Tensor index = random_index(s.n, s.rows, index_type);
          const at::Tensor gathered = mk::gather_rows(src.to(at::kCUDA), index.to(at::kCUDA));
          REQUIRE(gathered.is_cuda());
          REQUIRE(at::equal(gathered.cpu(), mk::gather_rows(src, index)));

          if (s.rows == 0 && s.n > 0) continue;
          const at::Tensor start = at::randn({s.rows, s.cols}).to(dtype);
          const at::Tensor rows = at::randn({s.n, s.cols}).to(dtype);
          at::Tensor expected = start.clone();
          mk::scatter_add_rows(expected, index, rows);
          at::Tensor dst = start.to(at::kCUDA);
          mk::scatter_add_rows(dst, index.to(at::kCUDA), rows.to(at::kCUDA));
          const double tol = tolerance(dtype);
          REQUIRE(at::allclose(dst.cpu().to(at::kDouble), expected.to(at::kDouble), tol, tol));
        }
      }
    }
  }
  SECTION("gather_rows_into a column block; scatter_add_rows from one") {
    const at::Tensor src = at::randn({40, 7}, cuda);
    const at::Tensor index = at::randint(0, 40, {25}, cuda.dtype(at::kLong));
    at::Tensor wide = at::full({25, 12}, 3.0, cuda);
    mk::gather_rows_into(wide.narrow(1, 2, 7), src, index);  // strided: gathered, then copied in
    REQUIRE(at::equal(wide.narrow(1, 2, 7).cpu(), at::index_select(src.cpu(), 0, index.cpu())));
    REQUIRE(at::equal(wide.narrow(1, 0, 2).cpu(), at::full({25, 2}, 3.0)));
    at::Tensor dst = at::zeros({40, 7}, cuda);
    mk::scatter_add_rows(dst, index, wide.narrow(1, 2, 7));
    const at::Tensor expected = at::zeros({40, 7}).index_add_(0, index.cpu(), wide.narrow(1, 2, 7).cpu());
    REQUIRE(at::allclose(dst.cpu(), expected, 1e-5, 1e-5));
  }
  SECTION("unaligned buffers take the scalar paths") {
    // Offsetting by one element breaks the 16-byte alignment the vector paths need.
    const at::Tensor flat = at::randn({64 * 16 + 1});
    const at::Tensor src = flat.narrow(0, 1, 64 * 16).view({64, 16});
    const at::Tensor index = at::randint(0, 64, {200}, at::kLong);
    const at::Tensor gathered = mk::gather_rows(src.to(at::kCUDA), index.to(at::kCUDA));
    REQUIRE(at::equal(gathered.cpu(), at::index_select(src, 0, index)));

    at::Tensor dst_flat = at::zeros({64 * 16 + 1}, cuda);
    at::Tensor dst = dst_flat.narrow(0, 1, 64 * 16).view({64, 16});
    const at::Tensor rows = at::randn({200, 16});
    mk::scatter_add_rows(dst, index.to(at::kCUDA), rows.to(at::kCUDA));
    const at::Tensor expected = at::zeros({64, 16}).index_add_(0, index, rows);
    REQUIRE(at::allclose(dst.cpu(), expected, 1e-5, 1e-5));
  }
  SECTION("more elements than one grid covers") {
    // 20000 x 1024 floats: more than 65536 blocks x 256 threads, so the grid-stride loops
    // take several turns.
    const at::Tensor src = at::randn({3000, 1024}, cuda);
    const at::Tensor index = at::randint(0, 3000, {20000}, cuda.dtype(at::kLong));
    REQUIRE(at::equal(mk::gather_rows(src, index), at::index_select(src, 0, index)));
    at::Tensor dst = at::zeros({3000, 1024}, cuda.dtype(at::kDouble));
    const at::Tensor rows = at::randn({20000, 1024}, cuda.dtype(at::kDouble));
    mk::scatter_add_rows(dst, index, rows);
    const at::Tensor expected =
        at::zeros({3000, 1024}, cuda.dtype(at::kDouble)).index_add_(0, index, rows);
    REQUIRE(at::allclose(dst, expected, 1e-10, 1e-10));
  }
  SECTION("argument errors on the device") {
    const at::Tensor src = at::randn({5, 3}, cuda);
    const at::Tensor bad = at::tensor(std::vector<int64_t>{0, 4, 7, 1}).to(at::kCUDA);
    REQUIRE_THROWS_WITH(mk::gather_rows(src, bad),
                        "gather_rows: index 7 (at position 2) out of range for src with 5 rows");
    REQUIRE_THROWS_WITH(mk::gather_rows(src, bad.to(at::kInt).neg()),
                        Catch::Contains("index -4 (at position 1) out of range"));
    REQUIRE_THROWS_WITH(mk::gather_rows(src, at::zeros({2}, at::kLong)),
                        Catch::Contains("all tensors must be on one device"));
  }
}
