// lora-finetune subcommands: load the config, data and model, run, write artifacts
// atomically, print a table (or JSON with --json). Training runs on nn::Trainer over
// core::run_training_loop; the data paths and tokenizers come from lib/nn.
#include "lora/finetune_commands.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>

#include "core/artifact.hpp"
#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/fingerprint.hpp"
#include "core/h5.hpp"
#include "core/json.hpp"
#include "core/log_text.hpp"
#include "core/process_stats.hpp"
#include "core/progress.hpp"
#include "core/report.hpp"
#include "core/signals.hpp"
#include "core/timer.hpp"
#include "core/training_loop.hpp"
#include "lora/adapter_kind.hpp"
#include "lora/finetune_config.hpp"
#include "nn/bert.hpp"
#include "nn/classification_data.hpp"
#include "nn/hf_folder.hpp"
#include "nn/llama.hpp"
#include "nn/llama2c.hpp"
#include "nn/lm_data.hpp"
#include "nn/optim.hpp"
#include "nn/sentencepiece.hpp"
#include "nn/text_data.hpp"
#include "nn/trainer.hpp"
#include "tensor/device.hpp"

namespace mlsys::lora {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using core::fixed;

struct Setup {
  FinetuneConfig cfg;
  c10::Device device{c10::kCPU};
  fs::path out;
};

// --seed and --threads are applied by the runtime (core::load_config, core::run_program).
Setup setup(const core::CommonOptions& opts, const AdapterKind& kind) {
  Setup s{read_finetune_config(core::load_config(opts), kind), tensor::parse_device(opts.device), fs::path(opts.out)};
  at::manual_seed(s.cfg.seed);
  return s;
}

std::string model_type(const FinetuneConfig& c) { return nn::model_type(c.model.path); }

nn::TextTokenizer load_tokenizer(const FinetuneConfig& c) { return nn::load_text_tokenizer(c.model.path, c.model.lower_case); }

// The classifier's trainable head: its parameters by name, with requires_grad.
std::vector<std::pair<std::string, at::Tensor>> head_params(nn::BertClassifier& model) {
  std::vector<std::pair<std::string, at::Tensor>> head;
  for (const auto& name : model.head_names()) {
    model.param(name).set_requires_grad(true);
    head.emplace_back(name, model.param(name));
  }
  return head;
}

// model.max_length (or bench.length) must fit the model's position table: a config error
// at start, before any training, instead of a failure on the first long batch.
void check_length(int64_t max_pos, const FinetuneConfig& c, const char* key, int64_t length) {
  if (length > max_pos) {
    throw core::ConfigError("key '" + std::string(key) + "': expected at most " + std::to_string(max_pos) +
                            " (from max_position_embeddings in " + (fs::path(c.model.path) / "config.json").string() +
                            "), found " + std::to_string(length));
  }
}

// The adapter named by the config (adapter.h5 or a PEFT folder), default OUT/adapter.h5.
std::unique_ptr<SavedAdapter> load_adapter(const Setup& s, const AdapterKind& kind) {
  return kind.load(s.cfg.adapter.empty() ? s.out / "adapter.h5" : fs::path(s.cfg.adapter));
}

struct Loaded {
  std::unique_ptr<nn::TransformerModel> model;
  std::unique_ptr<AttachedAdapters> set;
  std::unique_ptr<SavedAdapter> saved;
  int64_t max_positions = 0;
  int64_t vocab = 0;
  [[nodiscard]] const std::vector<std::string>& labels() const { return saved->common().labels; }
};

Loaded load_model_with_adapter(const Setup& s, const AdapterKind& kind) {
  std::unique_ptr<SavedAdapter> saved = load_adapter(s, kind);
  const AdapterState& st = saved->common();
  Loaded L;
  const std::string type = model_type(s.cfg);
  const std::string want = type == "llama" ? "CAUSAL_LM" : "SEQ_CLS";
  if (st.task_type != want) {
    throw core::InputError((s.cfg.adapter.empty() ? (s.out / "adapter.h5").string() : s.cfg.adapter) +
                           ": a " + st.task_type + " adapter, but model.path " + s.cfg.model.path + " is a " + type +
                           " model (" + want + ")");
  }
  if (type == "llama") {
    auto m = nn::LlamaForCausalLM::load(s.cfg.model.path);
    L.max_positions = m.config().max_position_embeddings;
    L.vocab = m.config().vocab_size;
    L.model = std::make_unique<nn::LlamaForCausalLM>(std::move(m));
  } else {
    if (st.labels.empty()) throw core::InputError("adapter has no labels");
    auto m = nn::BertClassifier::load(s.cfg.model.path, static_cast<int64_t>(st.labels.size()), s.cfg.seed);
    L.max_positions = m.config().max_length();
    L.vocab = m.config().vocab_size;
    L.model = std::make_unique<nn::BertClassifier>(std::move(m));
  }
  L.set = saved->attach(*L.model, s.cfg.adapter.empty() ? (s.out / "adapter.h5").string() : s.cfg.adapter);
  L.model->to(s.device);
  L.saved = std::move(saved);
  return L;
}

}  // namespace

