#include "core/device_spec.hpp"

#include <charconv>
#include <string_view>

#include "core/error.hpp"

namespace mlsys::core {

DeviceSpec parse_device_spec(const std::string& spec) {
  const std::string_view s(spec);
  const auto bad = [&spec](const std::string& why) { return UsageError("--device '" + spec + "': " + why); };
  if (s == "cpu") return {};
  if (!s.starts_with("cuda")) throw bad("expected cpu, cuda or cuda:N");
  DeviceSpec d{true, 0};
  if (s.size() > 4) {
    if (s[4] != ':' || s.size() == 5) throw bad("expected cpu, cuda or cuda:N");
    const std::string_view digits = s.substr(5);
    const char* last = digits.data() + digits.size();
    auto [ptr, ec] = std::from_chars(digits.data(), last, d.index);
    // from_chars takes a '-' for a signed type: digits only, so "cuda:-1" fails here too.
    if (digits.front() < '0' || digits.front() > '9' || ec != std::errc() || ptr != last) {
      throw bad("expected a device index N >= 0 after 'cuda:', found '" + std::string(digits) + "'");
    }
  }
  return d;
}

}  // namespace mlsys::core
