// prolora-finetune: finetuning of real transformer checkpoints with PRoLoRA adapters
// (broadcast reduction, rotation, partial sharing, rectified init; arXiv 2402.16902) on the
// same flow as lora-finetune. CLI only: each subcommand calls one function of lib/lora.
#include "core/cli.hpp"
#include "lora/prolora_commands.hpp"
#include "tensor/threads.hpp"

int main(int argc, char** argv) {
  using namespace mlsys;
  return core::run_program(
      "prolora-finetune",
      "PRoLoRA finetuning of real checkpoints: LoRA with shared, rotated chunks and a few unshared ranks\n"
      "(PRoLoRA: Partial Rotation Empowers More Parameter-Efficient LoRA, arXiv 2402.16902)",
      {
          {"train", "finetune PRoLoRA adapters; keep the best by validation accuracy in OUT/adapter.h5 (compact form), metrics in OUT/metrics.h5",
           lora::prolora_train,
           {{"resume", "continue the run saved in OUT/checkpoint.h5 (same config; bit-for-bit with the same threads and device)"},
            {"force", "start afresh even where OUT/checkpoint.h5 holds an unfinished run (it is replaced)"}}},
          {"eval", "accuracy and loss (causal LM: loss, perplexity, token accuracy) of an adapter on data.test; write OUT/eval.json",
           lora::prolora_eval},
          {"predict", "labels and probabilities (causal LM: greedy continuations) for data.predict (or data.test); write OUT/predictions.jsonl",
           lora::prolora_predict},
          {"merge", "merge the adapter into the base weights; write a Hugging Face folder OUT/merged",
           lora::prolora_merge},
          {"export", "write the adapter materialised as LoRA in the PEFT layout to OUT/peft", lora::prolora_export},
          {"convert", "convert a llama2.c .bin checkpoint (convert.input) into a Hugging Face LLaMA folder OUT",
           lora::prolora_convert},
          {"bench", "time PRoLoRA training steps on one fixed batch of real tokens; print JSON (tokens/s, peak RSS)",
           lora::prolora_bench, {}, false},
          {"plan", "the (r, u, m, n) configurations that fit a parameter budget on model.path (its config.json alone)",
           lora::prolora_plan, {}, false,
           {{"budget", "plan.budget", "trainable adapter parameters to fit (0 = LoRA's at lora.r)"}}},
      },
      argc, argv, tensor::thread_control());
}
