// The subcommands of dynapipe-plan that run LibTorch (lib/plan_exec): profile and run.
// Torch-free header, so tools/dynapipe-plan/main.cpp includes no LibTorch.
#pragma once

#include "core/cli.hpp"

namespace mlsys::plan {

// Measures one layer and the LM head of the stage model on the profile grid; writes the
// profile folder <out>/<profile.folder> (reference-format files + profile.json).
int dynapipe_profile(const core::CommonOptions& opts);
// Executes run.iterations global batches with DynaPipe's plans and with each of
// run.baselines on cluster.stages local processes (one per stage; Gloo on loopback);
// writes <out>/run.json with measured and simulated iteration times.
int dynapipe_run(const core::CommonOptions& opts);

}  // namespace mlsys::plan
