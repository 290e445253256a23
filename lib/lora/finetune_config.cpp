// Reading the lora-finetune config (see finetune_config.hpp).
#include "lora/finetune_config.hpp"

#include "lora/adapter_kind.hpp"

#include <algorithm>
#include <string>

namespace mlsys::lora {

int64_t total_train_steps(const FinetuneConfig& c, int64_t examples) {
  if (c.train.max_steps > 0) return c.train.max_steps;
  const int64_t per_step = c.train.batch_size * c.train.grad_accum;  // each <= 65536: no overflow
  const int64_t steps_per_epoch = std::max<int64_t>(1, (std::max<int64_t>(examples, 0) + per_step - 1) / per_step);
  int64_t total = 0;
  const bool overflow = __builtin_mul_overflow(c.train.epochs, steps_per_epoch, &total);
  if (overflow || total > kMaxSteps || total <= 0) {
    throw core::ConfigError("keys 'train.max_steps' and 'train.epochs': expected 1 to " + std::to_string(kMaxSteps) +
                            " steps (train.max_steps > 0, or train.epochs x " + std::to_string(steps_per_epoch) +
                            " steps per epoch), found max_steps 0 and epochs " + std::to_string(c.train.epochs) +
                            " (" + (overflow ? std::string("beyond 2^63") : std::to_string(total)) + " steps)");
  }
  return total;
}

FinetuneConfig read_finetune_config(const core::ConfigDoc& doc) { return read_finetune_config(doc, lora_kind()); }

FinetuneConfig read_finetune_config(const core::ConfigDoc& doc, const AdapterKind& kind) {
  FinetuneConfig c;
  core::ConfigNode root(doc);
  root.get("seed", c.seed);

  auto m = root.child("model");
  m.get("path", c.model.path).get("max_length", c.model.max_length, core::in_range<int64_t>(3, 1 << 20));
  m.get("lower_case", c.model.lower_case);

  auto d = root.child("data");
  d.get("train", c.data.train).get("valid", c.data.valid).get("test", c.data.test).get("predict", c.data.predict);
  d.get("labels", c.data.labels);

  auto l = root.child("lora");
  c.lora_targets_given = l.has("targets");
  l.get("targets", c.lora.targets).get("r", c.lora.r, core::in_range<int64_t>(1, 4096));
  l.get("alpha", c.lora.alpha, core::positive<double>()).get("rslora", c.lora.rslora);
  l.get("init", c.lora.init, core::one_of({"kaiming", "gaussian"}));
  if (c.lora.targets.empty()) l.fail("targets", "at least one module name (or all-linear)", "[]");

  auto dr = root.child("dropout");
  std::string preset = "hiddenkey";
  double rate = 0.1, weight = 1.0;
  bool share = false;
  dr.get("preset", preset, core::one_of(preset_names()));
  dr.get("rate", rate, core::in_range(0.0, 0.9)).get("kl_weight", weight, core::at_least(0.0));
  dr.get("share_across_heads", share);
  c.dropout = dropout_preset(preset, rate, weight);
  std::string consistency = to_string(c.dropout.consistency);
  dr.get("consistency", consistency, core::one_of({"none", "kl", "js"}));
  c.dropout.consistency = consistency == "kl" ? Consistency::kl : consistency == "js" ? Consistency::js : Consistency::none;
  if (dr.has("sites")) {
    // an explicit list replaces the preset's sites: any point of the framework's design space
    c.dropout.sites.sites.clear();
    auto items = dr.items("sites");
    for (size_t i = 0; i < items.size(); ++i) {
      const auto& it = items[i];
      std::string pos, pat = "element", comp = "rescale";
      nn::DropSite s;
      it.require("position", pos, core::one_of({"lora_input", "attn_logits", "attn_weights", "hidden"}));
      it.get("pattern", pat, core::one_of({"element", "column", "span"}));
      it.get("compensation", comp, core::one_of({"rescale", "normalize", "none"}));
      it.get("rate", s.rate, core::in_range(0.0, 0.9));
      it.get("share_across_heads", s.share_across_heads);
      s.position = *nn::parse_drop_position(pos);
      s.pattern = *nn::parse_drop_pattern(pat);
      s.compensation = *nn::parse_drop_compensation(comp);
      const bool attn = s.position == nn::DropPosition::attn_logits || s.position == nn::DropPosition::attn_weights;
      if (s.pattern == nn::DropPattern::column && !attn) it.fail("pattern", "element or span (column is for attention positions)", "\"column\"");
      if (s.pattern == nn::DropPattern::span && s.position != nn::DropPosition::hidden) it.fail("pattern", "element or column (span is for the hidden position)", "\"span\"");
      if (s.compensation == nn::DropCompensation::normalize && !attn) it.fail("compensation", "rescale or none (normalize is for attention positions)", "\"normalize\"");
      if (s.position == nn::DropPosition::lora_input && s.compensation != nn::DropCompensation::rescale) it.fail("compensation", "rescale (lora_input dropout is PEFT's lora_dropout, always rescaled)", "\"" + comp + "\"");
      if (s.position == nn::DropPosition::attn_logits && s.compensation != nn::DropCompensation::normalize) it.fail("compensation", "normalize (dropped logits leave the softmax)", "\"" + comp + "\"");
      c.dropout.sites.sites.push_back(s);
    }
    c.dropout.preset = "custom";
  }
  for (auto& s : c.dropout.sites.sites) {
    if (share) s.share_across_heads = true;
  }
  c.lora.input_dropout = c.dropout.lora_input_rate();

  // Every count is bounded: 4e17 epochs is an integer, but epochs × steps per epoch
  // overflows int64 and a negative step count would train nothing and "succeed".
  const auto steps = core::in_range<int64_t>(0, kMaxSteps);
  auto t = root.child("train");
  t.get("lr", c.train.lr, core::positive<double>()).get("head_lr", c.train.head_lr, core::at_least(0.0));
  t.get("weight_decay", c.train.weight_decay, core::at_least(0.0));
  t.get("batch_size", c.train.batch_size, core::in_range<int64_t>(1, 65536));
  t.get("grad_accum", c.train.grad_accum, core::in_range<int64_t>(1, 65536));
  t.get("max_steps", c.train.max_steps, steps).get("epochs", c.train.epochs, core::in_range<int64_t>(0, kMaxEpochs));
  t.get("warmup_ratio", c.train.warmup_ratio, core::in_range(0.0, 1.0));
  t.get("schedule", c.train.schedule, core::one_of({"linear", "cosine", "constant"}));
  t.get("clip_norm", c.train.clip_norm, core::at_least(0.0));
  t.get("eval_every", c.train.eval_every, steps).get("patience", c.train.patience, steps);
  t.get("eval_batch_size", c.train.eval_batch_size, core::in_range<int64_t>(1, 65536));
  t.get("checkpoint_every", c.train.checkpoint_every, steps);
  t.get("run_steps", c.train.run_steps, steps);
  if (c.train.max_steps == 0 && c.train.epochs == 0) {
    t.fail("max_steps", "train.max_steps > 0 or train.epochs > 0 (a run that trains nothing)", "both 0");
  }

  root.child("generate").get("max_new_tokens", c.generate.max_new_tokens, core::in_range<int64_t>(1, 1 << 20));
  root.child("convert").get("input", c.convert.input).get("tokenizer", c.convert.tokenizer);

  auto b = root.child("bench");
  b.get("warmup", c.bench.warmup, core::in_range<int64_t>(0, 1000)).get("steps", c.bench.steps, core::in_range<int64_t>(1, 100000));
  b.get("length", c.bench.length, core::in_range<int64_t>(3, 512));

  root.child("tokenize").get("input", c.tokenize.input).get("format", c.tokenize.format, core::one_of({"table", "jsonl"}));
  if (c.tokenize.input.empty()) root.child("tokenize").fail("input", "a text file or - (standard input)", "\"\"");

  root.get("adapter", c.adapter);
  kind.read_config(root, c);
  root.finish();
  c.resolved = root.resolved();
  return c;
}

}  // namespace mlsys::lora
