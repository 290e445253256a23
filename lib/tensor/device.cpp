#include "tensor/device.hpp"

#include <charconv>
#include <string_view>

#include <torch/cuda.h>

#include "core/error.hpp"

namespace mlsys::tensor {

c10::Device parse_device(const std::string& spec) {
  const std::string_view s(spec);
  const auto bad = [&spec](const std::string& why) -> core::UsageError {
    return core::UsageError("--device '" + spec + "': " + why);
  };
  if (s == "cpu") return c10::Device(c10::DeviceType::CPU);
  if (!s.starts_with("cuda")) throw bad("expected cpu, cuda or cuda:N");

  int index = 0;
  if (s.size() > 4) {
    if (s[4] != ':' || s.size() == 5) throw bad("expected cpu, cuda or cuda:N");
    const std::string_view digits = s.substr(5);
    const auto* first = digits.data();
    const auto* last = digits.data() + digits.size();
    auto [ptr, ec] = std::from_chars(first, last, index);
    // from_chars accepts no sign or spaces, so "cuda:-1" and "cuda: 1" fail here.
    if (ec != std::errc() || ptr != last) {
      throw bad("expected a device index N >= 0 after 'cuda:', found '" + std::string(digits) + "'");
    }
  }

  const int count = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (count == 0) {
    throw bad("CUDA was asked for, but no CUDA device is available (a CPU-only LibTorch, no driver "
              "or no GPU); use --device cpu");
  }
  if (index >= count) {
    throw bad("device index " + std::to_string(index) + " is out of range: " + std::to_string(count) +
              " CUDA device" + (count == 1 ? " is" : "s are") + " available (0.." + std::to_string(count - 1) +
              ")");
  }
  return {c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index)};
}

}  // namespace mlsys::tensor
