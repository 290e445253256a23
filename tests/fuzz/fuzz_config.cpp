// Fuzz target: the JSON config loader with --set overrides. The input is the config text,
// then NUL-separated `key.path=value` overrides; the merged document is read into a real
// config struct (dynapipe-plan's, the torch-free one: tgnn-train's reader calls into the
// LibTorch model code), as the program does.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "plan/dynapipe_config.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mlsys;
  const auto parts = fuzz::split_nul(fuzz::begin(data, size));
  const std::vector<std::string> overrides(parts.begin() + 1, parts.end());
  fuzz::expect_typed("parse_config + read_dynapipe_config", [&] {
    const core::ConfigDoc doc = core::parse_config(parts[0], "fuzz.json", overrides);
    const plan::DynapipeConfig c = plan::read_dynapipe_config(doc);
    (void)c.resolved.dump();
  });
  // The file form as well (the programs call load_config with a path).
  if (size < 4096) {
    fuzz::expect_typed("load_config", [&] {
      const auto p = fuzz::write_input("config.json", parts[0]);
      (void)core::load_config(p.string(), overrides);
    });
  }
  return 0;
}