namespace {

// The config that a checkpoint must agree with: the keys training reads, but not those
// that only steer how a run is sliced into invocations (train.run_steps,
// train.checkpoint_every) or what other subcommands do (data.test, generate, convert, ...).
json resume_key(const FinetuneConfig& c) {
  const json& r = c.resolved;
  json k = {{"seed", c.seed}};
  for (const char* part : {"model", "lora", "prolora", "dropout", "train"}) {
    if (r.contains(part)) k[part] = r[part];
  }
  if (k.contains("train") && k["train"].is_object()) {
    k["train"].erase("run_steps");
    k["train"].erase("checkpoint_every");
  }
  if (r.contains("data") && r["data"].is_object()) {
    for (const char* key : {"train", "valid", "labels"}) {
      if (r["data"].contains(key)) k["data"][key] = r["data"][key];
    }
  }
  return k;
}

// An AttachedAdapters::report() in the metrics file: the JSON as the root attribute
// adapter_report, and the per-module parameter counts as /adapter/{modules,parameters,
// lora_parameters} (readable without parsing JSON).
void write_adapter_report(core::H5Writer& w, const json& report) {
  w.set_attr("/", "adapter_report", report.dump());
  if (!report.contains("modules")) return;
  std::vector<std::string> names;
  std::vector<int64_t> params, lora_params;
  for (const auto& m : report["modules"]) {
    names.push_back(m["module"].get<std::string>());
    params.push_back(m["parameters"].get<int64_t>());
    lora_params.push_back(m["lora_parameters"].get<int64_t>());
  }
  w.write_strings("/adapter/modules", names);
  w.write("/adapter/parameters", std::span<const int64_t>(params));
  w.write("/adapter/lora_parameters", std::span<const int64_t>(lora_params));
  w.set_attr("/", "adapter_parameters", report["parameters"].get<int64_t>());
  w.set_attr("/", "lora_parameters", report["lora_parameters"].get<int64_t>());
}

// The training-set numbers at the end (eval mode), for the train-validation gap.
struct TrainSetNumbers {
  double loss = 0, accuracy = 0;
};

// The shared LoRA training run: the adapters (and the classifier head, when `head` is not
// empty) as parameter groups of nn::Trainer, driven by core::run_training_loop with
// best-by-validation selection, early stopping, checkpoints and --resume; then the
// artifacts (the best adapter, metrics.h5) and the summary table.
int run_training(const core::CommonOptions& opts, const Setup& s, nn::TransformerModel& model, AttachedAdapters& set,
                 const nn::NamedTensors& head, nn::SupervisedTask task, bool lm, const std::vector<std::string>& labels,
                 uint64_t data_hash, const std::function<TrainSetNumbers()>& eval_train) {
  const auto& c = s.cfg;
  nn::ParamGroup lora_group{"lora", set.trainable(s.device), c.train.lr, c.train.weight_decay};
  nn::ParamGroup head_group{"head", head, c.train.head_lr > 0 ? c.train.head_lr : c.train.lr, c.train.weight_decay};
  const int64_t N = task.examples;
  const int64_t per_step = c.train.batch_size * c.train.grad_accum;
  const int64_t total = total_train_steps(c, N);  // ConfigError for a run of no steps
  nn::Trainer trainer({std::move(lora_group), std::move(head_group)},
                      {c.train.batch_size, c.train.grad_accum, total, c.train.warmup_ratio, c.train.schedule,
                       c.train.clip_norm},
                      std::move(task), c.seed, s.device);

  core::LoopPolicy policy;
  policy.total_steps = total;
  policy.eval_every = c.train.eval_every;
  policy.patience = c.train.patience;
  policy.checkpoint_every = c.train.checkpoint_every;
  policy.run_steps = c.train.run_steps;
  policy.checkpoint = s.out / "checkpoint.h5";
  policy.resume = opts.flag("resume");
  policy.force = opts.flag("force");
  policy.resume_command = "train --resume";
  policy.resume_key = resume_key(c);
  policy.data_key = std::to_string(data_hash);
  policy.device = s.device.str();
  policy.threads = tensor::threads();
  policy.info = core::artifact_info(opts, c.resolved);
  policy.progress = opts.progress_mode();
  policy.quiet = opts.quiet;

  const fs::path adapter_path = s.out / "adapter.h5";
  json resolved = c.resolved;  // the artifacts record the targets used (a model type's default when not given)
  resolved["lora"]["targets"] = set.targets();
  const core::ArtifactInfo info = core::artifact_info(opts, resolved);

  core::log_info(std::to_string(N) + " examples" +
                 (lm ? std::string(" (causal LM)") : ", " + std::to_string(labels.size()) + " labels") + ", " +
                 set.describe() + ", " + std::to_string(trainer.trainable_parameters()) +
                 " trainable parameters, dropout preset " + c.dropout.preset + " (" +
                 std::to_string(c.dropout.sites.sites.size()) + " sites, consistency " +
                 to_string(c.dropout.consistency) + "), " + std::to_string(total) + " steps of " +
                 std::to_string(per_step) + " examples");

  core::Timer timer;
  const core::LoopResult res = core::run_training_loop(trainer, policy);
  if (res.paused) {
    // train.run_steps reached: the run continues in a later invocation
    json summary = {{"status", "paused"}, {"steps", res.steps}, {"total_steps", total},
                    {"checkpoint", policy.checkpoint.string()}};
    core::emit_result(opts, summary,
                      "ran " + std::to_string(res.steps - res.first_step) + " steps (now at " +
                          std::to_string(res.steps) + " of " + std::to_string(total) + "); wrote " +
                          policy.checkpoint.string() + ", continue with train --resume\n");
    return 0;
  }
  auto stop_at_end = [&] {
    if (core::stop_requested()) {
      throw core::RuntimeFailure("interrupted in the final evaluation after step " + std::to_string(res.steps) + "; " +
                                 policy.checkpoint.string() + " holds the run, continue with train --resume");
    }
  };
  const TrainSetNumbers tr = eval_train();
  stop_at_end();
  const double secs = timer.seconds();
  const double tps = trainer.tokens_per_second();
  trainer.restore_best();  // the adapter to keep: the parameters at the best evaluation
  const std::unique_ptr<SavedAdapter> best = set.snapshot(model, labels, c.model.path);
  const json report = set.report();

  // the artifacts only now that training is over, and as one set (core::ArtifactSet): a
  // run that fails or is stopped earlier leaves no adapter.h5 or metrics.h5 (and an old
  // good pair intact), and a new adapter.h5 never sits beside an old metrics.h5
  stop_at_end();
  core::ArtifactSet artifacts(s.out);
  best->save_h5(artifacts.stage("adapter.h5"), info);
  const core::Series& ev = res.evals;
  const bool has_eval = ev.rows() > 0;
  const std::vector<double> none;
  const auto& e_step = has_eval ? ev.column("step") : none;
  const auto& e_loss = has_eval ? ev.column("loss") : none;
  const auto& e_acc = has_eval ? ev.column("accuracy") : none;  // causal LM: next-token accuracy
  const auto& e_train_loss = has_eval ? ev.column("train_loss") : none;
  const auto& e_tps = has_eval ? ev.column("tokens_per_second") : none;
  const double final_acc = has_eval ? e_acc.back() : -1.0;
  const double final_val_loss = has_eval ? e_loss.back() : -1.0;
  // the evaluation at the best step (its loss and accuracy), when there was one
  const auto best_at = std::find(e_step.begin(), e_step.end(), static_cast<double>(res.best_step));
  const bool has_best = has_eval && res.best_step >= 0 && best_at != e_step.end();
  const auto best_i = static_cast<size_t>(best_at - e_step.begin());
  const double best_loss = has_best ? e_loss[best_i] : -1.0;
  const double best_acc = has_best ? e_acc[best_i] : -1.0;
  const std::vector<double>& losses = res.metrics.column("loss");
  {
    core::H5Writer w(artifacts.stage("metrics.h5"), info);
    res.metrics.write(w, "/metrics");
    ev.write(w, "/eval");
    if (!labels.empty()) w.write_strings("/labels", labels);
    w.set_attr("/", "task", std::string(lm ? "causal-lm" : "classification"));
    w.set_attr("/", "best_accuracy", best_acc);
    w.set_attr("/", "best_loss", best_loss);
    w.set_attr("/", "best_step", res.best_step);
    w.set_attr("/", "final_accuracy", final_acc);
    w.set_attr("/", "final_loss", final_val_loss);
    w.set_attr("/", "final_train_accuracy", tr.accuracy);
    w.set_attr("/", "final_train_loss", tr.loss);
    w.set_attr("/", "steps", res.steps);
    w.set_attr("/", "seconds", secs);
    w.set_attr("/", "tokens_per_second", tps);
    w.set_attr("/", "resumed_at_step", policy.resume ? res.first_step : int64_t{-1});
    if (!report.is_null()) write_adapter_report(w, report);
    w.commit();
  }
  artifacts.commit();
  core::remove_checkpoint(policy);  // the run is complete: nothing left to resume
  json summary = {{"status", "done"},
                  {"task", lm ? "causal-lm" : "classification"},
                  {"steps", res.steps},
                  {"preset", c.dropout.preset},
                  {"best_accuracy", best_acc},
                  {"best_loss", best_loss},
                  {"best_step", res.best_step},
                  {"final_accuracy", final_acc},
                  {"final_val_loss", final_val_loss},
                  {"final_train_accuracy", tr.accuracy},
                  {"final_train_loss", tr.loss},
                  {"final_loss", losses.empty() ? 0.0 : losses.back()},
                  {"trainable_parameters", trainer.trainable_parameters()},
                  {"seconds", secs},
                  {"tokens_per_second", tps},
                  {"adapter", adapter_path.string()},
                  {"metrics", (s.out / "metrics.h5").string()}};
  if (!report.is_null()) summary["adapter_report"] = report;
  if (lm) {
    summary["best_perplexity"] = best_loss >= 0 ? std::exp(best_loss) : -1.0;
    summary["final_perplexity"] = final_val_loss >= 0 ? std::exp(final_val_loss) : -1.0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"step", "train loss", "val loss", lm ? "val ppl" : "val acc", lm ? "tok acc" : "", "tok/s"}};
  if (!lm) rows[0].erase(rows[0].begin() + 4);
  for (size_t i = 0; i < e_step.size(); ++i) {
    std::vector<std::string> row = {std::to_string(static_cast<int64_t>(e_step[i])),
                                    std::isnan(e_train_loss[i]) ? "-" : fixed(e_train_loss[i], 4),
                                    fixed(e_loss[i], 4)};
    if (lm) row.push_back(fixed(std::exp(e_loss[i]), 3));
    row.push_back(fixed(e_acc[i], 4));
    row.push_back(fixed(e_tps[i], 0));
    rows.push_back(std::move(row));
  }
  std::string text = core::format_table(rows);
  if (lm) {
    text += "validation loss: best " + fixed(best_loss, 4) + " (perplexity " +
            fixed(best_loss >= 0 ? std::exp(best_loss) : -1.0, 3) + ", step " + std::to_string(res.best_step) +
            "), final " + fixed(final_val_loss, 4) + "; train loss " + fixed(tr.loss, 4) + "\n";
  } else {
    text += "validation accuracy: best " + fixed(best_acc, 4) + " (step " + std::to_string(res.best_step) + "), final " +
            fixed(final_acc, 4) + "; train accuracy " + fixed(tr.accuracy, 4) + "\n";
  }
  text += "wrote " + adapter_path.string() + " and " + (s.out / "metrics.h5").string() + "\n";
  core::emit_result(opts, summary, text);
  return 0;
}

