// PRoLoRA adapters (Wang et al., "PRoLoRA: Partial Rotation Empowers More
// Parameter-Efficient LoRA", arXiv 2402.16902; method notes research/lora.md §3): the
// R = r−u shared ranks of A (B) are one chunk A0 [R, c_A] (B0 [c_B, R]) broadcast m (n)
// times along d_in (d_out), chunk k rolled along the rank axis by k·s; u ranks stay
// unshared (A_u [u, d_in], and B_u [d_out, u] in LoRA's orientation, so that u = r is LoRA's
// A and B exactly). ΔW = s·B_full·A_full with s = α/r (rsLoRA α/√r).
// The forward pass works chunk by chunk with index gathers (no A_full/B_full per step);
// the materialised form serves merge, PEFT export and the benchmark's comparison.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "core/h5.hpp"
#include "lora/lora.hpp"
#include "nn/linear_adapter.hpp"
#include "nn/model.hpp"

namespace mlsys::lora {

// How an adapter computes its delta: chunked (A0 applied per chunk of x, the rolled chunks
// recombined by an index gather of the activations; the same for B0) or materialized
// (A_full and B_full built by index gathers of the weights every call, then two matmuls as
// in LoRA). Both give the same ΔW·x. Materialized is the default: it was the faster in
// bench/prolora/step.sh (1.04x LoRA's step against 1.10x for chunked, all-linear r=8):
// gathering the weights moves r·(d_in + d_out) numbers per step, gathering activations
// m·R + n·R per token, and a training batch has thousands of tokens.
enum class ProloraForward { chunked, materialized };

// The PRoLoRA settings beyond LoRA's (rank, α, targets, dropout come from LoraConfig).
struct ProloraConfig {
  std::string variant = "prolora";  // prolora | rolora (u = 0) | clora (u = 0, no rotation)
  int64_t u = 1;                    // unshared ranks (0 <= u <= r)
  int64_t m = 2;                    // sharing rate of A: chunks along d_in
  int64_t n = 2;                    // sharing rate of B: chunks along d_out
  bool rotation = true;             // chunk k rolled by k·s along the rank axis (off: CLoRA)
  bool rectified_init = true;       // A0 ~ U(±1/√d_in) (the full width), not U(±1/√c_A)
  ProloraForward forward = ProloraForward::materialized;
};

// The shape of one adapted Linear and the settings that fix its PRoLoRA layout.
struct ProloraLayout {
  int64_t d_in = 0, d_out = 0;
  int64_t r = 0, u = 0, m = 1, n = 1;
  int64_t stride_a = 1, stride_b = 1;  // s_A, s_B: the roll of chunk k is k·s (0 without rotation)
  [[nodiscard]] int64_t shared() const { return r - u; }               // R
  [[nodiscard]] int64_t chunk_a() const { return (d_in + m - 1) / m; }   // c_A = ⌈d_in/m⌉
  [[nodiscard]] int64_t chunk_b() const { return (d_out + n - 1) / n; }  // c_B = ⌈d_out/n⌉
  // Trainable parameters: R(c_A + c_B) + u(d_in + d_out) (§3.5).
  [[nodiscard]] int64_t parameters() const;
};

// The layout of a d_out × d_in Linear under (r, u, m, n, rotation): the default strides
// s_A = max(⌊R/m⌋, 1), s_B = max(⌊R/n⌋, 1) with rotation, 0 without.
[[nodiscard]] ProloraLayout prolora_layout(int64_t d_in, int64_t d_out, int64_t r, int64_t u, int64_t m, int64_t n,
                                           bool rotation);
// LoRA's trainable parameters on the same Linear: r(d_in + d_out).
[[nodiscard]] int64_t lora_parameters(int64_t d_in, int64_t d_out, int64_t r);

// The rank index of the shared chunk that chunk k of A (B) holds in rank row i:
// A_full[i, k·c_A + j] = A0[(i + k·s_A) mod R, j], B_full[k·c_B + j, i] = B0[j, (i + k·s_B) mod R].
[[nodiscard]] int64_t rolled_rank(int64_t i, int64_t k, int64_t stride, int64_t R);

// A_full [r, d_in] and B_full [d_out, r] of §3.3 (shared ranks first, unshared last:
// A_full[R+t, :] = A_u[t, :], B_full[:, R+t] = B_u[:, t]).
[[nodiscard]] at::Tensor materialize_a(const at::Tensor& a0, const at::Tensor& a_u, const ProloraLayout& l);
[[nodiscard]] at::Tensor materialize_b(const at::Tensor& b0, const at::Tensor& b_u, const ProloraLayout& l);

class ProloraAdapter : public nn::LinearAdapter {
 public:
  // a0 [R, c_A], b0 [c_B, R], a_u [u, d_in], b_u [d_out, u] (R or u may be 0).
  ProloraAdapter(at::Tensor a0, at::Tensor b0, at::Tensor a_u, at::Tensor b_u, ProloraLayout layout, double scale,
                 double input_dropout, ProloraForward forward);
  [[nodiscard]] at::Tensor delta(const at::Tensor& x, bool training) const override;
  // s·B_full·A_full [d_out, d_in].
  [[nodiscard]] at::Tensor delta_weight() const;
  // Moves the index tensors to `device` (the parameters are moved by their owner).
  void to(const c10::Device& device);

