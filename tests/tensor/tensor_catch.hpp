// Test helpers for lib/tensor, on top of the shared LibTorch + Catch2 header.
#pragma once

#include "tests/torch_catch.hpp"

namespace mlsys::test {

// A bool tensor (at::tensor has no bool overload that runs on the CPU).
inline at::Tensor bools(std::initializer_list<int> values) {
  return at::tensor(std::vector<int64_t>(values.begin(), values.end())).to(at::kBool);
}

}  // namespace mlsys::test
