// Event-driven pipeline simulator (DynaPipe, arXiv 2311.10418). Each micro-batch is a chain
// F(0) .. F(V-1) B(V-1) .. B(0) over virtual stages, with a p2p transfer between
// consecutive stages on different devices. Every device has a compute executor that runs
// its ops in the order the schedule gives, and a communication executor that sends in the
// order the schedule gives for it (or, when the schedule gives none, in the order transfers
// become ready); communication is served first at equal times. Memory per device: model
// state, plus for each forward a peak of current + peak_act and then current += stored_act;
// a backward releases stored_act, and what it peaks at is PipelineSpec::backward_peak.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mlsys::plan {

// How the peak memory during a backward is counted. `reference`: as DynaPipe's simulator
// (schedule_common.py: "we don't count peak activations during backward pass"), a backward
// peaks at the memory it finds (current, before its stored activation is released).
// `working_set`: a backward peaks at current + peak_act - stored_act (its stored activation
// plus the transient working set of the stage, which is then released).
enum class BackwardPeak { reference, working_set };

struct PipelineSpec {
  int devices = 1;
  std::vector<int> stage_device;         // virtual stage -> device
  std::vector<double> state_mb;          // per device, resident before any activation
  std::vector<double> memory_limit_mb;   // per device (schedules that check memory)
  double link_latency_ms = 0.0;
  double link_mb_per_ms = 12.5;          // 100 Gb/s
  BackwardPeak backward_peak = BackwardPeak::reference;

  [[nodiscard]] int stages() const { return static_cast<int>(stage_device.size()); }
  [[nodiscard]] double p2p_ms(double mb) const { return mb <= 0 ? 0.0 : link_latency_ms + mb / link_mb_per_ms; }
};

// Per virtual stage costs of one micro-batch; send_mb[v] is the tensor from stage v to v+1
// (the gradient going back has the same size). When fw_comm_ms / bw_comm_ms are given (one
// per stage boundary v -> v+1, V - 1 of them), they are the transfer times of the
// activation (v to v+1) and of the gradient (v+1 back to v) instead of spec.p2p_ms(send_mb).
struct MicroBatchWork {
  std::vector<double> fw_ms, bw_ms, stored_mb, peak_mb, send_mb;
  std::vector<double> fw_comm_ms, bw_comm_ms;
};

// A compute op: micro-batch `mb`, virtual stage `stage`, forward or backward.
struct PipeOp {
  int mb = 0;
  int stage = 0;
  bool backward = false;
  friend bool operator==(const PipeOp&, const PipeOp&) = default;
};

// The per-device compute order, and optionally the per-device order of the transfers each
// device sends (named by the op whose output is sent: a forward sends its activation to the
// next stage, a backward its gradient to the previous one). An empty comm_order sends in the
// order transfers become ready; a given one is followed strictly (a transfer waits for the
// ones before it), as the reference replays its cyclic schedule's communication order.
struct Schedule {
  std::string name;
  std::vector<std::vector<PipeOp>> order;       // [device] -> ops
  std::vector<std::vector<PipeOp>> comm_order;  // [device] -> producing ops (empty: ready order)
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

// The transfer time of the output of `op` (forward: its activation to stage + 1, backward:
// its gradient to stage - 1); 0 when the next op runs on the same device or there is none.
double transfer_ms(const PipelineSpec& spec, const MicroBatchWork& w, const PipeOp& op);

// Checks that the schedule holds every op exactly once on its stage's device.
std::string validate_schedule(const PipelineSpec& spec, int n_mb, const Schedule& schedule);

}  // namespace mlsys::plan