  at::Tensor A0, B0, A_u, B_u;  // leaves with requires_grad when trainable
  ProloraLayout layout;
  double scale;
  double input_dropout;
  ProloraForward forward;
  bool merged = false;

 private:
  at::Tensor gather_a_, gather_b_;  // flat rank indices of the chunked forward ([m·R], [n·R])
};

// The adapters attached to one model, by Linear module path.
struct ProloraSet {
  LoraConfig lora;
  ProloraConfig cfg;
  std::map<std::string, std::shared_ptr<ProloraAdapter>> adapters;
};

// Freshly initialised adapters (seeded) on the Linears lora.targets selects (lora.hpp's
// resolve_targets); base weights frozen. A0 and A_u ~ U(±1/√d_in) (rectified; without it A0
// ~ U(±1/√c_A), nn.Linear's default on the chunk), B0 = B_u = 0. core::ConfigError for u > r,
// or a sharing rate above a module's width.
ProloraSet attach_prolora(nn::TransformerModel& model, const LoraConfig& lora, const ProloraConfig& cfg, uint64_t seed);

// W ← W + s·B_full·A_full (core::ConfigError for a tied weight, as LoRA's merge).
void merge(nn::TransformerModel& model, ProloraSet& set);

// A trained PRoLoRA adapter in its compact form, with the head, labels, task type and
// targets of lora.hpp's AdapterState (`common`; its ab is empty).
struct ProloraState {
  LoraConfig lora;
  ProloraConfig cfg;
  struct Module {
    ProloraLayout layout;
    at::Tensor a0, b0, a_u, b_u;
  };
  std::map<std::string, Module> modules;
  AdapterState common;
};

[[nodiscard]] ProloraState prolora_state_of(const nn::TransformerModel& model, const ProloraSet& set,
                                            const std::vector<std::string>& labels, const std::string& base_model);
// Attaches `state` (shapes checked against the model: core::InputError naming `source`) and its head.
ProloraSet attach_prolora_state(nn::TransformerModel& model, const ProloraState& state, const std::string& source);
// The materialised LoRA form: A = A_full, B = B_full per module, r and α as configured.
[[nodiscard]] AdapterState prolora_as_lora(const ProloraState& state);

// HDF5, compact: /prolora/<module>/{A0,B0,A_u,B_u} (A0/B0 absent when R = 0, A_u/B_u when
// u = 0) and /prolora/<module>/layout = [d_in, d_out, r, u, m, n, stride_a, stride_b]; root attributes r, u, m, n, alpha, rslora, lora_dropout, variant,
// rotation, rectified_init, base_model, adapter = "prolora"; /targets, /labels, /task_type
// and /head as lora.hpp's adapter file (plus the artifact header).
void save_prolora_h5(const std::filesystem::path& path, const ProloraState& state, const core::ArtifactInfo& info);
// core::InputError naming the file and the module for a missing group, a shape that does not
// fit its attributes, strides out of [0, R], non-finite or non-float tensors.
[[nodiscard]] ProloraState load_prolora_h5(const std::filesystem::path& path);

}  // namespace mlsys::lora
