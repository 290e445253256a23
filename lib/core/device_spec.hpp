// The one parser of --device: "cpu", "cuda" (device 0) or "cuda:N". Torch-free: it checks
// the spelling only; tensor::parse_device turns a spec into a LibTorch device and checks
// that this build and machine have it.
#pragma once

#include <string>

namespace mlsys::core {

struct DeviceSpec {
  bool cuda = false;
  int index = 0;  // CUDA device index (0 for cpu)

  [[nodiscard]] std::string str() const { return cuda ? "cuda:" + std::to_string(index) : "cpu"; }
};

// UsageError "--device 'X': expected cpu, cuda or cuda:N" (or naming the bad index).
[[nodiscard]] DeviceSpec parse_device_spec(const std::string& spec);

}  // namespace mlsys::core
