// Fuzz target: DynaPipe sample-length files (plan::load_lengths) as JSONL and as CSV, then
// the first steps dynapipe-plan takes with them (clipping, global batches).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "plan/length_dataset.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {
void use(std::vector<mlsys::plan::SampleLength> s) {
  for (const auto& x : s) {
    if (x.input < 0 || x.target < 0) mlsys::fuzz::finding("load_lengths", "a negative length was accepted", "");
  }
  mlsys::plan::clip_lengths(s, 512, true);
  (void)mlsys::plan::split_global_batches(s, 4096);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mlsys;
  const std::string_view bytes = fuzz::begin(data, size);
  fuzz::expect_typed("load_lengths jsonl", [&] {
    std::vector<size_t> lines;
    use(plan::load_lengths(fuzz::write_input("lengths.jsonl", bytes), "auto", &lines));
  });
  fuzz::expect_typed("load_lengths csv", [&] { use(plan::load_lengths(fuzz::write_input("lengths.csv", bytes), "auto")); });
  return 0;
}
