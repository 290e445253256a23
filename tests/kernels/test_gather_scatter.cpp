// gather_rows / scatter_add_rows: the CPU reference against at::index_select and
// at::index_add_ on random inputs, and the argument checks (the CUDA kernels against the
// CPU reference: test_gather_scatter_cuda.cpp).
#include "tests/support/torch_catch.hpp"

#include <ATen/Parallel.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/dispatch.hpp"

#include "tests/kernels/gather_scatter_cases.hpp"

namespace mk = mlsys::kernels;
using namespace mlsys::test::gather_scatter;

namespace {

// dst[index[i]] += src[i] one row at a time in index order: the same additions, in the
// same order and precision, as the CPU reference, so the results must be bit-identical.
at::Tensor ordered_scatter_add(at::Tensor dst, const at::Tensor& index, const at::Tensor& src) {
  const at::Tensor idx = index.to(at::kLong);
  for (int64_t i = 0; i < idx.size(0); ++i) {
    dst[idx[i].item<int64_t>()].add_(src[i]);
  }
  return dst;
}

// Restores the intra-op thread count a test changed.
struct ThreadCountGuard {
  int saved = at::get_num_threads();
  ~ThreadCountGuard() { at::set_num_threads(saved); }
};

}  // namespace

TEST_CASE("gather_rows on the CPU equals at::index_select exactly", "[kernels][gather]") {
  at::manual_seed(1);
  for (const auto& s : kShapes) {
    for (auto dtype : kDtypes) {
      for (auto index_type : kIndexTypes) {
        INFO(describe(s, dtype, index_type));
        const at::Tensor src = at::randn({s.rows, s.cols}).to(dtype);
        const at::Tensor index = random_index(s.n, s.rows, index_type);
        const at::Tensor out = mk::gather_rows(src, index);
        REQUIRE(out.sizes() == at::IntArrayRef({s.n, s.cols}));
        REQUIRE(out.scalar_type() == dtype);
        REQUIRE(out.is_contiguous());
        REQUIRE(at::equal(out, at::index_select(src, 0, index)));
      }
    }
  }
}

TEST_CASE("gather_rows accepts strided src and index", "[kernels][gather]") {
  at::manual_seed(2);
  const at::Tensor src = at::randn({40, 30}, at::kDouble).t();  // 30 x 40, not contiguous
  const at::Tensor index = at::randint(0, 30, {60}, at::kLong).slice(0, 0, 60, 2);
  REQUIRE_FALSE(src.is_contiguous());
  REQUIRE_FALSE(index.is_contiguous());
  REQUIRE(at::equal(mk::gather_rows(src, index), at::index_select(src, 0, index)));
}

TEST_CASE("gather_rows is exact with many threads", "[kernels][gather]") {
  ThreadCountGuard guard;
  at::set_num_threads(4);
  at::manual_seed(3);
  const at::Tensor src = at::randn({500, 96});
  const at::Tensor index = at::randint(0, 500, {5000}, at::kLong);
  REQUIRE(at::equal(mk::gather_rows(src, index), at::index_select(src, 0, index)));
}

TEST_CASE("scatter_add_rows on the CPU matches at::index_add_", "[kernels][scatter]") {
  at::manual_seed(4);
  for (const auto& s : kShapes) {
    if (s.rows == 0 && s.n > 0) continue;  // no valid index exists
    for (auto dtype : kDtypes) {
      for (auto index_type : kIndexTypes) {
        INFO(describe(s, dtype, index_type));
        const at::Tensor start = at::randn({s.rows, s.cols}).to(dtype);
        const at::Tensor src = at::randn({s.n, s.cols}).to(dtype);
        const at::Tensor index = random_index(s.n, s.rows, index_type);

        at::Tensor dst = start.clone();
        mk::scatter_add_rows(dst, index, src);

        const at::Tensor expected = start.clone().index_add_(0, index, src);
        const double tol = tolerance(dtype);
        REQUIRE(at::allclose(dst.to(at::kDouble), expected.to(at::kDouble), tol, tol));
        REQUIRE(at::equal(dst, ordered_scatter_add(start.clone(), index, src)));
      }
    }
  }
}

