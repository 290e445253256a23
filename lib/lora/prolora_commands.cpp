// prolora-finetune's subcommands: the shared finetune flow with PRoLoRA adapters
// (finetune_commands.cpp) and plan (parameter budgets from a model's config.json).
#include "lora/prolora_commands.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/report.hpp"
#include "lora/adapter_kind.hpp"
#include "lora/finetune_commands.hpp"
#include "lora/finetune_config.hpp"
#include "lora/prolora_plan.hpp"

namespace mlsys::lora {

int prolora_train(const core::CommonOptions& opts) { return run_train(opts, prolora_kind()); }
int prolora_eval(const core::CommonOptions& opts) { return run_eval(opts, prolora_kind()); }
int prolora_predict(const core::CommonOptions& opts) { return run_predict(opts, prolora_kind()); }
int prolora_merge(const core::CommonOptions& opts) { return run_merge(opts, prolora_kind()); }
int prolora_export(const core::CommonOptions& opts) { return run_export(opts, prolora_kind()); }
int prolora_convert(const core::CommonOptions& opts) { return run_convert(opts, prolora_kind()); }
int prolora_bench(const core::CommonOptions& opts) { return run_bench(opts, prolora_kind()); }

namespace {

std::string variant_of(const PlanCount& p) {
  if (p.u == p.r || (p.m == 1 && p.n == 1)) return "LoRA";
  return p.u == 0 ? "RoLoRA" : "PRoLoRA";
}

nlohmann::json plan_json(const PlanCount& p, int64_t budget) {
  return {{"r", p.r},
          {"u", p.u},
          {"m", p.m},
          {"n", p.n},
          {"variant", variant_of(p)},
          {"parameters", p.parameters},
          {"lora_parameters", p.lora_parameters},
          {"of_budget", budget > 0 ? static_cast<double>(p.parameters) / static_cast<double>(budget) : 0.0},
          {"ratio_to_lora", static_cast<double>(p.parameters) / static_cast<double>(std::max<int64_t>(p.lora_parameters, 1))}};
}

}  // namespace

int prolora_plan(const core::CommonOptions& opts) {
  const FinetuneConfig c = read_finetune_config(core::load_config(opts), prolora_kind());
  const ModelLinears ml = model_linears(c.model.path);
  std::vector<std::string> names;
  for (const auto& l : ml.linears) names.push_back(l.name);
  std::vector<std::string> targets = c.lora.targets;
  if (!c.lora_targets_given && ml.model_type == "llama") targets = {"q_proj", "v_proj"};  // as train does
  std::vector<LinearShape> chosen;
  for (const auto& name : resolve_targets(names, targets, ml.output_layer)) {
    const auto it = std::find_if(ml.linears.begin(), ml.linears.end(), [&](const LinearShape& l) { return l.name == name; });
    if (it->d_out == 0) {
      throw core::ConfigError("key 'lora.targets': plan cannot count '" + name +
                              "' (the classifier's size is the label count, not in config.json)");
    }
    chosen.push_back(*it);
  }
  const PlanCount configured = count_parameters(chosen, c.lora.r, c.prolora.u, c.prolora.m, c.prolora.n);
  const int64_t budget = c.plan.budget > 0 ? c.plan.budget : configured.lora_parameters;
  std::vector<PlanCount> plans = plan_budget(chosen, budget, c.plan.ranks, c.plan.rates, c.plan.min_u);
  if (static_cast<int64_t>(plans.size()) > c.plan.top) plans.resize(static_cast<size_t>(c.plan.top));

  nlohmann::json rows = nlohmann::json::array();
  std::vector<std::vector<std::string>> table = {
      {"r", "u", "m", "n", "variant", "parameters", "of budget", "LoRA same r", "vs LoRA"}};
  for (const auto& p : plans) {
    rows.push_back(plan_json(p, budget));
    table.push_back({std::to_string(p.r), std::to_string(p.u), std::to_string(p.m), std::to_string(p.n), variant_of(p),
                     std::to_string(p.parameters), core::fixed(rows.back()["of_budget"].get<double>(), 3),
                     std::to_string(p.lora_parameters), core::fixed(rows.back()["ratio_to_lora"].get<double>(), 3)});
  }
  const nlohmann::json summary = {{"model", c.model.path},
                                  {"model_type", ml.model_type},
                                  {"modules", chosen.size()},
                                  {"budget", budget},
                                  {"configured", plan_json(configured, budget)},
                                  {"plans", rows}};
  std::string text = "model " + c.model.path + " (" + ml.model_type + "), " + std::to_string(chosen.size()) +
                     " target modules\nconfigured r=" + std::to_string(configured.r) + ", u=" +
                     std::to_string(configured.u) + ", m=" + std::to_string(configured.m) + ", n=" +
                     std::to_string(configured.n) + ": " + std::to_string(configured.parameters) +
                     " trainable adapter parameters (LoRA r=" + std::to_string(configured.r) + ": " +
                     std::to_string(configured.lora_parameters) + ", ratio " +
                     core::fixed(summary["configured"]["ratio_to_lora"].get<double>(), 3) + ")\nbudget " +
                     std::to_string(budget) + (c.plan.budget > 0 ? "" : " (LoRA at lora.r)") +
                     ": the most parameters within it at each rank\n";
  if (plans.empty()) {
    text += "no configuration fits the budget\n";
  } else {
    text += core::format_table(table);
  }
  core::emit_result(opts, summary, text);
  return 0;
}

}  // namespace mlsys::lora
