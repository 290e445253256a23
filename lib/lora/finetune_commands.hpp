// The subcommands of lora-finetune, one function each (tools/lora-finetune/main.cpp only
// parses the command line): train, eval, predict, merge, export, convert, bench. Each returns the exit
// code; errors are thrown as core::Error and reported once by core::run_main.
#pragma once

#include "core/cli.hpp"

namespace mlsys::lora {

// LoRA finetuning with the unified dropout framework; keeps the best adapter by validation
// accuracy in OUT/adapter.h5, writes OUT/metrics.h5, prints the evaluation table.
int finetune_train(const core::CommonOptions& opts);
// Accuracy and loss of an adapter on data.test; writes OUT/eval.json.
int finetune_eval(const core::CommonOptions& opts);
// Labels and probabilities for data.predict (or data.test); writes OUT/predictions.jsonl.
int finetune_predict(const core::CommonOptions& opts);
// Merges the adapter into the base weights; writes a Hugging Face folder OUT/merged.
int finetune_merge(const core::CommonOptions& opts);
// Writes the adapter in the PEFT layout to OUT/peft (adapter_config.json + adapter_model.safetensors).
int finetune_export(const core::CommonOptions& opts);
// Converts the llama2.c checkpoint convert.input into a Hugging Face LLaMA folder OUT
// (config.json + model.safetensors, q/k rows permuted to rotate-half; convert.tokenizer,
// when given, is copied in as tokenizer.model).
int finetune_convert(const core::CommonOptions& opts);
// Times bench.steps LoRA training steps (after bench.warmup untimed ones) on one fixed batch
// of train.batch_size rows × bench.length real tokens from data.train; prints JSON
// (step seconds, tokens/s, peak RSS).
int finetune_bench(const core::CommonOptions& opts);

}  // namespace mlsys::lora
