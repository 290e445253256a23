// Fuzz target: HDF5 artifacts read back (core::H5Reader): the integrity seal (a damaged
// file must be refused before libhdf5 opens it: core/h5_seal.hpp), then open, walk every group, read
// every dataset with the reader its type calls for, the root header attributes (the
// resolved config parsed as JSON, as --resume does), and the training loop's metric series.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/h5.hpp"
#include "core/json.hpp"
#include "core/training_loop.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {
void walk(const mlsys::core::H5Reader& r, const std::string& group, int depth, int& budget) {
  using namespace mlsys;
  std::vector<std::string> names;
  try {
    names = r.list(group);
  } catch (const core::Error&) {
    return;
  }
  for (const std::string& n : names) {
    if (--budget < 0) return;
    const std::string path = (group == "/" ? "/" : group + "/") + n;
    fuzz::expect_typed("H5Reader dataset", [&] {
      switch (r.type(path)) {
        case core::H5Type::f32: (void)r.read_f32(path); break;
        case core::H5Type::f64: (void)r.read_f64(path); (void)r.read_f32(path); break;
        case core::H5Type::i64: (void)r.read_i64(path); break;
        case core::H5Type::string: (void)r.read_strings(path); break;
        case core::H5Type::other: break;
      }
      (void)r.shape(path);
    });
    if (depth < 6) walk(r, path, depth + 1, budget);
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mlsys;
  const auto p = fuzz::write_input("artifact.h5", fuzz::begin(data, size));
  fuzz::expect_typed("H5Reader", [&] {
    const core::H5Reader r(p);
    int budget = 64;
    walk(r, "/", 0, budget);
    for (const char* a : {"program", "version", "config", "resume_key"}) {
      fuzz::expect_typed("H5Reader attr_string", [&] {
        const std::string s = r.attr_string("/", a);
        try {
          (void)core::parse_json_bounded(s);
        } catch (const core::JsonTextError&) {  // the documented failures (JsonTooDeep included)
        } catch (const core::Json::exception& e) {
          fuzz::finding("parse_json_bounded (attribute)", "throws a Json::exception, not JsonTextError", e.what());
        }
      });
    }
    fuzz::expect_typed("H5Reader attr_int", [&] { (void)r.attr_int("/", "step"); });
    fuzz::expect_typed("H5Reader attr_double", [&] { (void)r.attr_double("/", "best_score"); });
    fuzz::expect_typed("Series::read /metrics", [&] { (void)core::Series::read(r, "/metrics"); });
    fuzz::expect_typed("Series::read /eval", [&] { (void)core::Series::read(r, "/eval"); });
  });
  return 0;
}
