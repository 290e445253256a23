// Training a temporal model on a stream with the suite's one training loop
// (core::run_training_loop): one step is one training batch of the chronological stream,
// an epoch is the whole training split (memory reset at its start, negatives redrawn from
// seed * 1000003 + epoch), validation AP after each epoch selects the best parameters
// (patience in epochs). The checkpoint holds the model's whole training state (parameters,
// Adam, memory, mailboxes, generators) and the epoch in progress, so fit --resume after a
// stop continues bit for bit. No LibTorch here: the model sits behind model.hpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "core/options.hpp"
#include "graph/events.hpp"
#include "graph/sampler.hpp"
#include "graph/temporal_adjacency.hpp"
#include "graph/split.hpp"
#include "tgnn/model.hpp"
#include "tgnn/tgnn_config.hpp"

namespace mlsys::tgnn {

// What training and its validation read.
struct FitData {
  const TgnnConfig& c;
  const graph::EventStream& s;
  const graph::Split& sp;
  const graph::TemporalAdjacency& g_train;  // training events only
  const graph::TemporalAdjacency& g_full;
  const std::vector<int64_t>& val_neg;  // one fixed negative per validation event
};

struct FitResult {
  core::Json epochs = core::Json::array();  // per epoch: loss, val AP/AUC, seconds, events/s
  int64_t best_epoch = 0;
  int64_t epochs_run = 0;
  double epoch_seconds = 0, events_per_s = 0;
  // Process CPU time of the training passes (all threads): with --threads 1 on a machine
  // shared with other jobs this is the steadier speed measure; wall time is reported too.
  double epoch_cpu_seconds = 0, events_per_cpu_s = 0;
  StageTimes times;
  int64_t parameters = 0;
  int64_t resumed_at_step = -1;  // -1: not resumed
};

// How one model's fit is run: its progress label, its checkpoint file and whether to
// continue from it (opts: --resume, --force, progress, the artifact header).
struct FitRun {
  std::string label;
  std::filesystem::path checkpoint;
  bool resume = false;
  std::string data_key;  // stream_key of the training data (computed once per program run)
};

// The fingerprint of a stream a checkpoint records (endpoints, times, edge and node
// features): --resume refuses other data.
std::string stream_key(const graph::EventStream& s);

// Trains `m` with best-val selection and patience; on return the best parameters are in
// `m`. The checkpoint is left in place (remove it with remove_fit_checkpoint once the
// program's artifacts are written). Throws core::RuntimeFailure on a stop request after
// writing the checkpoint.
FitResult fit_model(TemporalModel& m, const FitData& d, const FitRun& run, const core::CommonOptions& opts);

void remove_fit_checkpoint(const FitRun& run);

}  // namespace mlsys::tgnn