int train_classifier(const core::CommonOptions& opts, const Setup& s, const AdapterKind& kind) {
  const auto& c = s.cfg;
  // inputs first: a bad file fails before any model work and before any artifact
  auto train_rows = nn::read_labeled_jsonl(c.data.train);
  std::vector<nn::LabeledText> valid_rows;
  if (!c.data.valid.empty()) valid_rows = nn::read_labeled_jsonl(c.data.valid);
  const auto labels = nn::label_set(train_rows, c.data.labels);
  if (labels.size() < 2) throw core::InputError(c.data.train + ": expected at least 2 distinct labels, found " + std::to_string(labels.size()));
  auto tok = load_tokenizer(c);
  nn::EncodedTexts train = nn::encode_texts(train_rows, tok, labels, c.model.max_length, c.data.train, true);
  nn::EncodedTexts valid = nn::encode_texts(valid_rows, tok, labels, c.model.max_length, c.data.valid, true);

  auto model = nn::BertClassifier::load(c.model.path, static_cast<int64_t>(labels.size()), c.seed);
  check_length(model.config().max_length(), c, "model.max_length", c.model.max_length);
  const std::unique_ptr<AttachedAdapters> set = kind.attach_fresh(model, c, c.lora, c.seed + 17);
  model.to(s.device);
  const auto head = head_params(model);
  core::Fingerprint fp;
  for (size_t i = 0; i < train.enc.size(); ++i) {
    fp.add_all(train.enc[i].ids);
    fp.add(train.label[i]);
  }
  nn::SupervisedTask task;
  task.examples = static_cast<int64_t>(train.enc.size());
  task.batch_loss = [&](const std::vector<size_t>& idx) {
    nn::ClassBatch b = nn::make_class_batch(train, idx, tok.pad, s.device);
    LossParts lp = classification_loss(model, b.ids, b.mask, b.labels, c.dropout, true);
    return nn::BatchLoss{lp.loss, {{"ce", lp.ce}, {"consistency", lp.consistency}}, b.tokens};
  };
  auto numbers = [&](const nn::EncodedTexts& d) {
    return nn::evaluate_classifier(model, d, c.train.eval_batch_size, tok.pad, s.device);
  };
  if (!valid.enc.empty()) {
    task.evaluate = [&] {
      const nn::ClassEval r = numbers(valid);
      return core::EvalReport{r.accuracy, {{"loss", r.loss}, {"accuracy", r.accuracy}}};
    };
  }
  return run_training(opts, s, model, *set, head, std::move(task), false, labels, fp.h, [&] {
    const nn::ClassEval r = numbers(train);
    return TrainSetNumbers{r.loss, r.accuracy};
  });
}

