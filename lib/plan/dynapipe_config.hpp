// The configuration of dynapipe-plan, read from JSON in one place (ConfigNode) with range
// checks; the defaults are a GPT pipeline of 4 stages over a FLANv2-like stream.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.hpp"
#include "plan/baselines.hpp"
#include "plan/cluster_spec.hpp"
#include "plan/dynapipe_planner.hpp"
#include "plan/length_dataset.hpp"
#include "plan/model_spec.hpp"

namespace mlsys::plan {

struct DynapipeConfig {
  uint64_t seed = 1;
  struct Data {
    std::string path;  // "" = generate the FLANv2-like mixture in memory
    std::string format = "auto";
    int64_t max_seqlen = 2048;
    int64_t global_batch_tokens = 65536;
    int64_t batches = 8;  // global batches planned from the start of the stream (0 = all)
    FlanLikeConfig generate;
  } data;
  ModelSpec model;
  ClusterSpec cluster;
  PlannerOptions planner;
  BaselineOptions baselines;
  std::vector<std::string> methods = {"padding", "packing", "fixed_mbs", "fixed_tokens"};
  struct Simulate {
    std::string workload = "data";  // "data" | "uniform" (the reference simulator's conformance case) | "cost_table"
    std::string cost_table;         // the cost table simulated when workload is "cost_table"
  } simulate;
  struct Explain {
    int64_t batch = 0;
    std::string svg = "timeline.svg";  // under --out (core::artifact_path)
    int width = 100;
  } explain;
  nlohmann::json resolved;  // defaults + file + overrides, as read
};

// Reads every field (ConfigError naming the file and key on a bad one) and rejects unknown
// keys (--seed arrives as the override seed=N, see core::load_config).
DynapipeConfig read_dynapipe_config(const core::ConfigDoc& doc);

}  // namespace mlsys::plan
