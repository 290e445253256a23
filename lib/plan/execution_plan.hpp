// Per-rank execution plans (DynaPipe, arXiv 2311.10418: "communication planning"): instruction lists
// in DeepSpeed's pipe-engine vocabulary derived from a simulated schedule, and a deadlock
// check that matches every send with its receive (peer, micro-batch, kind, shape) and
// replays the ranks with blocking Finish instructions.
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
};

struct RankPlan {
  int rank = 0;
  std::vector<int> stages;  // virtual stages this rank holds
  std::vector<Instruction> instructions;
  int max_live_buffers = 0;  // activation buffers alive at once
};

// Builds the plans from the compute order actually replayed (`schedule`). Receives are
// posted just before their consumer, activation sends are finished before the matching
// backward on the sender, gradient sends at the end.
std::vector<RankPlan> build_execution_plans(const PipelineSpec& spec, const Schedule& schedule,
                                            const std::vector<std::vector<int64_t>>& shapes);

// Empty when every send has its receive with the same shape, every (sender, receiver) pair
// sees the same sequence on both sides, and the ranks finish under blocking Finish
// semantics; otherwise says what is wrong ("deadlock: rank 1 waits at ...").
std::string check_deadlock(const std::vector<RankPlan>& plans);

nlohmann::json to_json(const Instruction& ins);
nlohmann::json to_json(const RankPlan& plan);

}  // namespace mlsys::plan
