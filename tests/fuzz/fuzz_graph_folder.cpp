// Fuzz target: ssrm-incremental's graph folder (graph::load_attributed_graph): the input is
// labels.csv\0edges.csv\0features.csv, then what the program does first with a graph it
// accepted (k-hop neighbourhoods, an induced subgraph).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "graph/attributed_graph.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mlsys;
  namespace fs = std::filesystem;
  const std::string_view bytes = fuzz::begin(data, size);
  const auto parts = fuzz::split_nul(bytes);
  const fs::path dir = fuzz::fresh_dir("graph");
  const char* names[] = {"labels.csv", "edges.csv", "features.csv"};
  for (size_t i = 0; i < 3 && i < parts.size(); ++i) (void)fuzz::write_input(fs::path("graph") / names[i], parts[i]);
  fuzz::expect_typed("load_attributed_graph", [&] {
    const graph::AttributedGraph g = graph::load_attributed_graph(dir);
    if (g.num_nodes > 0) {
      const auto near = graph::k_hop_nodes(g, {0}, 2);
      (void)graph::induced_subgraph(g, near);
    }
  });
  return 0;
}
