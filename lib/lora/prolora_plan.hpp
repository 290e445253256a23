// prolora-finetune plan: the Linear shapes of a model from its config.json alone (no
// weights: a LLaMA2-7B config suffices), PRoLoRA and LoRA parameter counts over them, and
// the (r, u, m, n) configurations that fit a parameter budget.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mlsys::lora {

struct LinearShape {
  std::string name;  // the Hugging Face module path, as the model's linear_names()
  int64_t d_in = 0, d_out = 0;
};

// The model's Linears in linear_names() order, from DIR/config.json (bert, roberta, llama;
// the sequence classifier's output layer has d_out 0: its label count is not in the
// config) and the name of the output layer "all-linear" leaves out. core::InputError
// naming the file for a missing or unsupported config.
struct ModelLinears {
  std::vector<LinearShape> linears;
  std::string output_layer;
  std::string model_type;
};
[[nodiscard]] ModelLinears model_linears(const std::filesystem::path& folder);

// Trainable adapter parameters over the `targets` (PEFT selection rules) of `model`:
// PRoLoRA (r, u, m, n) with the ceilings of §3.5, and LoRA at rank r.
struct PlanCount {
  int64_t r = 0, u = 0, m = 1, n = 1;
  int64_t parameters = 0;
  int64_t lora_parameters = 0;  // LoRA at the same r
};
[[nodiscard]] PlanCount count_parameters(const std::vector<LinearShape>& targets, int64_t r, int64_t u, int64_t m,
                                         int64_t n);

// For each rank in `ranks`, the configuration with the most parameters within `budget`
// (u from 0 to r, m and n from `rates` no larger than every target's width; ties: the
// larger u, then the smaller m + n), highest rank first; ranks where nothing fits are left
// out; u is at least min_u. A row with u = r (or m = n = 1) is plain LoRA.
[[nodiscard]] std::vector<PlanCount> plan_budget(const std::vector<LinearShape>& targets, int64_t budget,
                                                 const std::vector<int64_t>& ranks, const std::vector<int64_t>& rates,
                                                 int64_t min_u = 0);

}  // namespace mlsys::lora