int train_causal_lm(const core::CommonOptions& opts, const Setup& s, const AdapterKind& kind) {
  const auto& c = s.cfg;
  auto train_rows = nn::read_lm_jsonl(c.data.train);
  std::vector<nn::LmExample> valid_rows;
  if (!c.data.valid.empty()) valid_rows = nn::read_lm_jsonl(c.data.valid);
  auto model = nn::LlamaForCausalLM::load(c.model.path);
  check_length(model.config().max_position_embeddings, c, "model.max_length", c.model.max_length);
  const int64_t V = model.config().vocab_size;
  const auto tok = nn::load_spm(c.model.path, V);
  const int64_t pad = tok && tok->pad_id() >= 0 ? tok->pad_id() : 0;  // padded keys are masked: any id will do
  nn::LmSequences train = nn::encode_lm(train_rows, tok ? &*tok : nullptr, V, c.model.max_length, c.data.train);
  nn::LmSequences valid = nn::encode_lm(valid_rows, tok ? &*tok : nullptr, V, c.model.max_length, c.data.valid);
  if (train.truncated + valid.truncated > 0) {
    core::log_info(std::to_string(train.truncated + valid.truncated) + " examples cut to model.max_length = " +
                   std::to_string(c.model.max_length) + " tokens");
  }
  LoraConfig lc = c.lora;
  if (!c.lora_targets_given) lc.targets = {"q_proj", "v_proj"};  // PEFT's default for LLaMA
  const std::unique_ptr<AttachedAdapters> set = kind.attach_fresh(model, c, lc, c.seed + 17);
  model.to(s.device);
  core::Fingerprint fp;
  for (size_t i = 0; i < train.ids.size(); ++i) {
    fp.add_all(train.ids[i]);
    fp.add_all(train.target[i]);
  }
  nn::SupervisedTask task;
  task.examples = static_cast<int64_t>(train.ids.size());
  task.batch_loss = [&](const std::vector<size_t>& idx) {
    nn::LmBatch b = nn::make_lm_batch(train, idx, pad, s.device);
    LossParts lp = causal_lm_loss(model, b.ids, b.mask, b.loss_mask, c.dropout, true);
    return nn::BatchLoss{lp.loss, {{"ce", lp.ce}, {"consistency", lp.consistency}}, b.tokens};
  };
  auto numbers = [&](const nn::LmSequences& d) { return nn::evaluate_lm(model, d, c.train.eval_batch_size, pad, s.device); };
  if (!valid.ids.empty()) {
    task.evaluate = [&] {
      const nn::LmEval e = numbers(valid);
      return core::EvalReport{-e.loss, {{"loss", e.loss}, {"accuracy", e.token_accuracy}}};
    };
  }
  return run_training(opts, s, model, *set, {}, std::move(task), true, {}, fp.h, [&] {
    const nn::LmEval e = numbers(train);
    return TrainSetNumbers{e.loss, e.token_accuracy};
  });
}

}  // namespace

