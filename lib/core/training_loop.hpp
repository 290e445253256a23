// The one training loop of the suite, torch-free: a schedule of steps, evaluation every N
// steps with best-by-validation selection and early stopping, checkpoints (at evaluations,
// every N steps, on SIGINT/SIGTERM, at a pause) and --resume that continues bit for bit,
// progress, and the per-step and per-evaluation metric series. What a step does, how a
// model is evaluated and what state it has belong to a LoopTask: nn::Trainer for mini-batch
// programs over LibTorch parameters (lora-finetune), tgnn's FitTask for tgnn-train.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/h5.hpp"
#include "core/json.hpp"
#include "core/options.hpp"

namespace mlsys::core {

// Named columns of doubles, one row per step or evaluation, kept in first-seen name order.
class Series {
 public:
  // Appends a row; every row must name the same columns, in any order (RuntimeFailure otherwise).
  void add_row(const std::vector<std::pair<std::string, double>>& row);
  [[nodiscard]] size_t rows() const { return columns_.empty() ? 0 : columns_.front().second.size(); }
  [[nodiscard]] bool has(const std::string& name) const;
  // The column (RuntimeFailure naming it when absent).
  [[nodiscard]] const std::vector<double>& column(const std::string& name) const;
  [[nodiscard]] const std::vector<std::pair<std::string, std::vector<double>>>& columns() const { return columns_; }
  // <group>/<name> datasets (float64), one per column.
  void write(H5Writer& w, const std::string& group) const;
  // Every dataset of <group> (none when the group is absent); InputError on unequal lengths.
  static Series read(const H5Reader& r, const std::string& group);

 private:
  std::vector<std::pair<std::string, std::vector<double>>> columns_;
};

struct StepReport {
  // Recorded per step under /metrics/<name>; the loop keeps a running mean of "loss" since
  // the last evaluation (the eval row's train_loss).
  std::vector<std::pair<std::string, double>> values;
  std::string status;  // the progress line's text ("loss 0.412 | 3100 tok/s")
};

struct EvalReport {
  double score = 0;  // what best-by-validation maximises (accuracy, AP, minus a loss)
  std::vector<std::pair<std::string, double>> values;  // recorded under /eval/<name>
};

// What a program supplies to the loop.
class LoopTask {
 public:
  virtual ~LoopTask() = default;
  // Runs step `step` (0-based) of the schedule.
  virtual StepReport train_step(int64_t step) = 0;
  // Validation after `step` steps; nullopt when there is no validation set.
  virtual std::optional<EvalReport> evaluate(int64_t step) = 0;
  // The current parameters scored best so far: keep them.
  virtual void keep_best() = 0;
  // Everything else the task needs to continue bit for bit (parameters, optimiser, random
  // generators, data position, the kept best), into/from the checkpoint file.
  virtual void save_state(H5Writer& w) const = 0;
  virtual void load_state(const H5Reader& r) = 0;
};

struct LoopPolicy {
  int64_t total_steps = 0;      // > 0 (ConfigError otherwise: a run that would do nothing)
  int64_t eval_every = 0;        // evaluate every N steps (0 = only after the last)
  int64_t patience = 0;          // evaluations without improvement before stopping (0 = never)
  int64_t checkpoint_every = 0;  // also checkpoint every N steps (0 = at evaluations, stops, pauses)
  int64_t run_steps = 0;         // steps in this invocation, then checkpoint and pause (0 = to the end)
  std::filesystem::path checkpoint;  // the checkpoint file
  bool resume = false;               // continue from `checkpoint`
  // Without resume, an existing checkpoint (an unfinished run) is refused (ConfigError
  // naming resume_command and --force) unless `force`: then the new run replaces it.
  bool force = false;
  std::string resume_command;        // "train --resume": named in messages
  // A checkpoint must agree with the run on these (ConfigError / InputError otherwise):
  Json resume_key;         // the config keys training reads
  std::string data_key;    // a fingerprint of the training data
  std::string device;      // "cpu", "cuda:0"
  int threads = 0;         // a different count resumes with a warning (not bit for bit)
  ArtifactInfo info;       // the checkpoint file's header
  std::string label = "train";
  ProgressMode progress = ProgressMode::automatic;
  bool quiet = false;
};

struct LoopResult {
  int64_t steps = 0;        // steps done in all invocations
  int64_t first_step = 0;   // where this invocation started (> 0 after --resume)
  int64_t best_step = -1;   // the evaluation that scored best (-1: none)
  double best_score = 0;
  bool early_stopped = false;
  bool paused = false;      // run_steps reached: the checkpoint holds the run
  Series metrics;           // per step: "step", then the task's values
  Series evals;             // per evaluation: "step", the task's values, "train_loss"
};

// Runs the loop. Throws RuntimeFailure on a stop request (after writing a checkpoint when
// any step ran), and the task's errors. On return (not paused) the last evaluation is done
// and a checkpoint holds the run, so a stop while the program writes its artifacts loses
// no training; remove_checkpoint() once they are written.
LoopResult run_training_loop(LoopTask& task, const LoopPolicy& policy);

// ConfigError when `checkpoint` exists (an unfinished run a fresh run would replace),
// naming resume_command and --force. run_training_loop checks its own; a program that
// trains several models checks the later ones' before the first starts.
void refuse_unfinished_run(const std::filesystem::path& checkpoint, const std::string& resume_command);

// The run is complete: deletes the checkpoint.
void remove_checkpoint(const LoopPolicy& policy);

}  // namespace mlsys::core
