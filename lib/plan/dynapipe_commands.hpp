// The subcommands of dynapipe-plan, one function each (tools/dynapipe-plan/main.cpp only
// parses the command line): generate, plan, simulate, compare, explain, export-profile.
// Each returns the exit code; errors are thrown as core::Error and reported once by
// core::run_main.
#pragma once

#include "core/cli.hpp"

namespace mlsys::plan {

// Writes <out>/lengths.jsonl: the seeded FLANv2-like mixture of data.generate.
int dynapipe_generate(const core::CommonOptions& opts);
// Plans data.batches global batches; writes <out>/plan.json (micro-batches, per-rank plans).
int dynapipe_plan(const core::CommonOptions& opts);
// Simulates every schedule on DynaPipe's micro-batches (or the uniform §2.6 case);
// writes <out>/simulate.json.
int dynapipe_simulate(const core::CommonOptions& opts);
// DynaPipe against each baseline: throughput, padding efficiency, peak memory;
// writes <out>/compare.json.
int dynapipe_compare(const core::CommonOptions& opts);
// The timeline of one planned iteration: <out>/<explain.svg> and a text chart on stdout.
int dynapipe_explain(const core::CommonOptions& opts);
// The analytical cost model on the profile.microbatch_sizes x profile.seqlens grid, written
// as a profile folder <out>/<profile.folder> (the reference's format) for model.profile or
// for the reference planner (bench/dynapipe/reference_planner.py).
int dynapipe_export_profile(const core::CommonOptions& opts);

}  // namespace mlsys::plan
