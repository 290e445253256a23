// The subcommands of ssrm-incremental, one function each (tools/ssrm-incremental/main.cpp
// only parses the command line): generate, run, eval, sweep. Each returns the exit code;
// errors are thrown as core::Error and reported once by core::run_main.
#pragma once

#include "core/options.hpp"

namespace mlsys::gil {

// Writes the seeded synthetic evolving graph of generate.* into <out> (labels.csv,
// edges.csv, features.npy, meta.json: the folder format data.path reads); prints its
// per-task sizes and structural shift.
int ssrm_generate(const core::CommonOptions& opts);
// Learns the task sequence with framework.* (+ SSRM when ssrm.weight > 0); writes
// <out>/results.h5 (accuracy matrix, AP, AF, shift diagnostics, the final model) and
// prints the accuracy matrix and the summary.
int ssrm_run(const core::CommonOptions& opts);
// Evaluates the model of eval.results (a run's results.h5) on the tasks of the configured
// data, on the last task's graph and on each task's own; writes <out>/eval.h5.
int ssrm_eval(const core::CommonOptions& opts);
// Runs sweep.frameworks x sweep.ssrm_weights x sweep.seeds on one graph; writes
// <out>/sweep.h5 (every run's AP, AF, shift gap) and prints mean +- std per framework and weight.
int ssrm_sweep(const core::CommonOptions& opts);

}  // namespace mlsys::gil
