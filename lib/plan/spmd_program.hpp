// HAP's distributed instruction set (arXiv 2401.05965 §4; notes planners.md §1.2): the
// properties Identity / Gather(d) / Reduce of a tensor, the compute signatures of every op
// kind (pre- and post-conditions), the collectives that turn one property into another
// with their gradient duals (Identity <-> Reduce, Gather(d) <-> Gather(d)), the cost terms
// of each instruction (§1.3, bytes everywhere, with the collective choices of §1.7), the
// memory model, and a synthesized program with its per-rank form. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.hpp"
#include "plan/spmd_cluster.hpp"
#include "plan/spmd_graph.hpp"

namespace mlsys::plan {

// The property of one tensor on the devices: I (every device holds all of it), R (every
// device holds a full-shape partial; their sum is the tensor), G(d) (device i holds its
// slice of dim d; the concatenation is the tensor).
struct Prop {
  enum Kind : uint8_t { I = 0, R = 1, G = 2 } kind = I;
  int8_t dim = 0;
  [[nodiscard]] uint32_t bit() const { return 1u << (kind == G ? 2 + dim : kind); }
  [[nodiscard]] std::string str() const;
  bool operator==(const Prop&) const = default;
  static Prop gather(int d) { return {G, static_cast<int8_t>(d)}; }
};
// "I", "R", "G(2)"; core::InputError naming `where` otherwise.
Prop parse_prop(const std::string& s, const std::string& where);
// The property of the gradient (§1.2 duality): I <-> R, G(d) <-> G(d).
Prop gradient_prop(Prop p);

// A compute signature of an op: the input properties it needs (pre) and the output property
// it gives (post). Work: rep_flops on every device plus split_flops divided by the shard of
// inputs[split_input] along split_dim.
struct Signature {
  std::vector<Prop> in;
  Prop out;
  int split_input = -1;
  int split_dim = -1;
  double rep_flops = 0;
  double split_flops = 0;
  bool batch_split_linear = false;  // a linear with x sharded on a non-last dim: SFB may apply
};
// Every signature of `op`, the all-Identity one first (notes §1.2 per-op rules).
std::vector<Signature> signatures(const SpmdGraph& g, const SpmdOp& op);

// A collective (or free re-labelling) that makes property `to` of a tensor from `from`.
enum class ConvKind { all_gather, reduce_scatter, all_reduce, rs_ag, all_to_all, slice, pad, mask };
enum class Variant { padded, grouped };
struct Conversion {
  ConvKind kind = ConvKind::all_gather;
  Prop from, to;
  Variant variant = Variant::padded;
  int dim = 0;  // the dim rs_ag scatters over
};
std::string to_string(ConvKind k);
std::string to_string(Variant v);
// The ways to make `to` from `from` for tensor `t` (empty: none). Both variants of
// all-gather and reduce-scatter are listed (padded collective vs grouped broadcast/reduce),
// and for R -> I both all-reduce and reduce-scatter + all-gather.
std::vector<Conversion> conversions(const SpmdTensor& t, Prop from, Prop to);

// One additive cost or memory term; on device i with fraction x_i of the split dim:
//   value_i = c_uniform + c_per_flops / flops_i + (l_uniform + l_per_flops / flops_i) * x_i
// Seconds for time terms (compute terms use flops, communication terms bandwidths), bytes
// for memory terms. The program's time is the sum over terms of the max over devices (HAP
// §1.3: every instruction waits for its slowest device).
struct CostTerm {
  double c_uniform = 0, c_per_flops = 0, l_uniform = 0, l_per_flops = 0;
  int64_t split_len = 0, split_granule = 1;  // the dim whose shard fraction x_i is (0: none)
  bool comm = false;
  [[nodiscard]] double at(double x, double flops) const {
    return c_uniform + c_per_flops / flops + (l_uniform + l_per_flops / flops) * x;
  }
};

// How the input of a step is made available.
struct InputUse {
  enum Source : uint8_t { existing, converted, placeholder, parameter } source = existing;
  Prop prop;
  Conversion conv;   // converted
  enum Grad : uint8_t { none, all_reduce, sfb } grad = none;  // parameter: how its gradient is completed
  Variant sfb_variant = Variant::padded;
};
// One search step (HAP's fused triple): materialize the inputs, then compute the op.
struct Step {
  int op = -1;
  int sig = 0;
  std::vector<InputUse> inputs;
  Prop out;
};
struct Program {
  std::vector<Step> steps;
};

// The costs of the model: options of the memory model and of the compute cost.
struct CostOptions {
  double backward_factor = 2.0;        // backward FLOPs = factor x forward (HAP)
  double optimizer_bytes_per_param_byte = 2.0;  // Adam: two moments
  double activation_factor = 1.0;      // bytes kept for backward per output byte
  double memory_fraction = 0.9;        // of each device's memory the plan may use
};

class SpmdCostModel {
 public:
  SpmdCostModel(const SpmdGraph& g, const SpmdCluster& c, CostOptions o = {});
  [[nodiscard]] const SpmdGraph& graph() const { return g_; }
  [[nodiscard]] const SpmdCluster& cluster() const { return c_; }
  [[nodiscard]] const CostOptions& options() const { return o_; }
  [[nodiscard]] int devices() const { return c_.size(); }

