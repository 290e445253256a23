// Fuzz target: the one JSON reading path (core/json.hpp) every JSON input goes through:
// depth-limited parsing, the bounded descriptions that error messages quote, the
// difference walk (resume keys), and parse_json_text's ConfigError.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/config.hpp"
#include "core/json.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mlsys;
  const std::string_view text = fuzz::begin(data, size);
  core::Json j;
  bool parsed = false;
  try {
    j = core::parse_json_bounded(text);
    parsed = true;
  } catch (const core::JsonTextError&) {  // JsonNumberOverflow included
  } catch (const core::JsonTooDeep&) {
  } catch (const core::Json::exception& e) {
    // The documented failures are JsonTextError, JsonNumberOverflow and JsonTooDeep
    // (core/json.hpp): callers catch those.
    fuzz::finding("parse_json_bounded", "throws a Json::exception other than parse_error", e.what());
  }
  if (parsed) {
    if (core::describe_json(j).size() > 200) fuzz::finding("describe_json", "description longer than 200", core::describe_json(j).substr(0, 300));
    if (core::short_json(j).size() > 200) fuzz::finding("short_json", "excerpt longer than 200", core::short_json(j).substr(0, 300));
    if (!core::first_difference(j, j).empty()) fuzz::finding("first_difference", "a value differs from itself", j.dump().substr(0, 300));
    const core::Json again = core::parse_json_bounded(j.dump());  // what an artifact writes, read back
    if (again != j && !j.dump().empty()) {
      // NaN cannot come out of the parser, so a round trip must give the same value.
      fuzz::finding("parse_json_bounded", "dump() does not read back as the same value", j.dump().substr(0, 300));
    }
  }
  fuzz::expect_typed("parse_json_text", [&] { (void)core::parse_json_text(text, "fuzz.json"); });
  return 0;
}
