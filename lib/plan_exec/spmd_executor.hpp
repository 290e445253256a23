// Executing spmd-plan's per-rank programs with LibTorch (notes planners.md §4.1): each rank
// interprets its instruction list (placeholders, parameters, collectives, computes) on its
// shards, forward and backward and one SGD step; the collectives are autograd functions
// whose backward is the dual collective (all-gather <-> reduce-scatter, all-reduce <->
// all-reduce, all-to-all <-> all-to-all). Gloo lacks uneven all-gather and reduce-scatter:
// the padded variants pad to the largest shard and use allgather / allreduce, the grouped
// ones use one broadcast / reduce per root; all-to-all uses point-to-point transfers. Every
// rank also runs the single-process reference (same seed) and checks its loss, gradients
// and updated parameters against it. Torch-free header.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "plan/spmd_graph.hpp"

namespace mlsys::tensor {
class ProcessGroup;
}

namespace mlsys::plan {

struct SpmdExecOptions {
  uint64_t seed = 1;
  bool float64 = true;
  double lr = 0.1;
  double rtol = 1e-9, atol = 1e-12;
  int timed_iterations = 0;  // after the checked iteration: forward + backward + step, timed
};

struct SpmdRankReport {
  int rank = 0;
  double loss = 0;             // the distributed loss (sum over ranks of the partials)
  double reference_loss = 0;   // one process, the whole model
  double loss_error = 0;       // |loss - reference| / max(|reference|, tiny)
  double max_grad_error = 0;   // max over parameters of max |g - g_ref| / (atol + rtol |g_ref|) (<= 1 passes)
  double max_param_error = 0;  // the same for the parameters after the SGD step
  std::string worst;           // the parameter with the largest gradient error
  int64_t parameters_checked = 0;
  int64_t instructions = 0;
  int64_t collectives = 0;     // forward collectives executed
  bool ok = false;
  std::vector<double> iteration_ms;  // this rank's timed iterations (wall clock)
};

// Runs `programs` (rank_programs' JSON: shards and per-rank instructions) for `g` as rank
// pg.rank() of pg.size(). core::RuntimeFailure for a program that does not fit the graph.
SpmdRankReport execute_spmd_rank(const SpmdGraph& g, const core::Json& programs, tensor::ProcessGroup& pg,
                                 const SpmdExecOptions& o);

}  // namespace mlsys::plan