int run_train(const core::CommonOptions& opts, const AdapterKind& kind) {
  Setup s = setup(opts, kind);
  return model_type(s.cfg) == "llama" ? train_causal_lm(opts, s, kind) : train_classifier(opts, s, kind);
}

int run_eval(const core::CommonOptions& opts, const AdapterKind& kind) {
  Setup s = setup(opts, kind);
  const auto& c = s.cfg;
  const std::string path = c.data.test.empty() ? c.data.valid : c.data.test;
  const bool lm = model_type(c) == "llama";
  json summary;
  std::vector<std::vector<std::string>> table;
  if (lm) {
    auto rows = nn::read_lm_jsonl(path);
    Loaded L = load_model_with_adapter(s, kind);
    check_length(L.max_positions, c, "model.max_length", c.model.max_length);
    const auto tok = nn::load_spm(c.model.path, L.vocab);
    const int64_t pad = tok && tok->pad_id() >= 0 ? tok->pad_id() : 0;
    nn::LmSequences data = nn::encode_lm(rows, tok ? &*tok : nullptr, L.vocab, c.model.max_length, path);
    nn::LmEval e = nn::evaluate_lm(*L.model, data, c.train.eval_batch_size, pad, s.device);
    summary = {{"data", path}, {"examples", data.ids.size()}, {"target_tokens", e.targets}, {"loss", e.loss},
               {"perplexity", e.perplexity}, {"token_accuracy", e.token_accuracy}};
    table = {{"data", "examples", "tokens", "loss", "perplexity", "token acc"},
             {path, std::to_string(data.ids.size()), std::to_string(e.targets), fixed(e.loss, 4), fixed(e.perplexity, 3),
              fixed(e.token_accuracy, 4)}};
  } else {
    auto rows = nn::read_labeled_jsonl(path);
    Loaded L = load_model_with_adapter(s, kind);
    auto tok = load_tokenizer(c);
    check_length(L.max_positions, c, "model.max_length", c.model.max_length);
    nn::EncodedTexts data = nn::encode_texts(rows, tok, L.labels(), c.model.max_length, path, true);
    nn::ClassEval r = nn::evaluate_classifier(*L.model, data, c.train.eval_batch_size, tok.pad, s.device);
    summary = {{"data", path}, {"examples", r.n}, {"accuracy", r.accuracy}, {"loss", r.loss}};
    table = {{"data", "examples", "accuracy", "loss"}, {path, std::to_string(r.n), fixed(r.accuracy, 4), fixed(r.loss, 4)}};
  }
  core::write_json_artifact(s.out / "eval.json", core::artifact_info(opts, c.resolved), summary);
  core::emit_result(opts, summary, core::format_table(table) + "wrote " + (s.out / "eval.json").string() + "\n");
  return 0;
}

