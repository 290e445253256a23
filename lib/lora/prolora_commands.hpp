// The subcommands of prolora-finetune (tools/prolora-finetune/main.cpp only parses the
// command line): the shared finetune flow (finetune_commands.hpp) with PRoLoRA adapters,
// plus plan. Each returns the exit code; errors are core::Error, reported once by run_main.
#pragma once

#include "core/cli.hpp"

namespace mlsys::lora {

int prolora_train(const core::CommonOptions& opts);
int prolora_eval(const core::CommonOptions& opts);
int prolora_predict(const core::CommonOptions& opts);
int prolora_merge(const core::CommonOptions& opts);
int prolora_export(const core::CommonOptions& opts);
int prolora_convert(const core::CommonOptions& opts);
int prolora_bench(const core::CommonOptions& opts);
// The (r, u, m, n) configurations that fit plan.budget trainable adapter parameters on the
// targets of model.path (its config.json alone), one per rank, and the configured one's
// count against LoRA's; prints a table (or JSON), writes nothing.
int prolora_plan(const core::CommonOptions& opts);

}  // namespace mlsys::lora
