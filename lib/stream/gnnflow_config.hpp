// The configuration of gnnflow-stream, read from JSON in one place with range checks; the
// defaults stream the notes' 1M-edge preset (S) into a block store sized like the
// reference's mid-size data sets (min block 4, BIG 256).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.hpp"
#include "graph/block_store.hpp"
#include "graph/edge_stream.hpp"
#include "graph/temporal_sampling.hpp"

namespace mlsys::stream {

struct GnnflowConfig {
  uint64_t seed = 1;
  struct Data {
    std::string path;  // a stream file (binary or CSV); "" = generate it in memory from `generate`
    std::string format = "auto";
  } data;
  struct Generate {
    std::string preset = "S";  // tiny | S | M | L | gdelt | mag; single fields override it
    graph::StreamGenConfig gen;
    bool csv = false;  // generate also writes OUT/stream.csv
  } generate;
  graph::BlockStoreConfig store;
  struct Ingest {
    int64_t batch_size = 100000;  // events per insertion batch
    double expire_window = 0;     // > 0: after each batch, expire blocks older than newest - window
  } ingest;
  struct Sample {
    std::string strategy = "both";  // recent | uniform | both
    graph::TemporalSamplingConfig layers;  // fanouts, snapshots, window, prop_time
    int64_t batch_size = 600;  // events per sampled batch: roots = their src and dst at the event time
    int64_t max_events = 200000;  // events whose endpoints are sampled (0 = all), from the end of the stream
    bool prefetch = true;  // interleave 8 roots with prefetches (the flat store samplers)
  } sample;
  struct Bench {
    double initial_fraction = 0.3;  // inserted before the increments (notes §4 phase 1)
    int64_t increments = 10;
    int64_t repeats = 5;          // alternating store / T-CSR order
    int64_t fanout = 10;
    int64_t roots_per_increment = 20000;  // sampled roots per increment (0 = both endpoints of every event)
  } bench;
  struct Cache {  // gnnflow-stream cache: edge-feature cache hit rates (notes §3)
    std::vector<std::string> policies = {"lru", "lfu", "fifo"};
    std::vector<double> ratios = {0.001, 0.005, 0.02, 0.1};  // capacity = ratio x events
    bool restoration = true;  // also run each with restoration (pre-warm with the increment's eids)
    int64_t dim = 4;          // floats per feature row (hashed features; only the copy cost)
    int64_t batch_size = 600; // events per batch
    int64_t fanout = 10;      // recent neighbours sampled per endpoint
  } cache;
  nlohmann::json resolved;
};

// Reads every field (ConfigError naming the file and key) and rejects unknown keys.
GnnflowConfig read_gnnflow_config(const core::ConfigDoc& doc);

}  // namespace mlsys::stream