namespace {

// predict with a causal LM: the greedy continuation of every prompt.
int predict_causal_lm(const core::CommonOptions& opts, const Setup& s, const AdapterKind& kind, const std::string& path) {
  const auto& c = s.cfg;
  auto rows = nn::read_lm_jsonl(path, true);
  Loaded L = load_model_with_adapter(s, kind);
  check_length(L.max_positions, c, "model.max_length", c.model.max_length);
  const auto tok = nn::load_spm(c.model.path, L.vocab);
  nn::LmSequences data = nn::encode_lm(rows, tok ? &*tok : nullptr, L.vocab, c.model.max_length, path, true);
  const int64_t eos = tok ? tok->eos_id() : -1;
  std::string lines;
  int64_t generated = 0;
  core::Progress progress("predict", data.ids.size(), opts.progress_mode(), opts.quiet);
  for (size_t i = 0; i < data.ids.size(); ++i) {
    core::throw_if_stop_requested();
    auto out = nn::generate_greedy(*L.model, data.ids[i], c.generate.max_new_tokens, eos, c.model.max_length, s.device);
    generated += static_cast<int64_t>(out.size());
    json row = {{"prompt_ids", data.ids[i]}, {"completion_ids", out}};
    if (tok) {
      row["prompt"] = data.prompt[i];
      row["completion"] = tok->decode(out);
    }
    lines += row.dump() + "\n";
    progress.update(i + 1);
  }
  progress.finish();
  fs::create_directories(s.out);
  core::write_file_atomic(s.out / "predictions.jsonl", lines);
  core::emit_result(opts,
                    json{{"examples", data.ids.size()}, {"generated_tokens", generated},
                         {"predictions", (s.out / "predictions.jsonl").string()}},
                    "continued " + std::to_string(data.ids.size()) + " prompts greedily (" + std::to_string(generated) +
                        " tokens)\nwrote " + (s.out / "predictions.jsonl").string() + "\n");
  return 0;
}

}  // namespace

int run_predict(const core::CommonOptions& opts, const AdapterKind& kind) {
  Setup s = setup(opts, kind);
  const auto& c = s.cfg;
  const std::string path = !c.data.predict.empty() ? c.data.predict : c.data.test;
  if (model_type(c) == "llama") return predict_causal_lm(opts, s, kind, path);
  auto rows = nn::read_labeled_jsonl(path, false);
  Loaded L = load_model_with_adapter(s, kind);
  auto tok = load_tokenizer(c);
  check_length(L.max_positions, c, "model.max_length", c.model.max_length);
  nn::EncodedTexts data = nn::encode_texts(rows, tok, L.labels(), c.model.max_length, path, false);
  nn::ClassEval r = nn::evaluate_classifier(*L.model, data, c.train.eval_batch_size, tok.pad, s.device, false);
  std::string lines;
  std::map<std::string, int64_t> counts;
  at::Tensor arg = r.probs.argmax(-1);
  for (int64_t i = 0; i < r.n; ++i) {
    const std::string& label = L.labels()[static_cast<size_t>(arg[i].item<int64_t>())];
    ++counts[label];
    std::vector<double> p(static_cast<size_t>(r.probs.size(1)));
    for (int64_t k = 0; k < r.probs.size(1); ++k) p[static_cast<size_t>(k)] = r.probs[i][k].item<double>();
    lines += json({{"text", data.text[static_cast<size_t>(i)]}, {"label", label}, {"probs", p}}).dump() + "\n";
  }
  fs::create_directories(s.out);
  core::write_file_atomic(s.out / "predictions.jsonl", lines);
  std::vector<std::vector<std::string>> t = {{"label", "predicted"}};
  for (const auto& [k, v] : counts) t.push_back({k, std::to_string(v)});
  core::emit_result(opts, json{{"examples", r.n}, {"counts", counts}, {"predictions", (s.out / "predictions.jsonl").string()}},
       core::format_table(t) + "wrote " + (s.out / "predictions.jsonl").string() + "\n");
  return 0;
}

int run_merge(const core::CommonOptions& opts, const AdapterKind& kind) {
  Setup s = setup(opts, kind);
  Loaded L = load_model_with_adapter(s, kind);
  // check on a few random rows that the merged model computes what the adapter did
  const int64_t V = L.vocab;
  at::Tensor ids = at::randint(std::min<int64_t>(1000, V / 2), V, {4, 16}, at::kLong).to(s.device);
  at::Tensor mask = at::ones({4, 16}, at::kLong).to(s.device);
  c10::NoGradGuard ng;
  at::Tensor before = L.model->forward(ids, mask);
  L.set->merge(*L.model);
  L.model->clear_adapters();
  at::Tensor after = L.model->forward(ids, mask);
  const double diff = (before - after).abs().max().item<double>();
  // built in a temporary sibling folder, renamed into place only when complete: a failed
  // merge leaves no half folder and an old OUT/merged intact
  const fs::path dir = s.out / "merged";
  core::replace_folder_atomic(dir, [&](const fs::path& tmp) {
    L.model->save_hf(tmp);
    // the tokenizer files beside the weights, so the folder is a complete model
    for (const char* name : {"vocab.txt", "vocab.json", "merges.txt", "tokenizer.model", "tokenizer_config.json"}) {
      const fs::path src = fs::path(s.cfg.model.path) / name;
      if (fs::exists(src)) core::write_file_atomic(tmp / name, core::read_file(src));
    }
    if (!L.labels().empty()) core::write_file_atomic(tmp / "labels.json", json(L.labels()).dump() + "\n");
    core::throw_if_stop_requested();
  });
  core::emit_result(opts, json{{"merged", dir.string()}, {"modules", L.set->modules()}, {"max_logit_difference", diff}},
       "merged " + std::to_string(L.set->modules()) + " " + L.set->noun() + " modules; max |logit difference| " + fixed(diff, 7) +
           "\nwrote " + dir.string() + "\n");
  return 0;
}

