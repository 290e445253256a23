// The subcommands of spmd-plan that run LibTorch (lib/plan_exec): profile and run.
// Torch-free header, so tools/spmd-plan/main.cpp includes no LibTorch.
#pragma once

#include "core/cli.hpp"

namespace mlsys::plan {

// Measures this machine's GEMM FLOP/s per process and the loopback collectives (alpha-beta
// fits over profile.sizes_mb) on profile.processes local processes; writes the cluster file
// <out>/<profile.file>.
int spmd_profile(const core::CommonOptions& opts);
// Executes a plan (run.plan, or one synthesized from model + cluster with run.ratios) on
// one local process per device (Gloo on loopback; under a launcher, as the rank of RANK),
// checks loss, gradients and the SGD step against one process, times run.iterations more
// iterations; writes <out>/run.json (measured vs predicted). Exit 1 when the check fails.
int spmd_run(const core::CommonOptions& opts);

}  // namespace mlsys::plan
