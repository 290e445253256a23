// The main of test_kernels_cuda, the GPU-only kernel tests: exits 77 (meson's SKIP) when no
// CUDA device is usable, so a machine without a GPU reports the tests skipped rather than
// passed; otherwise runs them with Catch2. A machine whose CUDA runtime sees a GPU while
// LibTorch has no CUDA backend (a link that dropped libtorch_cuda.so as unneeded) fails.
#define CATCH_CONFIG_RUNNER
#include "tests/support/torch_catch.hpp"

#include <iostream>

#include "kernels/dispatch.hpp"

#ifdef MLSYS_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

int main(int argc, char* argv[]) {
#ifdef MLSYS_WITH_CUDA
  if (c10::cuda::device_count() > 0 && !at::hasCUDA()) {
    std::cerr << "the CUDA runtime sees a GPU but LibTorch has no CUDA backend: is libtorch_cuda.so "
                 "linked (readelf -d)?\n";
    return 1;
  }
#endif
  if (!at::hasCUDA()) {
    std::cout << "SKIP: no CUDA device (kernels/cuda " << (mlsys::kernels::built_with_cuda() ? "built" : "not built")
              << "): the CUDA kernels are not compared with the CPU reference\n";
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
