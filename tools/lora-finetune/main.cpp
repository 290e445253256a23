// lora-finetune: LoRA finetuning of real transformer checkpoints with the unified dropout
// framework and HiddenKey (arXiv 2403.00812). CLI only: each subcommand calls one function
// of lib/lora.
#include "core/cli.hpp"
#include "lora/finetune_commands.hpp"
#include "tensor/threads.hpp"

int main(int argc, char** argv) {
  using namespace mlsys;
  return core::run_program(
      "lora-finetune",
      "LoRA finetuning of real checkpoints with the unified dropout framework and HiddenKey\n"
      "(LoRA Meets Dropout under a Unified Framework, arXiv 2403.00812)",
      {
          {"train", "finetune LoRA adapters; keep the best by validation accuracy in OUT/adapter.h5, metrics in OUT/metrics.h5",
           lora::finetune_train,
           {{"resume", "continue the run saved in OUT/checkpoint.h5 (same config; bit-for-bit with the same threads and device)"},
            {"force", "start afresh even where OUT/checkpoint.h5 holds an unfinished run (it is replaced)"}}},
          {"eval", "accuracy and loss (causal LM: loss, perplexity, token accuracy) of an adapter on data.test; write OUT/eval.json",
           lora::finetune_eval},
          {"predict", "labels and probabilities (causal LM: greedy continuations) for data.predict (or data.test); write OUT/predictions.jsonl",
           lora::finetune_predict},
          {"merge", "merge the adapter into the base weights; write a Hugging Face folder OUT/merged",
           lora::finetune_merge},
          {"export", "write the adapter in the PEFT layout to OUT/peft", lora::finetune_export},
          {"convert", "convert a llama2.c .bin checkpoint (convert.input) into a Hugging Face LLaMA folder OUT",
           lora::finetune_convert},
          {"bench", "time LoRA training steps on one fixed batch of real tokens; print JSON (tokens/s, peak RSS)",
           lora::finetune_bench, {}, false},
          {"tokenize", "ids and pieces of model.path's tokenizer for each line of tokenize.input (a file, or - for stdin), as a table or JSONL",
           lora::finetune_tokenize, {}, false,
           {{"input", "tokenize.input", "text file, one text a line (- = standard input)"},
            {"format", "tokenize.format", "table | jsonl (--json: jsonl)"}}},
      },
      argc, argv, tensor::thread_control());
}
