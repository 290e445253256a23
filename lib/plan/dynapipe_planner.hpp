// DynaPipe's per-iteration planner: order the samples of a global batch, split them into
// micro-batches with the DP under the memory model (trying per-micro-batch memory limits
// and recomputation modes in turn), spread them over data-parallel replicas by
// Karmarkar-Karp, search micro-batch permutations and schedules in the simulator, and emit
// the per-rank execution plans (DynaPipe, arXiv 2311.10418).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "plan/cost_model.hpp"
#include "plan/execution_plan.hpp"
#include "plan/length_dataset.hpp"
#include "plan/microbatch_dp.hpp"
#include "plan/simulator.hpp"

namespace mlsys::plan {

struct PlannerOptions {
  std::vector<Recompute> recompute = {Recompute::none, Recompute::selective, Recompute::full};
  int round_multiple = 8;
  int decoder_offset = 2;        // T5 decoder length + 2 (start/end tokens)
  double tmax_interval_ms = 5.0;  // minimum spacing of candidate t_max values
  double cluster_threshold = 16.0;
  bool use_tsp = true;
  std::vector<std::string> schedules = {"1f1b", "interleaved-1f1b", "wait-free-cyclic"};
  // Layer -> device layouts tried per batch (the fastest that fits wins): linear (one run
  // of layers per device), interleaved (2 x devices chunks, chunk c on device c % devices),
  // zigzag (2 x devices chunks, chunk c on device c or 2 x devices - 1 - c; the two middle
  // chunks merge into one stage).
  std::vector<std::string> layouts = {"linear", "interleaved", "zigzag"};
  bool permutation_search = true;
  int max_in_flight = 0;
  uint64_t seed = 1;
};

struct MicroBatch {
  std::vector<int64_t> samples;  // indices into the data set
  MicroBatchShape shape;
  double time_ms = 0;  // bottleneck stage forward + backward
  int64_t real_tokens = 0;
};

struct ReplicaPlan {
  std::vector<int> order;  // indices into BatchPlan::microbatches, in execution order
  std::string schedule;
  SimResult sim;
  std::vector<RankPlan> ranks;
};

struct BatchPlan {
  std::string layout;  // linear | interleaved | zigzag
  PipelineSpec spec;   // the layout's stages -> devices, state and memory limits
  std::vector<MicroBatch> microbatches;
  Recompute recompute = Recompute::none;
  std::string memory_limit;  // "preferred" (available / stages per micro-batch) or "available"
  Partition partition;
  std::vector<ReplicaPlan> replicas;
  double makespan_ms = 0;  // slowest replica
  double peak_mb = 0;      // highest device peak, model state included
  double planning_ms = 0;
  int64_t real_tokens = 0;
  int64_t padded_tokens = 0;
};

// The padded shape of samples ids[begin, end).
MicroBatchShape shape_of(const ModelSpec& model, const std::vector<SampleLength>& samples,
                         const int64_t* begin, const int64_t* end, int round_multiple, int decoder_offset);
int64_t round_up(int64_t x, int64_t multiple);

// One pipeline (linear assignment) of the cost model, with per-device state and limits.
PipelineSpec pipeline_spec(const CostModel& cost);
MicroBatchWork work_of(const CostModel& cost, const MicroBatchShape& shape, Recompute rc);
double microbatch_time(const CostModel& cost, const MicroBatchShape& shape, Recompute rc);

// A layout of the model's layers on the pipeline's devices (PlannerOptions::layouts):
// ranges[v] are the layers [first, last) of virtual stage v.
struct PipelineLayout {
  std::string name;
  PipelineSpec spec;
  std::vector<std::pair<int, int>> ranges;
};
// std::invalid_argument when the model has fewer layers than the layout's chunks.
PipelineLayout make_layout(const CostModel& cost, const std::string& name);
MicroBatchWork work_of(const CostModel& cost, const PipelineLayout& layout, const MicroBatchShape& shape, Recompute rc);

// Karmarkar-Karp k-way largest differencing: groups of indices with balanced cost sums.
std::vector<std::vector<int>> karmarkar_karp(const std::vector<double>& costs, int k);

// Thrown by plan_batch when a sample does not fit in device memory even alone under any
// recomputation mode; `sample` is its index in the data set (callers add file:line).
class SampleTooLarge : public core::InputError {
 public:
  SampleTooLarge(int64_t s, const std::string& what) : core::InputError(what), sample(s) {}
  int64_t sample = 0;
};

// core::ConfigError (naming cluster.device_memory_mb, the state and the stage) when the
// model state alone leaves no memory for activations on some stage.
void check_model_state_fits(const CostModel& cost);

// Plans one global batch (`ids` into `samples`). Throws check_model_state_fits's
// ConfigError, SampleTooLarge, or core::InputError when no setting keeps the peak memory
// within the device. With data parallelism, a batch that yields fewer micro-batches than
// replicas leaves the extra replicas idle (schedule "idle", no instructions); the DP's
// objective divides the work by the replica count and does not force extra splits.
BatchPlan plan_batch(const CostModel& cost, const std::vector<SampleLength>& samples, const std::vector<int64_t>& ids,
                     const PlannerOptions& opt, bool record_timeline = false);

}  // namespace mlsys::plan