int run_export(const core::CommonOptions& opts, const AdapterKind& kind) {
  Setup s = setup(opts, kind);
  const std::unique_ptr<SavedAdapter> saved = load_adapter(s, kind);
  const AdapterState st = saved->as_lora();  // PEFT holds the materialised LoRA form
  const fs::path dir = s.out / "peft";
  core::replace_folder_atomic(dir, [&](const fs::path& tmp) { export_peft(tmp, st); });
  const std::string noun = saved->noun() == "LoRA" ? "LoRA" : saved->noun() + " (materialised as LoRA)";
  core::emit_result(opts, json{{"peft", dir.string()}, {"modules", st.ab.size()}, {"r", st.cfg.r}},
       "exported " + std::to_string(st.ab.size()) + " " + noun + " modules (r=" + std::to_string(st.cfg.r) + ") to " +
           dir.string() + "\n");
  return 0;
}

int run_convert(const core::CommonOptions& opts, const AdapterKind& kind) {
  Setup s = setup(opts, kind);
  const auto& c = s.cfg;
  if (c.convert.input.empty()) {
    throw core::ConfigError("key 'convert.input': expected the path of a llama2.c .bin checkpoint, found \"\"");
  }
  // everything read and checked before anything is written
  nn::Llama2cModel m = nn::read_llama2c(c.convert.input);
  const auto model = nn::LlamaForCausalLM::from_tensors(m.cfg, m.tensors, c.convert.input);
  const int64_t V = m.cfg.vocab_size;
  std::optional<std::string> tokenizer;
  if (!c.convert.tokenizer.empty()) {
    const auto tok = nn::SentencePieceTokenizer::from_model_file(c.convert.tokenizer, {});
    if (tok.vocab_size() != V) {
      throw core::InputError(c.convert.tokenizer + ": " + std::to_string(tok.vocab_size()) + " pieces, but " +
                             c.convert.input + " has a vocabulary of " + std::to_string(V));
    }
    tokenizer = core::read_file(c.convert.tokenizer);
  }
  // OUT becomes the model folder, whole: refuse to replace a folder that is not a model
  if (fs::exists(s.out) && !fs::is_empty(s.out) && !fs::exists(s.out / "config.json")) {
    throw core::ConfigError("--out " + s.out.string() +
                            ": not empty and not a model folder (no config.json); convert writes a whole model folder there");
  }
  core::replace_folder_atomic(s.out, [&](const fs::path& tmp) {
    model.save_hf(tmp);
    if (tokenizer) core::write_file_atomic(tmp / "tokenizer.model", *tokenizer);
    core::throw_if_stop_requested();
  });
  nn::Llama2cSummary sum{m.header, m.cfg, 0, s.out};
  for (const auto& [n, t] : m.tensors) sum.parameters += t.numel();
  const auto& h = sum.header;
  json summary = {{"input", c.convert.input},
                  {"out", s.out.string()},
                  {"dim", h.dim},
                  {"hidden_dim", h.hidden_dim},
                  {"layers", h.n_layers},
                  {"heads", h.n_heads},
                  {"kv_heads", h.n_kv_heads},
                  {"vocab", std::abs(h.vocab_size)},
                  {"seq_len", h.seq_len},
                  {"tied_embeddings", h.shared_classifier()},
                  {"parameters", sum.parameters},
                  {"tokenizer", tokenizer.has_value()}};
  core::emit_result(opts, summary,
                    core::format_table({{"dim", "hidden", "layers", "heads", "kv heads", "vocab", "seq len", "parameters"},
                                        {std::to_string(h.dim), std::to_string(h.hidden_dim), std::to_string(h.n_layers),
                                         std::to_string(h.n_heads), std::to_string(h.n_kv_heads),
                                         std::to_string(std::abs(h.vocab_size)), std::to_string(h.seq_len),
                                         std::to_string(sum.parameters)}}) +
                        "wrote " + (s.out / "config.json").string() + " and " + (s.out / "model.safetensors").string() +
                        (tokenizer ? " and tokenizer.model" : "") + "\n");
  return 0;
}

