// Event-driven pipeline simulator (DynaPipe, arXiv 2311.10418). Each micro-batch is a chain
// F(0) .. F(V-1) B(V-1) .. B(0) over virtual stages, with a p2p transfer between
// consecutive stages on different devices. Every device has a compute executor that runs
// its ops in the order the schedule gives, and a communication executor that sends in the
// order transfers become ready (communication served first at equal times). Memory per
// device: model state, plus for each forward a peak of current + peak_act and then
// current += stored_act; a backward peaks at current + peak_act - stored_act and releases
// stored_act.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mlsys::plan {

struct PipelineSpec {
  int devices = 1;
  std::vector<int> stage_device;         // virtual stage -> device
  std::vector<double> state_mb;          // per device, resident before any activation
  std::vector<double> memory_limit_mb;   // per device (schedules that check memory)
  double link_latency_ms = 0.0;
  double link_mb_per_ms = 12.5;          // 100 Gb/s

  [[nodiscard]] int stages() const { return static_cast<int>(stage_device.size()); }
  [[nodiscard]] double p2p_ms(double mb) const { return mb <= 0 ? 0.0 : link_latency_ms + mb / link_mb_per_ms; }
};

// Per virtual stage costs of one micro-batch; send_mb[v] is the tensor from stage v to v+1
// (the gradient going back has the same size).
struct MicroBatchWork {
  std::vector<double> fw_ms, bw_ms, stored_mb, peak_mb, send_mb;
};

// A compute op: micro-batch `mb`, virtual stage `stage`, forward or backward.
struct PipeOp {
  int mb = 0;
  int stage = 0;
  bool backward = false;
  friend bool operator==(const PipeOp&, const PipeOp&) = default;
};

// The per-device compute order.
struct Schedule {
  std::string name;
  std::vector<std::vector<PipeOp>> order;  // [device] -> ops
};

struct OpTiming {
  PipeOp op;
  int device = 0;
  bool comm = false;  // a transfer: op is the producer, sent to the next op's device
  int peer = -1;
  double start = 0, end = 0;
};

struct SimResult {
  bool ok = false;          // false: the order deadlocks (an op waits on one never run)
  std::string error;
  double makespan_ms = 0;
  std::vector<double> peak_mb;  // per device, incl. model state
  std::vector<double> busy_ms;  // per device compute time
  std::vector<OpTiming> timeline;
  std::vector<std::vector<std::pair<double, double>>> memory;  // per device (time, MB) steps
  [[nodiscard]] double max_peak_mb() const;
};

SimResult simulate(const PipelineSpec& spec, const std::vector<MicroBatchWork>& mbs, const Schedule& schedule,
                   bool record_timeline = false);

// Checks that the schedule holds every op exactly once on its stage's device.
std::string validate_schedule(const PipelineSpec& spec, int n_mb, const Schedule& schedule);

// The uniform pipeline case on which the simulator and schedules are
// checked against the reference implementation (`dynapipe-plan simulate` with
// simulate.workload=uniform, and tests/plan/test_simulator.cpp).
struct UniformCase {
  PipelineSpec spec;
  std::vector<MicroBatchWork> work;  // one per micro-batch
};

// 8 micro-batches x 8 layers on 4 devices, layer l on device layer_device[l]: fw = bw = 1 ms
// per layer, a 1.25 MB p2p tensor at 100 Gb/s with no latency, stored / peak activation 1000
// / 2000 MB per layer, no model state, no memory limit. With merge_layers, consecutive
// layers on one device form one virtual stage (times and stored activation add up, peak =
// 2000 + 1000 (n - 1) for n layers); without it every layer is its own stage.
[[nodiscard]] UniformCase uniform_case(const std::vector<int>& layer_device, bool merge_layers = true);

}  // namespace mlsys::plan
