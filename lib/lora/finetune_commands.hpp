// The finetune subcommands shared by lora-finetune and prolora-finetune, one function each,
// parameterised by the AdapterKind (LoRA or PRoLoRA): train, eval, predict, merge, export,
// convert, bench. Each returns the exit code; errors are thrown as core::Error and reported
// once by core::run_main. The finetune_* functions are lora-finetune's (LoRA adapters).
#pragma once

#include "core/cli.hpp"

namespace mlsys::lora {

class AdapterKind;

// Finetuning with the unified dropout framework; keeps the best adapter by validation
// accuracy in OUT/adapter.h5, writes OUT/metrics.h5, prints the evaluation table.
int run_train(const core::CommonOptions& opts, const AdapterKind& kind);
// Accuracy and loss of an adapter on data.test; writes OUT/eval.json.
int run_eval(const core::CommonOptions& opts, const AdapterKind& kind);
// Labels and probabilities for data.predict (or data.test); writes OUT/predictions.jsonl.
int run_predict(const core::CommonOptions& opts, const AdapterKind& kind);
// Merges the adapter into the base weights; writes a Hugging Face folder OUT/merged.
int run_merge(const core::CommonOptions& opts, const AdapterKind& kind);
// Writes the adapter (materialised as LoRA) in the PEFT layout to OUT/peft
// (adapter_config.json + adapter_model.safetensors).
int run_export(const core::CommonOptions& opts, const AdapterKind& kind);
// Converts the llama2.c checkpoint convert.input into a Hugging Face LLaMA folder OUT
// (config.json + model.safetensors, q/k rows permuted to rotate-half; convert.tokenizer,
// when given, is copied in as tokenizer.model).
int run_convert(const core::CommonOptions& opts, const AdapterKind& kind);
// Times bench.steps training steps (after bench.warmup untimed ones) on one fixed batch
// of train.batch_size rows × bench.length real tokens from data.train; prints JSON
// (step seconds, tokens/s, peak RSS).
int run_bench(const core::CommonOptions& opts, const AdapterKind& kind);
// The ids (special tokens included, no truncation) and pieces of model.path's tokenizer for
// each line of tokenize.input (a UTF-8 file or - for standard input), as JSONL (--json or
// tokenize.format jsonl) or a table, on stdout. No adapter and no model weights involved.
int run_tokenize(const core::CommonOptions& opts);

// lora-finetune: the functions above with LoRA adapters.
int finetune_train(const core::CommonOptions& opts);
int finetune_eval(const core::CommonOptions& opts);
int finetune_predict(const core::CommonOptions& opts);
int finetune_merge(const core::CommonOptions& opts);
int finetune_export(const core::CommonOptions& opts);
int finetune_convert(const core::CommonOptions& opts);
int finetune_bench(const core::CommonOptions& opts);
int finetune_tokenize(const core::CommonOptions& opts);

}  // namespace mlsys::lora
