// The torch-free subcommands of spmd-plan, one function each (tools/spmd-plan/main.cpp
// only parses the command line): synth, explain, simulate, compare. Each returns the exit
// code; errors are thrown as core::Error and reported once by core::run_main. Also the plan
// artifact they share with the executor (lib/plan_exec/spmd_*).
#pragma once

#include "core/cli.hpp"
#include "core/json.hpp"
#include "plan/spmd_config.hpp"

namespace mlsys::plan {

// Synthesizes the HAP plan and the baselines; writes <out>/plan.json (per-rank programs,
// prediction, history) and <out>/listing.txt; prints HAP against the baselines.
int spmd_synth(const core::CommonOptions& opts);
// The synthesized program as a listing with per-instruction cost, the per-device split of
// compute, communication and memory, and <out>/<explain.svg> (the predicted timeline).
int spmd_explain(const core::CommonOptions& opts);
// Re-predicts the program of simulate.plan (a plan.json) on the config's cluster and model
// sizes: what-if for another cluster. Writes <out>/simulate.json.
int spmd_simulate(const core::CommonOptions& opts);
// HAP vs the baselines and A* vs uniform-cost search (nodes expanded, time); writes
// <out>/compare.json.
int spmd_compare(const core::CommonOptions& opts);

// The plan artifact: model, cluster, ratios, global program, per-rank programs, prediction.
core::Json spmd_plan_json(const core::CommonOptions& opts, const SpmdConfig& c, const SpmdCostModel& m,
                          const SynthResult& r);
core::Json prediction_json(const Prediction& p);

}  // namespace mlsys::plan
