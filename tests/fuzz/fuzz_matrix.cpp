// Fuzz target: feature matrices (.npy float32/float64, raw .bin float32) through
// graph::load_matrix, and the same bytes as a TGL folder's edge_features.npy and
// node_features.bin beside a fixed three-event edges.csv (load_tgl checks them against the
// events: defect 1 of issue 20 was there).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "graph/events.hpp"
#include "tests/fuzz/fuzz_support.hpp"

namespace {
constexpr std::string_view kEdges = ",src,dst,time,ext_roll\n0,0,1,1.0,0\n1,1,2,2.0,1\n2,2,0,3.0,2\n";

void touch_all(const mlsys::graph::Matrix& m) {
  // Every element the loader claims to hold must be readable (ASan checks the bounds).
  if (static_cast<size_t>(m.rows) * static_cast<size_t>(m.cols) != m.data.size()) {
    mlsys::fuzz::finding("load_matrix", "rows x cols differs from the data it returned", "");
  }
  volatile float sink = 0;
  for (float v : m.data) sink = sink + v;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mlsys;
  const std::string_view bytes = fuzz::begin(data, size);
  fuzz::expect_typed("load_matrix .npy", [&] { touch_all(graph::load_matrix(fuzz::write_input("m.npy", bytes))); });
  fuzz::expect_typed("load_matrix .bin", [&] { touch_all(graph::load_matrix(fuzz::write_input("m.bin", bytes))); });
  fuzz::expect_typed("load_matrix .bin (3 rows)", [&] { touch_all(graph::load_matrix(fuzz::scratch() / "m.bin", 3)); });
  fuzz::expect_typed("load_tgl + edge_features.npy", [&] {
    std::filesystem::remove(fuzz::scratch() / "tgl" / "node_features.bin");
    fuzz::write_input("tgl/edges.csv", kEdges);
    fuzz::write_input("tgl/edge_features.npy", bytes);
    const graph::EventStream s = graph::load_tgl(fuzz::scratch() / "tgl");
    if (s.edge_feat.size() != s.size() * static_cast<size_t>(s.edge_dim)) {
      fuzz::finding("load_tgl", "edge features do not match the events", "");
    }
  });
  fuzz::expect_typed("load_tgl + node_features.bin", [&] {
    std::filesystem::remove(fuzz::scratch() / "tgl" / "edge_features.npy");
    fuzz::write_input("tgl/node_features.bin", bytes);
    const graph::EventStream s = graph::load_tgl(fuzz::scratch() / "tgl");
    if (s.node_feat.size() != static_cast<size_t>(s.num_nodes) * static_cast<size_t>(s.node_dim)) {
      fuzz::finding("load_tgl", "node features do not match the nodes", "");
    }
  });
  return 0;
}
