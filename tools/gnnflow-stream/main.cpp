// gnnflow-stream: GNNFlow's continuous temporal GNN learning on a stream (arXiv 2311.17410):
// the time-indexed block store, temporal sampling, the feature cache. CLI only: each subcommand calls one
// function of lib/stream.
#include "core/cli.hpp"
#include "stream/gnnflow_commands.hpp"

int main(int argc, char** argv) {
  using namespace mlsys;
  return core::run_program(
      "gnnflow-stream",
      "GNNFlow: a time-indexed block store for temporal graph streams, temporal sampling over it,\n"
      "compared with rebuilding a T-CSR per increment (arXiv 2311.17410). The continuous-learning\n"
      "loop (run) is not built yet",
      {
          {"generate", "write a seeded synthetic edge stream to OUT/stream.bin (and stream.csv) with OUT/manifest.json",
           stream::gnnflow_generate},
          {"ingest", "stream data.path (or the generated stream) into the block store; print throughput and memory",
           stream::gnnflow_ingest},
          {"sample", "ingest, then sample recent/uniform neighbours of event endpoints; print roots/s",
           stream::gnnflow_sample},
          {"bench", "the block store against a T-CSR rebuilt per increment: update and sampling throughput",
           stream::gnnflow_bench},
          {"cache", "edge-feature cache hit rates (LRU/LFU/FIFO, ratios, with and without restoration) on the increments",
           stream::gnnflow_cache},
      },
      argc, argv);
}
