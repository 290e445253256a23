// Per-rank execution plans (DynaPipe, arXiv 2311.10418: "communication planning"): instruction lists
// in DeepSpeed's pipe-engine vocabulary derived from a simulated timeline, a deadlock check
// that matches every send with its receive (peer, micro-batch, kind, shape) and replays the
// ranks with blocking Finish instructions, and a timed instruction simulator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plan/simulator.hpp"

namespace mlsys::plan {

enum class InstrKind {
  load_input,
  forward,
  backward,
  send_activation_start,
  send_activation_finish,
  recv_activation_start,
  recv_activation_finish,
  send_grad_start,
  send_grad_finish,
  recv_grad_start,
  recv_grad_finish,
  free_buffer,
};
std::string to_string(InstrKind k);

struct Instruction {
  InstrKind kind;
  int mb = 0;
  int stage = 0;   // the virtual stage computed, or whose tensor is moved
  int peer = -1;   // the other rank of a transfer
  std::vector<int64_t> shape;  // [batch, enc_len, dec_len] of the tensor moved
  double ms = 0;               // forward/backward: compute time; send start: transfer time
};

struct RankPlan {
  int rank = 0;
  std::vector<int> stages;  // virtual stages this rank holds
  std::vector<Instruction> instructions;
  int max_live_buffers = 0;  // activation buffers alive at once
};

// Builds the plans from a simulated timeline (simulate(..., record_timeline = true) of
// `schedule`): each rank's instructions follow the order in which the simulator started
// its ops and transfers. A transfer posts SendStart on the sender and RecvStart on the
// receiver at the moment it starts (as the reference traces them), so both sides of a
// (sender, receiver) pair see the transfers in one order; RecvFinish comes just before
// the consumer, SendActivationFinish before the sender's backward of that stage,
// SendGradFinish at the end. Ordered by one global causal order, the plans of any layout
// and schedule pass check_deadlock. Throws std::invalid_argument when `timed` has no
// timeline.
std::vector<RankPlan> build_execution_plans(const PipelineSpec& spec, const SimResult& timed,
                                            const std::vector<std::vector<int64_t>>& shapes);

// Empty when every send has its receive with the same shape, every (sender, receiver) pair
// sees the same sequence on both sides, and the ranks finish under blocking Finish
// semantics; otherwise says what is wrong ("deadlock: rank 1 waits at ...").
std::string check_deadlock(const std::vector<RankPlan>& plans);

// Executes the plans in time, as a runtime with one compute stream and one send stream per
// rank would: compute instructions run in program order, each once its inputs arrived
// (RecvFinish: the matching transfer ended; SendActivationFinish: that transfer ended);
// SendStarts run in program order on the send stream, each once the op producing the tensor
// finished, taking `ms`. The k-th send from a rank to a peer meets the peer's k-th receive
// from it (a mismatch is reported). ok = false with a message naming the stuck rank and
// instruction when no stream can move (a deadlock).
struct PlanRun {
  bool ok = false;
  std::string error;
  double makespan_ms = 0;
  std::vector<double> finish_ms;  // per rank
};
PlanRun execute_plans(const std::vector<RankPlan>& plans);

nlohmann::json to_json(const Instruction& ins);
nlohmann::json to_json(const RankPlan& plan);

}  // namespace mlsys::plan
