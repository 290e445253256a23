// A user's own per-micro-batch, per-layer cost table for the pipeline simulator (the input
// of `dynapipe-plan simulate` with simulate.workload=cost_table; format in
// man/dynapipe-plan.1.scd), and its reduction to virtual stages: consecutive layers on
// one device merge into one stage as in DynaPipe's SchedulerMinibatchSpec._merge_layers.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plan/schedules.hpp"
#include "plan/simulator.hpp"

namespace mlsys::plan {

// One micro-batch: per layer (L of them) and per layer boundary (L - 1: the output of
// layer l going to layer l + 1, and its gradient coming back).
struct LayerCosts {
  std::vector<double> fw_ms, bw_ms, stored_mb, peak_mb;
  std::vector<double> activation_mb, gradient_mb;
};

// The cluster as the reference describes it: devices on nodes, intra- and inter-node links
// (t = latency + MB * 8 / 1e3 / Gbps seconds), a memory limit per device.
struct CostTableCluster {
  std::vector<int> device_node;  // per device; empty: every device on its own node
  double bandwidth_gbps = 100.0, latency_us = 0.0;              // between devices of one node
  double inter_bandwidth_gbps = 100.0, inter_latency_us = 0.0;  // between nodes
  std::vector<double> memory_limit_mb;                          // per device (empty: none)
  [[nodiscard]] double transfer_ms(int from, int to, double mb) const;
};

struct CostTable {
  std::vector<int> device_assignment;  // layer -> device (every device 0..D-1 used)
  std::vector<double> model_state_mb;  // per layer
  std::vector<LayerCosts> microbatches;
  CostTableCluster cluster;
  std::string schedule = "wait-free-cyclic";  // 1f1b | interleaved-1f1b | wait-free-cyclic
  BackwardPeak backward_peak = BackwardPeak::reference;
  int max_in_flight = 0;
  [[nodiscard]] int devices() const;
};

// The table from JSON; a bad field is a core::InputError "<source>: <field>: expected ...,
// found ..." (exit 3).
CostTable parse_cost_table(const nlohmann::json& j, const std::string& source);
CostTable read_cost_table(const std::filesystem::path& path);

// The virtual stages of the table: stage_layers[v] are the layers of stage v. Merged
// stage costs: times and stored activation add up, the peak is the highest of (stored
// activation of the stage's earlier layers + the layer's peak), model state adds up on the
// device, and the transfer after a stage is that of its last layer.
struct StagedPipeline {
  PipelineSpec spec;
  std::vector<MicroBatchWork> work;
  std::vector<std::vector<int>> stage_layers;
};
StagedPipeline merge_layers(const CostTable& table);

// The schedule of the table's name for a staged pipeline; core::InputError naming
// `source` and the field "schedule" when the layout does not allow it (1F1B needs a linear
// layout, interleaved 1F1B an interleaved one with a multiple of the devices in
// micro-batches).
Schedule table_schedule(const CostTable& table, const StagedPipeline& p, const std::string& source);

// The notes' uniform case (planners.md §2.6) as a cost table: 8 micro-batches x 8 layers
// on 4 devices (each its own node, 100 Gb/s, no latency), fw = bw = 1 ms per layer, 1.25 MB
// sent per boundary, stored / peak activation 1000 / 2000 MB per layer, no model state,
// no memory limit.
CostTable uniform_cost_table(const std::vector<int>& device_assignment, const std::string& schedule);
// The same table as the JSON text the user would write (tests feed it through the parser).
nlohmann::json to_json(const CostTable& table);

}  // namespace mlsys::plan