TEST_CASE("scatter_add_rows accumulates repeated indices", "[kernels][scatter]") {
  // Every row of src lands on row 2: the sum of 1 + 2 + ... + 10 per column.
  at::Tensor dst = at::zeros({4, 3}, at::kDouble);
  const at::Tensor src = at::arange(1, 11, at::kDouble).unsqueeze(1).expand({10, 3});
  const at::Tensor index = at::full({10}, 2, at::kInt);
  mk::scatter_add_rows(dst, index, src);
  at::Tensor expected = at::zeros({4, 3}, at::kDouble);
  expected[2].fill_(55.0);
  REQUIRE(at::equal(dst, expected));
}

TEST_CASE("scatter_add_rows is deterministic with many threads", "[kernels][scatter]") {
  ThreadCountGuard guard;
  at::manual_seed(5);
  const at::Tensor start = at::randn({50, 1000});
  const at::Tensor src = at::randn({400, 1000});
  const at::Tensor index = at::randint(0, 50, {400}, at::kLong);
  at::set_num_threads(1);
  at::Tensor serial = start.clone();
  mk::scatter_add_rows(serial, index, src);
  at::set_num_threads(4);
  at::Tensor parallel = start.clone();
  mk::scatter_add_rows(parallel, index, src);
  REQUIRE(at::equal(serial, parallel));
  REQUIRE(at::equal(serial, ordered_scatter_add(start.clone(), index, src)));
}

TEST_CASE("scatter_add_rows updates a strided dst in place", "[kernels][scatter]") {
  at::manual_seed(6);
  at::Tensor base = at::randn({7, 12});  // dst is its 12 x 7 transpose: a view
  at::Tensor dst = base.t();
  const at::Tensor before = dst.clone();
  const at::Tensor src = at::randn({20, 7});
  const at::Tensor index = at::randint(0, 12, {20}, at::kLong);
  mk::scatter_add_rows(dst, index, src);
  const at::Tensor expected = ordered_scatter_add(before.clone(), index, src);
  REQUIRE(at::equal(dst, expected));
  REQUIRE(at::equal(base.t(), expected));  // the storage it views was written
}

TEST_CASE("scatter_add_rows reads src as it was when src aliases dst", "[kernels][scatter]") {
  // d[i[k]] += d[k] with the old values of d, as at::index_add_ on a clone computes it.
  at::Tensor d = at::arange(12, at::kFloat).reshape({4, 3});
  const at::Tensor idx = at::tensor(std::vector<int64_t>{1, 2, 3, 0});
  const at::Tensor expected = d.clone().index_add_(0, idx, d.clone());
  mlsys::kernels::scatter_add_rows(d, idx, d);
  CHECK(at::equal(d, expected));
}

TEST_CASE("gather_rows_into writes a column block in place; scatter_add_rows reads one", "[kernels][gather]") {
  for (const auto dtype : kDtypes) {
    DYNAMIC_SECTION(c10::toString(dtype)) {
      const at::Tensor src = at::randn({40, 7}).to(dtype);
      const at::Tensor index = random_index(25, 40, at::kLong);
      at::Tensor wide = at::full({25, 12}, 3.0).to(dtype);
      mk::gather_rows_into(wide.narrow(1, 2, 7), src, index);
      CHECK(at::equal(wide.narrow(1, 2, 7), at::index_select(src, 0, index)));
      CHECK(at::equal(wide.narrow(1, 0, 2), at::full({25, 2}, 3.0).to(dtype)));  // the rest untouched
      CHECK(at::equal(wide.narrow(1, 9, 3), at::full({25, 3}, 3.0).to(dtype)));
      // and back: a block of the wide matrix as scatter_add_rows' src, read in place
      at::Tensor dst = at::zeros({40, 7}, dtype), expect = at::zeros({40, 7}, dtype);
      mk::scatter_add_rows(dst, index, wide.narrow(1, 2, 7));
      expect.index_add_(0, index, wide.narrow(1, 2, 7).contiguous());
      CHECK(at::equal(dst, expect));
    }
  }
  const at::Tensor src = at::randn({4, 3});
  const at::Tensor index = at::tensor(std::vector<int64_t>{0, 3});
  REQUIRE_THROWS_WITH(mk::gather_rows_into(at::zeros({3, 3}), src, index),
                      Catch::Contains("gather_rows_into: out has shape [3, 3]; expected [2, 3]"));
  REQUIRE_THROWS_WITH(mk::gather_rows_into(at::zeros({3, 2}).t(), src, index),
                      Catch::Contains("out must have unit column stride"));
  REQUIRE_THROWS_WITH(mk::gather_rows_into(at::zeros({2, 3}, at::kDouble), src, index),
                      Catch::Contains("out is Double but src is Float"));
  at::Tensor both = at::randn({2, 6});  // out a block of src itself
  REQUIRE_THROWS_WITH(mk::gather_rows_into(both.narrow(1, 3, 3), both.narrow(1, 0, 3), index.clamp_max(1)),
                      Catch::Contains("out shares memory with src or index"));
}

