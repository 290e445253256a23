// The gate of the CUDA-against-CPU kernel tests: on a machine where the CUDA runtime sees
// a GPU, LibTorch must have its CUDA backend (a link that dropped libtorch_cuda.so as
// unneeded fails rather than skips); without a CUDA build or a GPU the test says why it
// skips (WARN). Include after tests/torch_catch.hpp.
#pragma once

#include <string>

#include "kernels/dispatch.hpp"

#ifdef MLSYS_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace mlsys::test {

// Whether `what` can be compared on a GPU here; WARNs "SKIP: ..." when not.
inline bool cuda_kernels_testable(const std::string& what) {
#ifdef MLSYS_WITH_CUDA
  if (c10::cuda::device_count() > 0) {
    INFO("the CUDA runtime sees a GPU but LibTorch has no CUDA backend: is libtorch_cuda.so "
         "linked (readelf -d)?");
    REQUIRE(at::hasCUDA());
  }
#endif
  if (kernels::built_with_cuda() && at::hasCUDA()) return true;
  WARN("SKIP: " << what << " not compared with the CPU reference ("
                << (kernels::built_with_cuda() ? "no CUDA device" : "built without CUDA") << ")");
  return false;
}

}  // namespace mlsys::test
