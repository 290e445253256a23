// The configuration of tgnn-train, read from JSON in one place (ConfigNode) with range
// checks. Defaults (= configs/tgnn-train/default.json): TGN (GRU memory, 1-layer 2-head
// attention over 10 most-recent neighbors, dims 32) for 5 epochs on the `small` synthetic
// stream generated in memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.hpp"
#include "graph/generator.hpp"
#include "graph/split.hpp"
#include "tgnn/model.hpp"

namespace mlsys::tgnn {

struct TgnnConfig {
  uint64_t seed = 1;
  struct Data {
    std::string path;  // "" = generate `generate.preset` in memory
    std::string format = "auto";
    // The graph the samplers read: "tcsr" (a time-sorted CSR built once) or "block_store"
    // (GNNFlow's TimeIndexedBlockStore, filled by batch insertion); the same samples.
    std::string graph = "tcsr";
    graph::SplitOptions split;
  } data;
  struct Generate {
    std::string preset = "small";
    graph::SyntheticConfig synthetic;  // the preset, with any field overridden
    std::vector<std::string> formats = {"tgl", "jodie"};
  } generate;
  ModelConfig model;
  struct Train {
    int64_t epochs = 5;
    int64_t batch_size = 200;
    int64_t patience = 5;
    // Also write OUT/checkpoint.h5 every N training batches (0 = after each epoch's
    // validation and on a stop only); fit --resume continues from it.
    int64_t checkpoint_every = 0;
    std::string negatives = "destinations";  // destinations (TGN) | nodes (TGL)
  } train;
  struct Eval {
    int64_t batch_size = 200;
    int64_t mrr_negatives = 9;  // q negatives per test positive for MRR
    std::string checkpoint;     // eval/embed: "" = <out>/model.h5
    // "" = off; else a CSV (split,event,src,dst,time,neg) of the split and the fixed
    // val/test AP negatives, written atomically, for other implementations to score on:
    // a name relative to --out (inside it) or an absolute path (core::export_path).
    std::string negatives_out;
  } eval;
  struct Baselines {
    bool edgebank = true;
    bool memory_zeroed = true;  // train the same model with memory zeroed
  } baselines;
  nlohmann::json resolved;
};

TgnnConfig read_tgnn_config(const core::ConfigDoc& doc);

}  // namespace mlsys::tgnn
