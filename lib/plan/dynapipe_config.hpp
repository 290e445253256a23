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
  std::string model_profile;  // model.profile: a folder of measured profile files ("" = the analytical model)
  ClusterSpec cluster;
  PlannerOptions planner;
  BaselineOptions baselines;
  std::vector<std::string> methods = {"padding", "packing", "fixed_mbs", "fixed_tokens"};
  struct Simulate {
    std::string workload = "data";  // "data" | "uniform" (the reference simulator's conformance case) | "cost_table"
    std::string cost_table;         // the cost table simulated when workload is "cost_table"
  } simulate;
  struct Profile {  // dynapipe-plan profile: the measured grid
    std::vector<int64_t> microbatch_sizes = {1, 2, 4, 8};
    std::vector<int64_t> seqlens = {32, 64, 128, 256};
    int repeats = 5;  // timed passes per point (the median is kept)
    int warmup = 1;   // untimed passes per point first
    std::string folder = "profile";  // under --out
  } profile;
  struct Run {  // dynapipe-plan run: plans executed for real
    int64_t iterations = 3;  // global batches executed per method
    std::vector<std::string> baselines = {"packing", "fixed_tokens"};
    double lr = 1e-3;         // AdamW step after each global batch
    int timeout_s = 300;      // rendezvous and every send/receive
    std::string dtype = "float32";  // float32 | float64
  } run;
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

// The cost model of the config: with model.profile, the measured profile read from that
// folder (core::InputError for a bad profile file, ConfigError when it does not fit the
// model); else the analytical model.
CostModel cost_model_of(const DynapipeConfig& c);

}  // namespace mlsys::plan
