// The lora-finetune config: plain structs filled from the JSON config (+ --set overrides)
// in one place, with every value checked (core::ConfigError names the key).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/config.hpp"
#include "lora/lora.hpp"
#include "lora/prolora.hpp"
#include "lora/unified_dropout.hpp"

namespace mlsys::lora {

class AdapterKind;

struct FinetuneConfig {
  uint64_t seed = 0;
  struct Model {
    // Hugging Face folder: config.json + model.safetensors, and vocab.txt (BERT) or an
    // optional tokenizer.model (LLaMA); model_type picks the task (bert: classification,
    // llama: causal LM)
    std::string path = ".deps/models/all-MiniLM-L6-v2";
    int64_t max_length = 64;
    bool lower_case = true;
  } model;
  struct Data {
    std::string train = "data/lora/fortunes/train.jsonl";
    std::string valid = "data/lora/fortunes/valid.jsonl";
    std::string test = "data/lora/fortunes/test.jsonl";
    std::string predict;               // predict's input ("" = data.test)
    std::vector<std::string> labels;   // [] = the sorted labels of the training set
  } data;
  LoraConfig lora;
  bool lora_targets_given = false;  // else the model type's PEFT default (LLaMA: q_proj, v_proj)
  ProloraConfig prolora;            // prolora-finetune only (its section "prolora")
  struct Plan {                     // prolora-finetune plan only (its section "plan")
    int64_t budget = 0;             // trainable adapter parameters (0 = LoRA's at lora.r on the targets)
    std::vector<int64_t> ranks = {1, 2, 4, 8, 16, 32, 64, 128};
    std::vector<int64_t> rates = {1, 2, 4, 8, 16};  // sharing rates tried for m and n
    int64_t min_u = 0;              // unshared ranks at least this (1: PRoLoRA proper, no RoLoRA rows)
    int64_t top = 10;               // rows printed
  } plan;
  UnifiedDropout dropout = dropout_preset("hiddenkey");
  struct Train {
    double lr = 1e-3;
    double head_lr = 0;  // 0 = lr
    double weight_decay = 0.0;
    int64_t batch_size = 32;   // examples per micro-batch
    int64_t grad_accum = 1;    // micro-batches per optimiser step
    int64_t max_steps = 100;   // optimiser steps (0 = epochs × steps per epoch)
    int64_t epochs = 0;
    double warmup_ratio = 0.06;
    std::string schedule = "linear";  // linear | cosine | constant
    double clip_norm = 1.0;           // 0 = off
    int64_t eval_every = 25;          // steps (0 = only at the end)
    int64_t patience = 0;             // evaluations without improvement before stopping (0 = never)
    int64_t eval_batch_size = 64;
    int64_t checkpoint_every = 0;  // also write OUT/checkpoint.h5 every N steps (0 = at evaluations and stops only)
    int64_t run_steps = 0;         // optimiser steps in this invocation, then checkpoint and exit (0 = to the end)
  } train;
  struct Generate {
    int64_t max_new_tokens = 32;  // predict with a causal LM: greedy continuation length
  } generate;
  struct Convert {
    std::string input;      // convert: a llama2.c .bin checkpoint
    std::string tokenizer;  // convert: a tokenizer.model to copy beside it ("" = none)
  } convert;
  struct Bench {
    int64_t warmup = 3;   // untimed steps before the timed ones
    int64_t steps = 10;   // timed optimiser steps
    int64_t length = 64;  // tokens per row of the fixed batch ([CLS] … [SEP], no padding)
  } bench;
  struct Tokenize {
    std::string input = "-";       // tokenize: a UTF-8 text file, one text a line ("-" = standard input)
    std::string format = "table";  // tokenize: table | jsonl (--json: jsonl)
  } tokenize;
  std::string adapter;  // eval/predict/merge/export input: adapter.h5 or a PEFT folder ("" = OUT/adapter.h5)
  nlohmann::json resolved;
};

// Bounds of the step counts (train.max_steps, eval_every, patience, checkpoint_every,
// run_steps, and epochs x steps per epoch) and of train.epochs.
inline constexpr int64_t kMaxSteps = 1'000'000'000;
inline constexpr int64_t kMaxEpochs = 1'000'000;

// Reads every field (defaults for absent keys), rejects unknown keys (--seed arrives as
// the override seed=N, see core::load_config). `kind` reads its own sections (PRoLoRA:
// prolora, plan); the first form is lora-finetune's (LoRA: none).
[[nodiscard]] FinetuneConfig read_finetune_config(const core::ConfigDoc& doc);
[[nodiscard]] FinetuneConfig read_finetune_config(const core::ConfigDoc& doc, const AdapterKind& kind);

// The optimiser steps of a training run over `examples` examples: train.max_steps, or
// (when it is 0) train.epochs x steps per epoch. core::ConfigError naming both keys when
// that is below 1 or above kMaxSteps (an overflow included): such a run would train nothing.
[[nodiscard]] int64_t total_train_steps(const FinetuneConfig& c, int64_t examples);

}  // namespace mlsys::lora
