// Fuzz target: JSONL data: core::for_each_jsonl_object and the torch-free readers of
// lib/nn/text_data.cpp (labelled classification rows, causal-LM rows) on the same bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/json.hpp"
#include "nn/text_data.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mlsys;
  const std::string_view text = fuzz::begin(data, size);
  fuzz::expect_typed("for_each_jsonl_object", [&] {
    size_t rows = 0;
    core::for_each_jsonl_object("fuzz.jsonl", text, [&](const core::Json& o, size_t) {
      if (!o.is_object()) fuzz::finding("for_each_jsonl_object", "a row that is not an object", o.dump().substr(0, 200));
      ++rows;
    });
  });
  const auto p = fuzz::write_input("data.jsonl", text);
  fuzz::expect_typed("read_labeled_jsonl", [&] {
    const auto rows = nn::read_labeled_jsonl(p, true);
    (void)nn::label_set(rows);
  });
  fuzz::expect_typed("read_labeled_jsonl (labels optional)", [&] { (void)nn::read_labeled_jsonl(p, false); });
  fuzz::expect_typed("read_lm_jsonl", [&] { (void)nn::read_lm_jsonl(p, false); });
  fuzz::expect_typed("read_lm_jsonl (prompts only)", [&] { (void)nn::read_lm_jsonl(p, true); });
  return 0;
}
