// The LibTorch side of the program runtime: --device turned into a device this process can
// use, and --threads applied to LibTorch's intra-op pool (through which MKL and OpenMP follow).
#pragma once

#include <string>

#include <c10/core/Device.h>

#include "tensor/threads.hpp"

namespace mlsys::tensor {

// Parses "cpu", "cuda" (device 0) or "cuda:N" (core::parse_device_spec). Throws
// core::UsageError with one line naming the spec when it is malformed, when CUDA is asked
// for but this build or this machine has none, or when N is not below the number of CUDA
// devices.
[[nodiscard]] c10::Device parse_device(const std::string& spec);

}  // namespace mlsys::tensor
