// Catch2 for tests that use LibTorch: c10's glog-style CHECK macro (c10/util/Logging.h)
// clashes with Catch's, so LibTorch comes first, its CHECK is dropped, then Catch.
// Include this first, instead of <catch2/catch.hpp>, in any test that touches ATen.
#pragma once

#include <ATen/ATen.h>
#undef CHECK
#include <catch2/catch.hpp>

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace mlsys::test {

// A bool tensor (at::tensor has no bool overload that runs on the CPU).
inline at::Tensor bools(std::initializer_list<int> values) {
  return at::tensor(std::vector<int64_t>(values.begin(), values.end())).to(at::kBool);
}

}  // namespace mlsys::test