TEST_CASE("gather_rows and scatter_add_rows reject bad arguments", "[kernels][errors]") {
  const at::Tensor src = at::randn({5, 3});
  const at::Tensor index = at::tensor(std::vector<int64_t>{0, 4, 7, 1});

  SECTION("index out of range, named with its position") {
    REQUIRE_THROWS_AS(mk::gather_rows(src, index), std::invalid_argument);
    REQUIRE_THROWS_WITH(mk::gather_rows(src, index),
                        "gather_rows: index 7 (at position 2) out of range for src with 5 rows");
    const at::Tensor negative = at::tensor(std::vector<int32_t>{0, -1});
    REQUIRE_THROWS_WITH(mk::gather_rows(src, negative),
                        Catch::Contains("index -1 (at position 1) out of range"));
    at::Tensor dst = at::zeros({5, 3});
    REQUIRE_THROWS_WITH(mk::scatter_add_rows(dst, index, at::ones({4, 3})),
                        Catch::Contains("scatter_add_rows: index 7 (at position 2) out of range "
                                        "for dst with 5 rows"));
    REQUIRE(at::equal(dst, at::zeros({5, 3})));  // nothing was written
    REQUIRE_THROWS_WITH(mk::gather_rows(at::randn({0, 3}), at::zeros({1}, at::kLong)),
                        Catch::Contains("out of range for src with 0 rows"));
  }
  SECTION("wrong dimensions") {
    REQUIRE_THROWS_WITH(mk::gather_rows(at::randn({5}), index),
                        Catch::Contains("src must be 2-D (rows x cols), got a 1-D tensor"));
    REQUIRE_THROWS_WITH(mk::gather_rows(at::randn({2, 3, 4}), index),
                        Catch::Contains("got a 3-D tensor of shape [2, 3, 4]"));
    REQUIRE_THROWS_WITH(mk::gather_rows(src, index.view({2, 2})),
                        Catch::Contains("index must be 1-D, got a 2-D tensor"));
    at::Tensor dst = at::zeros({5});
    REQUIRE_THROWS_WITH(mk::scatter_add_rows(dst, index, at::ones({4, 3})),
                        Catch::Contains("dst must be 2-D"));
  }
  SECTION("wrong dtypes") {
    REQUIRE_THROWS_WITH(mk::gather_rows(src, index.to(at::kFloat)),
                        Catch::Contains("index must be int64 or int32, got Float"));
    REQUIRE_THROWS_WITH(mk::gather_rows(src.to(at::kInt), index),
                        Catch::Contains("src must be float32, float64, float16 or bfloat16"));
    at::Tensor dst = at::zeros({5, 3}, at::kDouble);
    REQUIRE_THROWS_WITH(mk::scatter_add_rows(dst, index, at::ones({4, 3})),
                        "scatter_add_rows: src is Float but dst is Double; they must have the "
                        "same dtype");
  }
  SECTION("mismatched sizes") {
    at::Tensor dst = at::zeros({5, 3});
    REQUIRE_THROWS_WITH(mk::scatter_add_rows(dst, index, at::ones({3, 3})),
                        "scatter_add_rows: src has 3 rows but index has 4 entries; they must "
                        "match");
    REQUIRE_THROWS_WITH(mk::scatter_add_rows(dst, index, at::ones({4, 2})),
                        "scatter_add_rows: src has 2 columns but dst has 3; they must match");
  }
  SECTION("mismatched or unsupported devices") {
    const at::Tensor meta_src = at::empty({5, 3}, at::device(at::kMeta));
    REQUIRE_THROWS_WITH(mk::gather_rows(meta_src, index),
                        "gather_rows: src is on meta but index is on cpu; all tensors must be "
                        "on one device");
    REQUIRE_THROWS_WITH(mk::gather_rows(meta_src, index.to(at::kMeta)),
                        Catch::Contains("tensors on meta are not supported"));
  }
  SECTION("undefined tensors") {
    REQUIRE_THROWS_WITH(mk::gather_rows(at::Tensor(), index),
                        "gather_rows: src is an undefined tensor");
  }
}
