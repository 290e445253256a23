// The subcommands of gnnflow-stream, one function each (tools/gnnflow-stream/main.cpp only
// parses the command line): generate, ingest, sample, bench. They need no LibTorch; the
// continuous-learning loop (`run`, LibTorch training through lib/tgnn) is not built yet.
// Each returns the exit code; errors are thrown as core::Error and reported once by
// core::run_main.
#pragma once

#include <cstdint>
#include <vector>

#include "core/cli.hpp"
#include "graph/block_store.hpp"
#include "graph/edge_stream.hpp"
#include "stream/gnnflow_config.hpp"

namespace mlsys::stream {

// Writes OUT/stream.bin (+ OUT/stream.csv with generate.csv) and OUT/manifest.json.
int gnnflow_generate(const core::CommonOptions& opts);
// Streams data.path (or the generated stream) into a block store in ingest.batch_size
// batches; prints insertion throughput and the memory accounting; writes OUT/ingest.json.
int gnnflow_ingest(const core::CommonOptions& opts);
// Ingests, then samples the endpoints of the last sample.max_events events at their event
// times (recent and/or uniform, and the configured layers/snapshots); prints roots/s;
// writes OUT/sample.json.
int gnnflow_sample(const core::CommonOptions& opts);
// The store against rebuilding a T-CSR (lib/graph's TemporalGraph) after every increment:
// update time and sampling throughput, alternating which goes first, repeated; checks that
// both give identical samples; writes OUT/bench.json.
int gnnflow_bench(const core::CommonOptions& opts);
// Edge-feature cache hit rates on the increments (bench.initial_fraction, bench.increments):
// per batch of cache.batch_size events, lookups of the events' own eids and of the eids of
// their endpoints' cache.fanout most recent earlier edges; per policy and ratio, with and
// without restoration (before each increment, reload the cache with its events' eids);
// writes OUT/cache.json.
int gnnflow_cache(const core::CommonOptions& opts);

// The stream of the config: data.path read, or generated from generate.* with the seed.
graph::EdgeStream load_or_generate(const GnnflowConfig& c);

struct IngestTiming {
  double seconds = 0;
  int64_t batches = 0;
  int64_t expired = 0;
};
// Inserts events [begin, end) of `s` in batches of `batch` events (eids from s.eid); with
// expire_window > 0, expires blocks older than (newest time so far - window) after each batch.
IngestTiming ingest_range(graph::TimeIndexedBlockStore& st, const graph::EdgeStream& s, size_t begin, size_t end,
                          int64_t batch, double expire_window);

}  // namespace mlsys::stream
