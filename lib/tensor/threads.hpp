// --threads for programs that link LibTorch: its intra-op pool (at::set_num_threads, which
// MKL and OpenMP follow). Torch-free header, so a program's main can pass thread_control()
// to core::run_program without LibTorch's include path.
#pragma once

#include "core/options.hpp"

namespace mlsys::tensor {

// Sets LibTorch's intra-op thread count; n <= 0 leaves it alone.
void set_threads(int n);
[[nodiscard]] int threads();

// What core::run_program needs to apply --threads before a subcommand runs.
[[nodiscard]] core::ThreadControl thread_control();

}  // namespace mlsys::tensor
