// The subcommands of tgnn-train, one function each (tools/tgnn-train/main.cpp only parses
// the command line): generate, fit, eval, embed. Each returns the exit code; errors are
// thrown as core::Error and reported once by core::run_main.
#pragma once

#include "core/cli.hpp"

namespace mlsys::tgnn {

// Writes the seeded synthetic stream of generate.* into <out> (edges.csv +
// edge_features.npy, jodie.csv, oracle.csv, meta.json); prints its statistics and oracle AP.
int tgnn_generate(const core::CommonOptions& opts);
// Trains model.* with best-val selection and patience, then evaluates val/test
// (transductive and inductive) next to EdgeBank, the memory-zeroed model and the oracle;
// writes <out>/model.h5 (params + metrics) and <out>/metrics.json.
int tgnn_fit(const core::CommonOptions& opts);
// Loads eval.checkpoint, replays train and val, reports test metrics (MRR with q
// negatives) next to EdgeBank; writes <out>/eval.json.
int tgnn_eval(const core::CommonOptions& opts);
// Loads eval.checkpoint, replays every event, writes <out>/embeddings.h5 (/memory,
// /memory_ts, /embeddings of all nodes at the end of the stream).
int tgnn_embed(const core::CommonOptions& opts);

}  // namespace mlsys::tgnn
