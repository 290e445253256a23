// Fuzz target: a folder of DynaPipe profile files (plan::MeasuredProfile::read): the input
// is NAME\0TEXT\0NAME\0TEXT... (file names matter: they carry the grid point), then the
// interpolation the planner asks of an accepted profile.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "plan/measured_profile.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mlsys;
  namespace fs = std::filesystem;
  const std::string_view bytes = fuzz::begin(data, size);
  const auto parts = fuzz::split_nul(bytes);
  const fs::path dir = fuzz::fresh_dir("profile");
  for (size_t i = 0; i + 1 < parts.size() && i < 64; i += 2) {
    std::string name(parts[i]);
    // Names become one plain file in the folder: no separators, no "." or "..".
    if (name.empty() || name.size() > 200 || name.find('/') != std::string::npos || name == "." || name == "..") continue;
    (void)fuzz::write_input(fs::path("profile") / name, parts[i + 1]);
  }
  fuzz::expect_typed("MeasuredProfile::read", [&] {
    const plan::MeasuredProfile p = plan::MeasuredProfile::read(dir);
    for (double mbs : {0.5, 1.0, 3.0, 1e9}) {
      for (double len : {1.0, 100.0, 1e12}) {
        const auto v = p.at(plan::ProfileMetric::forward_encoder, mbs, len);
        if (v && !(*v >= 0)) fuzz::finding("MeasuredProfile::at", "a negative or NaN interpolated time", "");
      }
    }
  });
  return 0;
}
