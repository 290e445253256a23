// ssrm-incremental's config: one plain struct with the built-in defaults (equal to
// configs/ssrm-incremental/default.json; a test compares them), read from the merged JSON
// document (defaults + file + --set + the shorthand options) in one place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "gil/incremental.hpp"
#include "graph/evolving_graph.hpp"
#include "graph/incremental_tasks.hpp"

namespace mlsys::gil {

struct SsrmDataConfig {
  std::string path;               // a graph folder (graph/attributed_graph.hpp); "" = generate one from generate.*
  int64_t classes_per_task = 2;
  graph::SplitFractions split;    // per class: train, val (test = the rest)
  uint64_t split_seed = 0;
};

struct SsrmSweepConfig {
  std::vector<std::string> frameworks = {"ergnn", "twp", "gem", "ewc"};
  std::vector<double> ssrm_weights = {0.0, 1.0};  // 0 = without SSRM
  std::vector<uint64_t> seeds = {0, 1, 2};
};

struct SsrmIncrementalConfig {
  uint64_t seed = 0;               // training: initialisation, samplers, dropout
  SsrmDataConfig data;
  graph::EvolvingGraphConfig generate;  // its classes_per_task is data.classes_per_task
  uint64_t generate_seed = 0;
  IncrementalConfig run;           // model, train, framework, ssrm (run.seed = seed)
  std::string eval_results = "results.h5";  // eval: the run artifact whose model is evaluated
  SsrmSweepConfig sweep;
  core::Json resolved;
};

SsrmIncrementalConfig read_ssrm_config(const core::ConfigDoc& doc);

}  // namespace mlsys::gil
