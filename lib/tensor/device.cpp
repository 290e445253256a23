#include "tensor/device.hpp"

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include "core/device_spec.hpp"
#include "core/error.hpp"

namespace mlsys::tensor {

c10::Device parse_device(const std::string& spec) {
  const core::DeviceSpec d = core::parse_device_spec(spec);
  if (!d.cuda) return c10::Device(c10::DeviceType::CPU);
  const auto bad = [&spec](const std::string& why) { return core::UsageError("--device '" + spec + "': " + why); };
  const int count = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (count == 0) {
    throw bad("CUDA was asked for, but no CUDA device is available (a CPU-only LibTorch, no driver "
              "or no GPU); use --device cpu");
  }
  if (d.index >= count) {
    throw bad("device index " + std::to_string(d.index) + " is out of range: " + std::to_string(count) +
              " CUDA device" + (count == 1 ? " is" : "s are") + " available (0.." + std::to_string(count - 1) + ")");
  }
  return {c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(d.index)};
}

void set_threads(int n) {
  if (n > 0) at::set_num_threads(n);
}

int threads() { return at::get_num_threads(); }

core::ThreadControl thread_control() { return {&set_threads, &threads}; }

}  // namespace mlsys::tensor
