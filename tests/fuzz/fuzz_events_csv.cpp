// Fuzz target: temporal event CSV files: TGL's edges.csv and the JODIE CSV, through
// graph::load_events with format auto, tgl and jodie.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "graph/events.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {
void check(const mlsys::graph::EventStream& s) {
  using mlsys::fuzz::finding;
  if (s.dst.size() != s.size() || s.t.size() != s.size()) finding("load_events", "columns of different lengths", "");
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.src[i] < 0 || s.src[i] >= s.num_nodes || s.dst[i] < 0 || s.dst[i] >= s.num_nodes) {
      finding("load_events", "a node id outside [0, num_nodes)", "");
    }
    if (i > 0 && !(s.t[i - 1] <= s.t[i])) finding("load_events", "time not non-decreasing (or NaN)", "");
  }
  if (s.edge_feat.size() != s.size() * static_cast<size_t>(s.edge_dim)) finding("load_events", "edge features do not match", "");
  for (float v : s.edge_feat) {
    if (!(v == v) || v - v != 0) finding("load_events", "a non-finite edge feature was accepted", "");
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mlsys;
  const auto p = fuzz::write_input("events.csv", fuzz::begin(data, size));
  fuzz::expect_typed("load_events auto", [&] { check(graph::load_events(p, "auto")); });
  fuzz::expect_typed("load_events tgl", [&] { check(graph::load_events(p, "tgl")); });
  fuzz::expect_typed("load_events jodie", [&] { check(graph::load_events(p, "jodie")); });
  return 0;
}
