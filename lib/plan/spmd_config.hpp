// The configuration of spmd-plan, read from JSON in one place (ConfigNode) with range
// checks. Defaults: BERT-base on the paper's heterogeneous cluster (16 fast + 48 slow
// devices at 1.8:1, 8 per node, 10 Gb/s between nodes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.hpp"
#include "plan/spmd_graph.hpp"
#include "plan/spmd_program.hpp"
#include "plan/spmd_synth.hpp"

namespace mlsys::plan {

struct SpmdConfig {
  uint64_t seed = 1;
  struct Model {
    std::string file;  // a model graph JSON ("" = the generator)
    SpmdModelSize size;
  } model;
  struct Cluster {
    std::string file;  // a cluster JSON ("" = the two-speed preset below)
    int fast = 16, slow = 48, per_node = 8;
    double fast_tflops = 14.0, slow_tflops = 14.0 / 1.8;  // V100 : P100 as HAP profiled them (1.8:1)
    double fast_memory_gb = 32, slow_memory_gb = 16;
    double link_gbits = 10.4;        // between nodes (the paper's cluster)
    double link_latency_us = 30;
    double intra_gbytes_per_s = 50;  // inside a node
    double intra_latency_us = 5;
  } cluster;
  CostOptions cost;
  SynthOptions synth;
  std::vector<std::string> baselines = {"dp-even", "dp-proportional", "tp"};
  struct Compare {
    bool ucs = true;  // also run uniform-cost search and report its node count
  } compare;
  struct Simulate {
    std::string plan;  // a plan.json written by synth
    bool use_plan_cluster = true;  // false: the config's cluster (what-if)
  } simulate;
  struct Explain {
    std::string svg = "timeline.svg";  // under --out
    int width = 100;
  } explain;
  struct Run {
    std::string plan;  // "" = synthesize from model + cluster (with run.ratios if given)
    std::vector<double> ratios;  // fixed sharding ratios of the executed plan ([] = synthesized)
    std::string dtype = "float64";
    double lr = 0.1;        // one SGD step after the backward
    double rtol = 1e-9;     // loss, gradients and updated parameters against one process
    double atol = 1e-12;
    int iterations = 3;     // timed iterations after the checked one (predicted vs measured)
    int timeout_s = 300;
  } run;
  struct Profile {
    int processes = 2;
    std::vector<double> sizes_mb = {0.01, 1, 4, 16};
    int repeats = 5;
    int64_t gemm = 512;
    std::string file = "cluster.json";  // under --out
  } profile;
  nlohmann::json resolved;
};

SpmdConfig read_spmd_config(const core::ConfigDoc& doc);

// The model graph and the cluster of a config (core::InputError for a bad file,
// core::ConfigError for bad generator sizes).
SpmdGraph model_of(const SpmdConfig& c);
SpmdCluster cluster_of(const SpmdConfig& c);

}  // namespace mlsys::plan
