// The random cases the gather_rows / scatter_add_rows tests share (CPU reference and CUDA):
// shapes, dtypes, index types, their tolerances and a description for INFO.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mlsys::test::gather_scatter {

struct Shape {
  int64_t rows, cols, n;
};

// 0 rows, 0 columns, 1 column, more indices than rows (so many duplicates), a row size
// that is a multiple of 4 (the CUDA vector paths) and one that is not.
inline const std::vector<Shape> kShapes = {
    {0, 3, 0},  {5, 0, 4},   {1, 1, 6},    {5, 1, 7},     {17, 33, 50},
    {3, 8, 40}, {64, 128, 300}, {100, 4, 1000}, {257, 65, 129}, {2, 1024, 9},
};

inline const std::vector<at::ScalarType> kDtypes = {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16};
inline const std::vector<at::ScalarType> kIndexTypes = {at::kLong, at::kInt};

inline at::Tensor random_index(int64_t n, int64_t rows, at::ScalarType type) {
  if (rows == 0) return at::zeros({n}, at::dtype(type));
  return at::randint(0, rows, {n}, at::dtype(type));
}

inline double tolerance(at::ScalarType dtype) {
  switch (dtype) {
    case at::kDouble: return 1e-12;
    case at::kFloat: return 1e-5;
    case at::kHalf: return 1e-2;
    default: return 5e-2;  // bfloat16
  }
}

inline std::string describe(const Shape& s, at::ScalarType dtype, at::ScalarType index_type) {
  return "rows=" + std::to_string(s.rows) + " cols=" + std::to_string(s.cols) +
         " n=" + std::to_string(s.n) + " dtype=" + c10::toString(dtype) +
         " index=" + c10::toString(index_type);
}

}  // namespace mlsys::test::gather_scatter