int run_bench(const core::CommonOptions& opts, const AdapterKind& kind) {
  Setup s = setup(opts, kind);
  const auto& c = s.cfg;
  if (model_type(c) == "llama") {
    throw core::ConfigError("key 'model.path': bench times BERT/RoBERTa sequence classifiers; " + c.model.path +
                            " holds a llama model");
  }
  auto rows = nn::read_labeled_jsonl(c.data.train);
  const auto labels = nn::label_set(rows, c.data.labels);
  if (labels.size() < 2) throw core::InputError(c.data.train + ": expected at least 2 distinct labels");
  auto tok = load_tokenizer(c);
  // one fixed batch of real tokens: the pieces of data.train in file order, cut into rows of
  // [CLS] + (length-2) pieces + [SEP] (no padding); labels cycle through the label set.
  // scripts in bench/lora build the same batch with Hugging Face's tokenizer.
  const int64_t B = c.train.batch_size, L = c.bench.length, inner = L - 2;
  std::vector<int64_t> stream;
  for (size_t i = 0; i < rows.size() && static_cast<int64_t>(stream.size()) < B * inner; ++i) {
    auto p = tok.pieces(rows[i].text);
    stream.insert(stream.end(), p.begin(), p.end());
  }
  if (static_cast<int64_t>(stream.size()) < B * inner) {
    throw core::InputError(c.data.train + ": too few tokens for a " + std::to_string(B) + " x " + std::to_string(L) + " batch");
  }
  at::Tensor ids = at::empty({B, L}, at::kLong);
  auto pi = ids.accessor<int64_t, 2>();
  for (int64_t r = 0; r < B; ++r) {
    pi[r][0] = tok.cls;
    for (int64_t t = 0; t < inner; ++t) pi[r][t + 1] = stream[static_cast<size_t>(r * inner + t)];
    pi[r][L - 1] = tok.sep;
  }
  at::Tensor mask = at::ones({B, L}, at::kLong).to(s.device);
  at::Tensor lab = at::arange(B, at::kLong).remainder(static_cast<int64_t>(labels.size())).to(s.device);
  ids = ids.to(s.device);

  auto model = nn::BertClassifier::load(c.model.path, static_cast<int64_t>(labels.size()), c.seed);
  check_length(model.config().max_length(), c, "bench.length", L);
  const std::unique_ptr<AttachedAdapters> set = kind.attach_fresh(model, c, c.lora, c.seed + 17);
  model.to(s.device);
  std::vector<at::Tensor> params;
  for (const auto& [name, p] : head_params(model)) params.push_back(p);
  for (const auto& [name, p] : set->trainable(s.device)) params.push_back(p);
  int64_t n_trainable = 0;
  for (const auto& p : params) n_trainable += p.numel();
  nn::AdamW opt(params, {0.9, 0.999, 1e-8, c.train.weight_decay});
  const double rss_loaded = core::peak_rss_mib();

  std::vector<double> secs;
  double last_loss = 0;
  for (int64_t i = 0; i < c.bench.warmup + c.bench.steps; ++i) {
    core::throw_if_stop_requested();
    core::Timer t;
    LossParts lp = classification_loss(model, ids, mask, lab, c.dropout, true);
    lp.loss.backward();
    last_loss = lp.loss.item<double>();
    nn::clip_grad_norm(params, c.train.clip_norm);
    opt.step(c.train.lr);
    opt.zero_grad();
    if (i >= c.bench.warmup) secs.push_back(t.seconds());
  }
  std::vector<double> sorted = secs;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  const double mean = std::accumulate(secs.begin(), secs.end(), 0.0) / static_cast<double>(secs.size());
  const double tokens = static_cast<double>(B * L);
  json summary = {{"impl", kind.program()},
                  {"preset", c.dropout.preset},
                  {"threads", tensor::threads()},
                  {"batch", B},
                  {"length", L},
                  {"r", c.lora.r},
                  {"targets", c.lora.targets},
                  {"trainable_parameters", n_trainable},
                  {"warmup", c.bench.warmup},
                  {"steps", c.bench.steps},
                  {"step_seconds", secs},
                  {"median_step_s", median},
                  {"mean_step_s", mean},
                  {"min_step_s", sorted.front()},
                  {"tokens_per_s", tokens / median},
                  {"steps_per_s", 1.0 / median},
                  {"final_loss", last_loss},
                  {"max_rss_mib_after_load", rss_loaded},
                  {"max_rss_mib", core::peak_rss_mib()}};
  if (const json report = set->report(); !report.is_null()) summary["adapter_report"] = report;
  // JSON always: the bench scripts parse it
  std::cout << summary.dump() << "\n";
  std::cout.flush();
  return 0;
}

// lora-finetune's subcommands: the shared flow with LoRA adapters.
int finetune_train(const core::CommonOptions& opts) { return run_train(opts, lora_kind()); }
int finetune_eval(const core::CommonOptions& opts) { return run_eval(opts, lora_kind()); }
int finetune_predict(const core::CommonOptions& opts) { return run_predict(opts, lora_kind()); }
int finetune_merge(const core::CommonOptions& opts) { return run_merge(opts, lora_kind()); }
int finetune_export(const core::CommonOptions& opts) { return run_export(opts, lora_kind()); }
int finetune_convert(const core::CommonOptions& opts) { return run_convert(opts, lora_kind()); }
int finetune_bench(const core::CommonOptions& opts) { return run_bench(opts, lora_kind()); }

}  // namespace mlsys::lora
