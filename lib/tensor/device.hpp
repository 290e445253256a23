// Device choice from the command line's --device: "cpu", "cuda" or "cuda:N", checked
// against what this process can actually use.
#pragma once

#include <string>

#include <c10/core/Device.h>

namespace mlsys::tensor {

// Parses "cpu", "cuda" (device 0) or "cuda:N". Throws core::UsageError with one line
// naming the spec when it is malformed, when CUDA is asked for but this build or this
// machine has none, or when N is not below the number of CUDA devices.
[[nodiscard]] c10::Device parse_device(const std::string& spec);

}  // namespace mlsys::tensor