  // Terms of each part of a step (forward + backward, collectives with their duals).
  void compute_terms(const SpmdOp& op, const Signature& s, std::vector<CostTerm>& out) const;
  void conversion_terms(const SpmdTensor& t, const Conversion& cv, std::vector<CostTerm>& out) const;
  // The gradient completion of a parameter used with Identity: all-reduce of its gradient,
  // or SFB (all-gather x and dy of a batch-sharded linear, recompute dW locally).
  void param_terms(const SpmdOp& op, const Signature& s, int input, const InputUse& use, std::vector<CostTerm>& out) const;
  void step_terms(const Step& st, std::vector<CostTerm>& out) const;
  void memory_terms(const Step& st, std::vector<CostTerm>& out) const;

  // max over devices of the term at fractions `ratios` (one ratio vector, HAP's default
  // single segment), or at the rounded shard lengths when `rounded`.
  [[nodiscard]] double term_max(const CostTerm& t, const std::vector<double>& ratios, bool rounded = false) const;
  [[nodiscard]] double fraction(const CostTerm& t, const std::vector<double>& ratios, int device, bool rounded) const;

 private:
  const SpmdGraph& g_;
  const SpmdCluster& c_;
  CostOptions o_;
};

// Shard lengths of a dim of length `len` in units of `granule`: floor(ratio * units), then
// one more unit to the devices with the largest remainder until they sum up (§1.6).
std::vector<int64_t> shard_lengths(int64_t len, int64_t granule, const std::vector<double>& ratios);

// The predicted iteration: per device compute and communication seconds, the program time
// (sum over instructions of the slowest device) and memory per device.
struct Prediction {
  double iteration_s = 0;
  double compute_s = 0, comm_s = 0;  // the program time split into its compute and communication terms
  std::vector<double> device_compute_s, device_comm_s, device_memory_bytes;
  bool fits_memory = true;
  int over_memory_device = -1;
};
Prediction predict(const SpmdCostModel& m, const Program& p, const std::vector<double>& ratios, bool rounded);

// JSON of the global program and of the per-rank programs (instructions with shard ranges
// and collectives), and a readable listing.
core::Json program_to_json(const SpmdCostModel& m, const Program& p);
Program program_from_json(const SpmdGraph& g, const core::Json& j, const std::string& source);
core::Json rank_programs(const SpmdCostModel& m, const Program& p, const std::vector<double>& ratios);
std::string program_listing(const SpmdCostModel& m, const Program& p, const std::vector<double>& ratios);

}  // namespace mlsys::plan
