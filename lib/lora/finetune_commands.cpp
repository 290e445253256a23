// lora-finetune subcommands: load the config, data and model, run, write artifacts
// atomically, print a table (or JSON with --json).
#include "lora/finetune_commands.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <numeric>
#include <limits>
#include <optional>
#include <random>
#include <sstream>

#include <sys/resource.h>
#include <unistd.h>

#include "core/atomic_file.hpp"
#include "core/build_info.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "core/json.hpp"
#include "core/progress.hpp"
#include "core/report.hpp"
#include "core/signals.hpp"
#include "core/timer.hpp"
#include "lora/finetune_config.hpp"
#include "lora/log_line.hpp"
#include "lora/lm_data.hpp"
#include "nn/bert.hpp"
#include "nn/bpe.hpp"
#include "nn/llama.hpp"
#include "nn/llama2c.hpp"
#include "nn/optim.hpp"
#include "nn/sentencepiece.hpp"
#include "nn/text_data.hpp"
#include "nn/wordpiece.hpp"
#include "tensor/device.hpp"
#include "tensor/h5_tensor.hpp"

namespace mlsys::lora {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
constexpr const char* kProgram = "lora-finetune";

struct Setup {
  FinetuneConfig cfg;
  c10::Device device{c10::kCPU};
  fs::path out;
};

Setup setup(const core::CommonOptions& opts) {
  Setup s{read_finetune_config(core::load_config(opts), opts.seed), tensor::parse_device(opts.device), fs::path(opts.out)};
  if (opts.threads > 0) at::set_num_threads(opts.threads);
  at::manual_seed(s.cfg.seed);
  return s;
}

std::string f(double v, int prec = 4) { return core::fixed(v, prec); }

// model_type of the model folder's config.json: "bert" or "roberta" (classification) or "llama" (causal LM).
std::string model_type(const FinetuneConfig& c);

// The classifier's tokenizer: BERT's WordPiece (vocab.txt) or RoBERTa's byte-level BPE
// (vocab.json + merges.txt), by the folder's model_type.
struct TextTokenizer {
  std::function<nn::Encoding(std::string_view, int64_t)> encode;  // <s>/[CLS] ... </s>/[SEP]
  std::function<std::vector<int64_t>(std::string_view)> pieces;  // ids without special tokens
  int64_t pad = 0, cls = 0, sep = 0;
};

TextTokenizer load_tokenizer(const FinetuneConfig& c) {
  TextTokenizer t;
  if (model_type(c) == "roberta") {
    auto bpe = std::make_shared<nn::BpeTokenizer>(nn::BpeTokenizer::from_folder(c.model.path));
    if (bpe->bos_id() < 0 || bpe->eos_id() < 0 || bpe->pad_id() < 0) {
      throw core::InputError((fs::path(c.model.path) / "vocab.json").string() +
                             ": a RoBERTa vocabulary needs <s>, </s> and <pad>");
    }
    t.encode = [bpe](std::string_view text, int64_t n) { return bpe->encode(text, n); };
    t.pieces = [bpe](std::string_view text) { return bpe->tokenize_ids(text); };
    t.pad = bpe->pad_id();
    t.cls = bpe->bos_id();
    t.sep = bpe->eos_id();
    return t;
  }
  auto wp = std::make_shared<nn::WordPieceTokenizer>(
      nn::WordPieceTokenizer::from_vocab_file(fs::path(c.model.path) / "vocab.txt", {c.model.lower_case, 100}));
  t.encode = [wp](std::string_view text, int64_t n) { return wp->encode(text, n); };
  t.pieces = [wp](std::string_view text) { return wp->tokenize_ids(text); };
  t.pad = wp->pad_id();
  t.cls = wp->cls_id();
  t.sep = wp->sep_id();
  return t;
}

// The classifier's trainable head: its parameters by name, with requires_grad.
std::vector<std::pair<std::string, at::Tensor>> head_params(nn::BertClassifier& model) {
  std::vector<std::pair<std::string, at::Tensor>> head;
  for (const auto& name : model.head_names()) {
    model.param(name).set_requires_grad(true);
    head.emplace_back(name, model.param(name));
  }
  return head;
}

// Tokenized examples; labels mapped to ids (InputError for a label outside the set).
struct Encoded {
  std::vector<nn::Encoding> enc;
  std::vector<int64_t> label;  // -1 when unlabeled
  std::vector<std::string> text;
};

Encoded encode(const std::vector<nn::LabeledText>& rows, const TextTokenizer& tok,
               const std::vector<std::string>& labels, int64_t max_len, const std::string& source, bool need_label) {
  Encoded e;
  for (size_t i = 0; i < rows.size(); ++i) {
    e.enc.push_back(tok.encode(rows[i].text, max_len));
    e.text.push_back(rows[i].text);
    int64_t id = -1;
    if (!rows[i].label.empty()) {
      auto it = std::find(labels.begin(), labels.end(), rows[i].label);
      if (it == labels.end()) {
        if (need_label) {
          throw core::InputError(source + ":" + std::to_string(rows[i].line) + ": label \"" + rows[i].label +
                                 "\", which is not among the model's " + std::to_string(labels.size()) + " labels");
        }
      } else {
        id = it - labels.begin();
      }
    }
    e.label.push_back(id);
  }
  return e;
}

struct Batch {
  at::Tensor ids, mask, labels;
  int64_t tokens = 0;
};

Batch make_batch(const Encoded& e, const std::vector<size_t>& idx, int64_t pad_id, const c10::Device& dev) {
  size_t L = 0;
  for (size_t i : idx) L = std::max(L, e.enc[i].ids.size());
  const auto B = static_cast<int64_t>(idx.size());
  at::Tensor ids = at::full({B, static_cast<int64_t>(L)}, pad_id, at::kLong);
  at::Tensor mask = at::zeros({B, static_cast<int64_t>(L)}, at::kLong);
  at::Tensor lab = at::empty({B}, at::kLong);
  auto pi = ids.accessor<int64_t, 2>();
  auto pm = mask.accessor<int64_t, 2>();
  Batch b;
  for (int64_t r = 0; r < B; ++r) {
    const auto& en = e.enc[idx[static_cast<size_t>(r)]];
    for (size_t t = 0; t < en.ids.size(); ++t) {
      pi[r][static_cast<int64_t>(t)] = en.ids[t];
      pm[r][static_cast<int64_t>(t)] = 1;
    }
    b.tokens += static_cast<int64_t>(en.ids.size());
    lab[r] = std::max<int64_t>(0, e.label[idx[static_cast<size_t>(r)]]);
  }
  b.ids = ids.to(dev);
  b.mask = mask.to(dev);
  b.labels = lab.to(dev);
  return b;
}

struct EvalResult {
  double loss = 0, accuracy = 0;
  int64_t n = 0;
  at::Tensor probs;  // [N, C] on CPU
};

EvalResult evaluate(const nn::TransformerModel& model, const Encoded& data, int64_t batch, int64_t pad_id,
                    const c10::Device& dev, bool labeled = true) {
  c10::NoGradGuard ng;
  EvalResult r;
  std::vector<at::Tensor> probs;
  double loss_sum = 0;
  int64_t correct = 0;
  const size_t N = data.enc.size();
  for (size_t s = 0; s < N; s += static_cast<size_t>(batch)) {
    std::vector<size_t> idx(std::min(N - s, static_cast<size_t>(batch)));
    std::iota(idx.begin(), idx.end(), s);
    Batch b = make_batch(data, idx, pad_id, dev);
    at::Tensor logits = model.forward(b.ids, b.mask, {}, false);
    probs.push_back(at::softmax(logits, -1).to(at::kCPU));
    if (labeled) {
      loss_sum += at::cross_entropy_loss(logits, b.labels).item<double>() * static_cast<double>(idx.size());
      correct += logits.argmax(-1).eq(b.labels).sum().item<int64_t>();
    }
  }
  r.n = static_cast<int64_t>(N);
  r.probs = at::cat(probs);
  if (labeled && N > 0) {
    r.loss = loss_sum / static_cast<double>(N);
    r.accuracy = static_cast<double>(correct) / static_cast<double>(N);
  }
  return r;
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

std::string model_type(const FinetuneConfig& c) {
  const fs::path p = fs::path(c.model.path) / "config.json";
  if (!fs::is_regular_file(p)) throw core::InputError(p.string() + ": no such file (model.path must be a Hugging Face folder)");
  json j;
  try {
    j = core::parse_json_bounded(core::read_file(p));
  } catch (const std::exception& e) {
    throw core::InputError(p.string() + ": not valid JSON (" + e.what() + ")");
  }
  const std::string t = j.is_object() && j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "";
  if (t != "bert" && t != "roberta" && t != "llama") {
    throw core::InputError(p.string() + ": field 'model_type': expected \"bert\", \"roberta\" or \"llama\", found " +
                           (t.empty() ? std::string("none") : "\"" + t + "\""));
  }
  return t;
}

// The LLaMA folder's SentencePiece tokenizer when it has a tokenizer.model (else id data only).
// Its pieces must fit the model's embedding table (InputError naming the file otherwise).
std::optional<nn::SentencePieceTokenizer> load_spm(const FinetuneConfig& c, int64_t vocab) {
  const fs::path file = fs::path(c.model.path) / "tokenizer.model";
  if (!fs::exists(file)) return std::nullopt;
  auto tok = nn::SentencePieceTokenizer::from_folder(c.model.path);
  if (tok.vocab_size() > vocab) {
    throw core::InputError(file.string() + ": " + std::to_string(tok.vocab_size()) + " pieces, but the model has " +
                           std::to_string(vocab) + " token embeddings");
  }
  return tok;
}

// The adapter named by the config (adapter.h5 or a PEFT folder), default OUT/adapter.h5.
AdapterState load_adapter(const Setup& s) {
  fs::path p = s.cfg.adapter.empty() ? s.out / "adapter.h5" : fs::path(s.cfg.adapter);
  if (fs::is_directory(p)) return import_peft(p);
  return load_adapter_h5(p);
}

struct Loaded {
  std::unique_ptr<nn::TransformerModel> model;
  LoraSet set;
  AdapterState state;
  int64_t max_positions = 0;
  int64_t vocab = 0;
};

Loaded load_model_with_adapter(const Setup& s) {
  AdapterState st = load_adapter(s);
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
  L.set = attach_state(*L.model, st, s.cfg.adapter.empty() ? (s.out / "adapter.h5").string() : s.cfg.adapter);
  L.model->to(s.device);
  L.state = std::move(st);
  return L;
}

}  // namespace

namespace {

// The trainable tensors with checkpoint names: "lora/<module>/A|B" and "head/<name>".
using Named = std::vector<std::pair<std::string, at::Tensor>>;

// Everything a run needs to continue bit-for-bit (with the same thread count and device):
// position in the schedule, data order and both random generators, metrics so far, the
// best parameters. The parameters and optimiser moments are saved beside it.
struct LoopState {
  int64_t step = 0, best_step = -1, bad_evals = 0, tokens = 0, window_n = 0;
  double best_acc = -1, window_loss = 0;
  std::vector<double> m_step, m_loss, m_ce, m_cons, m_lr, m_gnorm;
  std::vector<double> e_step, e_loss, e_acc, e_train_loss, e_tps;
  std::vector<at::Tensor> best;  // clones of the trainable tensors at the best evaluation
  std::vector<int64_t> order;
  int64_t cursor = 0;
  std::mt19937_64 rng;
  bool early_stopped = false;  // the run stopped early: a resume goes straight to the end
};

// The config that a checkpoint must agree with: the keys training reads, but not those
// that only steer how a run is sliced into invocations (train.run_steps,
// train.checkpoint_every) or what other subcommands do (data.test, generate, convert, ...).
json resume_key(const FinetuneConfig& c) {
  const json& r = c.resolved;
  json k = {{"seed", c.seed}};
  for (const char* part : {"model", "lora", "dropout", "train"}) {
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

// The first key path where two configs differ ("train.lr"), "" when equal.
std::string first_difference(const json& a, const json& b, const std::string& prefix = "") {
  if (a.is_object() && b.is_object()) {
    for (const auto& [k, v] : a.items()) {
      const std::string p = prefix.empty() ? k : prefix + "." + k;
      if (!b.contains(k)) return p;
      std::string d = first_difference(v, b[k], p);
      if (!d.empty()) return d;
    }
    for (const auto& [k, v] : b.items()) {
      if (!a.contains(k)) return prefix.empty() ? k : prefix + "." + k;
    }
    return "";
  }
  return a == b ? "" : (prefix.empty() ? "(root)" : prefix);
}

// The random generator dropout draws from on `dev` (CUDA has its own).
at::Generator device_generator(const c10::Device& dev) {
  return dev.is_cuda() ? at::globalContext().defaultGenerator(dev) : at::detail::getDefaultCPUGenerator();
}

void save_checkpoint(const fs::path& path, const LoopState& st, const Named& params, const nn::AdamW& opt_lora,
                     const nn::AdamW& opt_head, const FinetuneConfig& c, const c10::Device& dev, uint64_t data_hash) {
  core::H5Writer w(path, {kProgram, c.resolved.dump()});
  w.set_attr("/", "resume_key", resume_key(c).dump());
  w.set_attr("/", "data_hash", std::to_string(data_hash));
  w.set_attr("/", "device", dev.str());
  w.set_attr("/", "threads", static_cast<int64_t>(at::get_num_threads()));
  w.set_attr("/", "early_stopped", static_cast<int64_t>(st.early_stopped));
  w.set_attr("/", "step", st.step);
  w.set_attr("/", "best_step", st.best_step);
  w.set_attr("/", "bad_evals", st.bad_evals);
  w.set_attr("/", "tokens", st.tokens);
  w.set_attr("/", "window_n", st.window_n);
  w.set_attr("/", "best_accuracy", st.best_acc);
  w.set_attr("/", "window_loss", st.window_loss);
  w.set_attr("/", "cursor", st.cursor);
  w.set_attr("/", "adam_steps_lora", opt_lora.steps());
  w.set_attr("/", "adam_steps_head", opt_head.steps());
  std::ostringstream rng;
  rng << st.rng;
  w.set_attr("/", "data_rng", rng.str());
  w.write("/order", std::span<const int64_t>(st.order));
  tensor::write_tensor(w, "/torch_rng", at::detail::getDefaultCPUGenerator().get_state().to(at::kLong));
  if (dev.is_cuda()) tensor::write_tensor(w, "/device_rng", device_generator(dev).get_state().to(at::kLong));
  const std::pair<const char*, const std::vector<double>*> series[] = {
      {"/metrics/step", &st.m_step}, {"/metrics/loss", &st.m_loss}, {"/metrics/ce", &st.m_ce},
      {"/metrics/consistency", &st.m_cons}, {"/metrics/lr", &st.m_lr}, {"/metrics/grad_norm", &st.m_gnorm},
      {"/eval/step", &st.e_step}, {"/eval/loss", &st.e_loss}, {"/eval/accuracy", &st.e_acc},
      {"/eval/train_loss", &st.e_train_loss}, {"/eval/tokens_per_second", &st.e_tps}};
  for (const auto& [name, v] : series) w.write(name, std::span<const double>(*v));
  for (size_t i = 0; i < params.size(); ++i) {
    tensor::write_tensor(w, "/params/" + params[i].first, params[i].second);
    if (!st.best.empty()) tensor::write_tensor(w, "/best/" + params[i].first, st.best[i]);
  }
  auto moments = [&](const nn::AdamW& o, const std::string& g) {
    for (size_t i = 0; i < o.first_moments().size(); ++i) {
      tensor::write_tensor(w, g + "/m/" + std::to_string(i), o.first_moments()[i]);
      tensor::write_tensor(w, g + "/v/" + std::to_string(i), o.second_moments()[i]);
    }
  };
  moments(opt_lora, "/adam/lora");
  moments(opt_head, "/adam/head");
  w.commit();
}

void load_checkpoint(const fs::path& path, LoopState& st, Named& params, nn::AdamW& opt_lora, nn::AdamW& opt_head,
                     const FinetuneConfig& c, const c10::Device& dev, uint64_t data_hash) {
  if (!fs::exists(path)) {
    throw core::InputError(path.string() + ": no such file (nothing to resume: run train without --resume first)");
  }
  core::H5Reader r(path);
  const std::string src = path.string();
  json saved;
  try {
    saved = json::parse(r.attr_string("/", "resume_key"));
  } catch (const json::exception&) {
    throw core::InputError(src + ": attribute 'resume_key': expected the JSON config of the run, found unreadable text");
  }
  const std::string diff = first_difference(resume_key(c), saved);
  if (!diff.empty()) {
    throw core::ConfigError(src + ": written by a run with a different config (first difference at key '" + diff +
                            "'); resume with the same config, or start afresh in another --out");
  }
  if (r.attr_string("/", "data_hash") != std::to_string(data_hash)) {
    throw core::InputError(src + ": written for other training data than " + c.data.train +
                           " (the examples or their labels changed since); start afresh in another --out");
  }
  if (r.attr_string("/", "device") != dev.str()) {
    throw core::ConfigError(src + ": written on device " + r.attr_string("/", "device") + ", resumed with --device " +
                            dev.str() + "; resume on the same device");
  }
  if (r.attr_int("/", "threads") != at::get_num_threads()) {
    log_info("warning: " + src + " was written with " + std::to_string(r.attr_int("/", "threads")) +
             " threads, this run has " + std::to_string(at::get_num_threads()) +
             ": the result will not be bit-for-bit that of an uninterrupted run");
  }
  st.early_stopped = r.attr_int("/", "early_stopped") != 0;
  st.step = r.attr_int("/", "step");
  st.best_step = r.attr_int("/", "best_step");
  st.bad_evals = r.attr_int("/", "bad_evals");
  st.tokens = r.attr_int("/", "tokens");
  st.window_n = r.attr_int("/", "window_n");
  st.best_acc = r.attr_double("/", "best_accuracy");
  st.window_loss = r.attr_double("/", "window_loss");
  st.cursor = r.attr_int("/", "cursor");
  std::istringstream rng(r.attr_string("/", "data_rng"));
  rng >> st.rng;
  if (!rng) throw core::InputError(src + ": attribute 'data_rng': expected a mt19937_64 state, found unreadable text");
  st.order = r.read_i64("/order");
  if (st.cursor < 0 || st.cursor > static_cast<int64_t>(st.order.size())) {
    throw core::InputError(src + ": attribute 'cursor' " + std::to_string(st.cursor) + " outside the data order");
  }
  {
    std::vector<int64_t> sorted = st.order;
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i < sorted.size(); ++i) {
      if (sorted[i] != static_cast<int64_t>(i)) {
        throw core::InputError(src + ": /order: expected a permutation of 0.." + std::to_string(sorted.size()) +
                               " - 1, found a repeated or out-of-range index");
      }
    }
  }
  at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle on the shared generator
  gen.set_state(tensor::read_tensor(r, "/torch_rng").to(at::kByte));
  if (dev.is_cuda()) {
    at::Generator dgen = device_generator(dev);
    dgen.set_state(tensor::read_tensor(r, "/device_rng").to(at::kByte));
  }
  st.m_step = r.read_f64("/metrics/step");
  st.m_loss = r.read_f64("/metrics/loss");
  st.m_ce = r.read_f64("/metrics/ce");
  st.m_cons = r.read_f64("/metrics/consistency");
  st.m_lr = r.read_f64("/metrics/lr");
  st.m_gnorm = r.read_f64("/metrics/grad_norm");
  st.e_step = r.read_f64("/eval/step");
  st.e_loss = r.read_f64("/eval/loss");
  st.e_acc = r.read_f64("/eval/accuracy");
  st.e_train_loss = r.read_f64("/eval/train_loss");
  st.e_tps = r.read_f64("/eval/tokens_per_second");
  c10::NoGradGuard ng;
  st.best.clear();
  const bool has_best = r.has("/best/" + params.front().first);
  for (auto& [name, p] : params) {
    at::Tensor t = tensor::read_tensor(r, "/params/" + name);
    if (!t.sizes().equals(p.sizes())) {
      throw core::InputError(src + ": /params/" + name + " has shape " + c10::str(t.sizes()) + ", expected " +
                             c10::str(p.sizes()));
    }
    p.copy_(t);
    if (has_best) {
      at::Tensor b = tensor::read_tensor(r, "/best/" + name);
      if (!b.sizes().equals(p.sizes())) {
        throw core::InputError(src + ": /best/" + name + " has shape " + c10::str(b.sizes()) + ", expected " +
                               c10::str(p.sizes()));
      }
      st.best.push_back(b.to(dev));
    }
  }
  auto moments = [&](nn::AdamW& o, const std::string& g, const char* steps_attr) {
    std::vector<at::Tensor> m, v;
    for (size_t i = 0; i < o.first_moments().size(); ++i) {
      m.push_back(tensor::read_tensor(r, g + "/m/" + std::to_string(i)));
      v.push_back(tensor::read_tensor(r, g + "/v/" + std::to_string(i)));
    }
    o.load_state(m, v, r.attr_int("/", steps_attr), src);
  };
  moments(opt_lora, "/adam/lora", "adam_steps_lora");
  moments(opt_head, "/adam/head", "adam_steps_head");
}

// Validation numbers of one evaluation; `score` is what model selection maximises
// (classification: accuracy; causal LM: minus the loss).
struct EvalNumbers {
  double loss = 0, accuracy = 0, score = 0;
};

// What the training loop needs from a task: its size, the training loss of a batch (with
// dropout) and evaluation in eval mode on the validation and training sets.
struct TaskOps {
  bool lm = false;
  int64_t n = 0;
  std::function<LossParts(const std::vector<size_t>& idx, int64_t& tokens)> batch_loss;
  std::function<EvalNumbers()> eval_valid;  // empty: no validation set
  std::function<EvalNumbers()> eval_train;
  std::vector<std::string> labels;          // classification only
  uint64_t data_hash = 0;                   // of the encoded training set: a resume must see the same
};

// FNV-1a over 64-bit words: the fingerprint of an encoded training set.
struct DataHash {
  uint64_t h = 1469598103934665603ULL;
  void add(int64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= static_cast<uint64_t>(v >> (8 * i)) & 0xffU;
      h *= 1099511628211ULL;
    }
  }
  template <class Seq>
  void add_all(const Seq& seq) {
    add(static_cast<int64_t>(seq.size()));
    for (auto v : seq) add(static_cast<int64_t>(v));
  }
};

// The shared training loop: AdamW on the adapters (and the head, when `head` is not
// empty) with warm-up and decay, clipping, accumulation, evaluation with best-model
// selection and early stopping, checkpoints and --resume, the artifacts at the end.
int run_training(const core::CommonOptions& opts, const Setup& s, nn::TransformerModel& model, LoraSet& set,
                 const std::vector<std::pair<std::string, at::Tensor>>& head, const TaskOps& task) {
  const auto& c = s.cfg;
  const bool resume = opts.flag("resume");
  Named trainable;
  for (auto& [name, ad] : set.adapters) {
    ad->A = ad->A.detach().to(s.device).set_requires_grad(true);
    ad->B = ad->B.detach().to(s.device).set_requires_grad(true);
    trainable.emplace_back("lora/" + name + "/A", ad->A);
    trainable.emplace_back("lora/" + name + "/B", ad->B);
  }
  std::vector<at::Tensor> lora_params, head_params;
  for (const auto& [name, p] : trainable) lora_params.push_back(p);
  for (const auto& [name, p] : head) {
    head_params.push_back(p);
    trainable.emplace_back("head/" + name, p);
  }
  std::vector<at::Tensor> all_params;
  int64_t n_trainable = 0;
  for (const auto& [name, p] : trainable) {
    all_params.push_back(p);
    n_trainable += p.numel();
  }
  nn::AdamW opt_lora(lora_params, {0.9, 0.999, 1e-8, c.train.weight_decay});
  nn::AdamW opt_head(head_params, {0.9, 0.999, 1e-8, c.train.weight_decay});

  const int64_t N = task.n;
  const int64_t per_step = c.train.batch_size * c.train.grad_accum;
  const int64_t steps_per_epoch = std::max<int64_t>(1, (N + per_step - 1) / per_step);
  const int64_t total = c.train.max_steps > 0 ? c.train.max_steps : c.train.epochs * steps_per_epoch;
  const auto warmup = static_cast<int64_t>(c.train.warmup_ratio * static_cast<double>(total));
  const double head_lr = c.train.head_lr > 0 ? c.train.head_lr : c.train.lr;
  const fs::path adapter_path = s.out / "adapter.h5";
  const fs::path ckpt_path = s.out / "checkpoint.h5";
  json resolved = c.resolved;  // the artifacts record the targets used (a model type's default when not given)
  resolved["lora"]["targets"] = set.cfg.targets;
  const std::string cfg_json = resolved.dump();

  LoopState st;
  st.best_acc = -std::numeric_limits<double>::infinity();
  st.rng.seed(c.seed);
  st.order.resize(static_cast<size_t>(N));
  std::iota(st.order.begin(), st.order.end(), 0);
  std::shuffle(st.order.begin(), st.order.end(), st.rng);
  if (resume) {
    load_checkpoint(ckpt_path, st, trainable, opt_lora, opt_head, c, s.device, task.data_hash);
    if (static_cast<int64_t>(st.order.size()) != N) {
      throw core::InputError(ckpt_path.string() + ": data order of " + std::to_string(st.order.size()) +
                             " examples, but " + c.data.train + " has " + std::to_string(N));
    }
    log_info("resuming at step " + std::to_string(st.step) + " of " + std::to_string(total) + " from " + ckpt_path.string());
  }
  log_info(std::to_string(N) + " examples" + (task.lm ? std::string(" (causal LM)") : ", " + std::to_string(task.labels.size()) + " labels") +
           ", " + std::to_string(set.adapters.size()) + " LoRA modules (r=" + std::to_string(c.lora.r) + ", s=" +
           f(c.lora.scale(), 3) + "), " + std::to_string(n_trainable) + " trainable parameters, dropout preset " +
           c.dropout.preset + " (" + std::to_string(c.dropout.sites.sites.size()) + " sites, consistency " +
           to_string(c.dropout.consistency) + "), " + std::to_string(total) + " steps of " + std::to_string(per_step) +
           " examples");

  const int64_t first_step = st.step;
  bool stopped_early = st.early_stopped;
  core::Timer timer;
  int64_t tokens_here = 0;  // this invocation's tokens (tok/s)
  core::Progress progress("train", static_cast<uint64_t>(total), opts.progress_mode(), opts.quiet);
  auto tps = [&] { return static_cast<double>(tokens_here) / std::max(1e-9, timer.seconds()); };
  auto checkpoint = [&] {
    fs::create_directories(s.out);
    save_checkpoint(ckpt_path, st, trainable, opt_lora, opt_head, c, s.device, task.data_hash);
  };

  auto run_eval = [&](int64_t at_step) {
    if (!task.eval_valid) return;
    EvalNumbers r = task.eval_valid();
    st.e_step.push_back(static_cast<double>(at_step));
    st.e_loss.push_back(r.loss);
    st.e_acc.push_back(r.accuracy);
    st.e_train_loss.push_back(st.window_n ? st.window_loss / static_cast<double>(st.window_n) : std::nan(""));
    st.e_tps.push_back(tps());
    st.window_loss = 0;
    st.window_n = 0;
    if (r.score > st.best_acc) {
      st.best_acc = r.score;
      st.best_step = at_step;
      st.bad_evals = 0;
      st.best.clear();  // kept in memory (and in checkpoints); the adapter is written once at the end
      for (const auto& [name, p] : trainable) st.best.push_back(p.detach().clone());
    } else {
      ++st.bad_evals;
    }
  };

  while (st.step < total && !stopped_early) {
    if (core::stop_requested()) {
      if (st.step > first_step) checkpoint();
      throw core::RuntimeFailure("interrupted at step " + std::to_string(st.step) + " of " + std::to_string(total) +
                                 (st.step > first_step ? "; wrote " + ckpt_path.string() + ", continue with train --resume"
                                                       : "; no artifact written"));
    }
    if (c.train.run_steps > 0 && st.step - first_step >= c.train.run_steps) break;
    const double lr_f = nn::lr_factor(st.step, total, warmup, c.train.schedule);
    double loss_acc = 0, ce_acc = 0, cons_acc = 0;
    for (int64_t micro = 0; micro < c.train.grad_accum; ++micro) {
      std::vector<size_t> idx;
      while (static_cast<int64_t>(idx.size()) < std::min(c.train.batch_size, N)) {
        if (st.cursor == static_cast<int64_t>(st.order.size())) {
          std::shuffle(st.order.begin(), st.order.end(), st.rng);
          st.cursor = 0;
        }
        idx.push_back(static_cast<size_t>(st.order[static_cast<size_t>(st.cursor++)]));
      }
      int64_t tokens = 0;
      LossParts lp = task.batch_loss(idx, tokens);
      (lp.loss / static_cast<double>(c.train.grad_accum)).backward();
      loss_acc += lp.loss.item<double>() / static_cast<double>(c.train.grad_accum);
      ce_acc += lp.ce / static_cast<double>(c.train.grad_accum);
      cons_acc += lp.consistency / static_cast<double>(c.train.grad_accum);
      st.tokens += tokens;  // input tokens, once even when a preset runs two passes
      tokens_here += tokens;
    }
    if (!std::isfinite(loss_acc)) throw core::RuntimeFailure("training loss is not finite at step " + std::to_string(st.step + 1));
    const double gnorm = nn::clip_grad_norm(all_params, c.train.clip_norm);
    opt_lora.step(c.train.lr * lr_f);
    if (!head_params.empty()) opt_head.step(head_lr * lr_f);
    opt_lora.zero_grad();
    opt_head.zero_grad();
    ++st.step;
    st.m_step.push_back(static_cast<double>(st.step));
    st.m_loss.push_back(loss_acc);
    st.m_ce.push_back(ce_acc);
    st.m_cons.push_back(cons_acc);
    st.m_lr.push_back(c.train.lr * lr_f);
    st.m_gnorm.push_back(gnorm);
    st.window_loss += loss_acc;
    ++st.window_n;
    progress.update(static_cast<uint64_t>(st.step), "loss " + f(loss_acc, 3) + " | " + f(tps(), 0) + " tok/s");
    bool evaluated = false;
    if (c.train.eval_every > 0 && st.step % c.train.eval_every == 0 && st.step < total) {
      run_eval(st.step);
      evaluated = true;
      if (c.train.patience > 0 && st.bad_evals >= c.train.patience) {
        log_info("early stop at step " + std::to_string(st.step) + ": no improvement in " +
                 std::to_string(st.bad_evals) + " evaluations");
        stopped_early = st.early_stopped = true;
        break;
      }
    }
    if (st.step < total && (evaluated || (c.train.checkpoint_every > 0 && st.step % c.train.checkpoint_every == 0))) {
      checkpoint();
    }
  }
  if (st.step < total && !stopped_early) {
    // train.run_steps reached: the run continues in a later invocation
    progress.finish();
    checkpoint();
    json summary = {{"status", "paused"}, {"steps", st.step}, {"total_steps", total}, {"checkpoint", ckpt_path.string()}};
    core::emit_result(opts, summary,
                      "ran " + std::to_string(st.step - first_step) + " steps (now at " + std::to_string(st.step) + " of " +
                          std::to_string(total) + "); wrote " + ckpt_path.string() + ", continue with train --resume\n");
    return 0;
  }
  // the last phase (final evaluations, artifacts) starts from a checkpoint, so a stop in it
  // loses no training
  if (st.step > first_step) checkpoint();
  auto stop_at_end = [&] {
    if (core::stop_requested()) {
      throw core::RuntimeFailure("interrupted in the final evaluation after step " + std::to_string(st.step) + "; " +
                                 ckpt_path.string() + " holds the run, continue with train --resume");
    }
  };
  if (!stopped_early) run_eval(st.step);
  progress.finish();
  stop_at_end();
  // final training-set numbers (eval mode) for the train-validation gap
  const EvalNumbers tr = task.eval_train();
  stop_at_end();
  const double secs = timer.seconds();
  if (!st.best.empty()) {
    c10::NoGradGuard ng;  // the adapter to keep: the parameters at the best evaluation
    for (size_t i = 0; i < trainable.size(); ++i) trainable[i].second.copy_(st.best[i]);
  }
  AdapterState best = state_of(model, set, task.labels, c.model.path);

  // the artifacts only now that training is over, each atomically: a run that fails or is
  // stopped earlier leaves no adapter.h5 or metrics.h5 (and an old good one intact)
  stop_at_end();
  fs::create_directories(s.out);
  save_adapter_h5(adapter_path, best, kProgram, cfg_json);
  const bool has_eval = !st.e_acc.empty();
  const double final_acc = has_eval ? st.e_acc.back() : -1.0;
  const double final_val_loss = has_eval ? st.e_loss.back() : -1.0;
  // the evaluation at the best step (its loss and accuracy), when there was one
  const auto best_at = std::find(st.e_step.begin(), st.e_step.end(), static_cast<double>(st.best_step));
  const bool has_best = has_eval && st.best_step >= 0 && best_at != st.e_step.end();
  const size_t best_i = static_cast<size_t>(best_at - st.e_step.begin());
  const double best_loss = has_best ? st.e_loss[best_i] : -1.0;
  const double best_acc = has_best ? st.e_acc[best_i] : -1.0;
  {
    core::H5Writer w(s.out / "metrics.h5", {kProgram, cfg_json});
    w.write("/metrics/step", std::span<const double>(st.m_step));
    w.write("/metrics/loss", std::span<const double>(st.m_loss));
    w.write("/metrics/ce", std::span<const double>(st.m_ce));
    w.write("/metrics/consistency", std::span<const double>(st.m_cons));
    w.write("/metrics/lr", std::span<const double>(st.m_lr));
    w.write("/metrics/grad_norm", std::span<const double>(st.m_gnorm));
    w.write("/eval/step", std::span<const double>(st.e_step));
    w.write("/eval/loss", std::span<const double>(st.e_loss));
    w.write("/eval/accuracy", std::span<const double>(st.e_acc));  // causal LM: next-token accuracy
    if (!task.labels.empty()) w.write_strings("/labels", task.labels);
    w.set_attr("/", "task", std::string(task.lm ? "causal-lm" : "classification"));
    w.set_attr("/", "best_accuracy", best_acc);
    w.set_attr("/", "best_loss", best_loss);
    w.set_attr("/", "best_step", st.best_step);
    w.set_attr("/", "final_accuracy", final_acc);
    w.set_attr("/", "final_loss", final_val_loss);
    w.set_attr("/", "final_train_accuracy", tr.accuracy);
    w.set_attr("/", "final_train_loss", tr.loss);
    w.set_attr("/", "steps", st.step);
    w.set_attr("/", "seconds", secs);
    w.set_attr("/", "tokens_per_second", tps());
    w.set_attr("/", "resumed_at_step", resume ? first_step : int64_t{-1});
    w.commit();
  }
  std::error_code ec;
  fs::remove(ckpt_path, ec);  // the run is complete: nothing left to resume
  json summary = {{"status", "done"},
                  {"task", task.lm ? "causal-lm" : "classification"},
                  {"steps", st.step},
                  {"preset", c.dropout.preset},
                  {"best_accuracy", best_acc},
                  {"best_loss", best_loss},
                  {"best_step", st.best_step},
                  {"final_accuracy", final_acc},
                  {"final_val_loss", final_val_loss},
                  {"final_train_accuracy", tr.accuracy},
                  {"final_train_loss", tr.loss},
                  {"final_loss", st.m_loss.empty() ? 0.0 : st.m_loss.back()},
                  {"trainable_parameters", n_trainable},
                  {"seconds", secs},
                  {"tokens_per_second", tps()},
                  {"adapter", adapter_path.string()},
                  {"metrics", (s.out / "metrics.h5").string()}};
  if (task.lm) {
    summary["best_perplexity"] = best_loss >= 0 ? std::exp(best_loss) : -1.0;
    summary["final_perplexity"] = final_val_loss >= 0 ? std::exp(final_val_loss) : -1.0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"step", "train loss", "val loss", task.lm ? "val ppl" : "val acc", task.lm ? "tok acc" : "", "tok/s"}};
  if (!task.lm) rows[0].erase(rows[0].begin() + 4);
  for (size_t i = 0; i < st.e_step.size(); ++i) {
    std::vector<std::string> row = {std::to_string(static_cast<int64_t>(st.e_step[i])),
                                    std::isnan(st.e_train_loss[i]) ? "-" : f(st.e_train_loss[i]), f(st.e_loss[i])};
    if (task.lm) {
      row.push_back(f(std::exp(st.e_loss[i]), 3));
    }
    row.push_back(f(st.e_acc[i]));
    row.push_back(f(st.e_tps[i], 0));
    rows.push_back(std::move(row));
  }
  std::string text = core::format_table(rows);
  if (task.lm) {
    text += "validation loss: best " + f(best_loss) + " (perplexity " + f(best_loss >= 0 ? std::exp(best_loss) : -1.0, 3) +
            ", step " + std::to_string(st.best_step) + "), final " + f(final_val_loss) + "; train loss " + f(tr.loss) + "\n";
  } else {
    text += "validation accuracy: best " + f(best_acc) + " (step " + std::to_string(st.best_step) + "), final " +
            f(final_acc) + "; train accuracy " + f(tr.accuracy) + "\n";
  }
  text += "wrote " + adapter_path.string() + " and " + (s.out / "metrics.h5").string() + "\n";
  core::emit_result(opts, summary, text);
  return 0;
}

int train_classifier(const core::CommonOptions& opts, const Setup& s) {
  const auto& c = s.cfg;
  // inputs first: a bad file fails before any model work and before any artifact
  auto train_rows = nn::read_labeled_jsonl(c.data.train);
  std::vector<nn::LabeledText> valid_rows;
  if (!c.data.valid.empty()) valid_rows = nn::read_labeled_jsonl(c.data.valid);
  const auto labels = nn::label_set(train_rows, c.data.labels);
  if (labels.size() < 2) throw core::InputError(c.data.train + ": expected at least 2 distinct labels, found " + std::to_string(labels.size()));
  auto tok = load_tokenizer(c);
  Encoded train = encode(train_rows, tok, labels, c.model.max_length, c.data.train, true);
  Encoded valid = encode(valid_rows, tok, labels, c.model.max_length, c.data.valid, true);

  auto model = nn::BertClassifier::load(c.model.path, static_cast<int64_t>(labels.size()), c.seed);
  check_length(model.config().max_length(), c, "model.max_length", c.model.max_length);
  LoraSet set = attach_lora(model, c.lora, c.seed + 17);
  model.to(s.device);
  const auto head = head_params(model);
  TaskOps task;
  task.n = static_cast<int64_t>(train.enc.size());
  task.labels = labels;
  DataHash dh;
  for (size_t i = 0; i < train.enc.size(); ++i) {
    dh.add_all(train.enc[i].ids);
    dh.add(train.label[i]);
  }
  task.data_hash = dh.h;
  task.batch_loss = [&](const std::vector<size_t>& idx, int64_t& tokens) {
    Batch b = make_batch(train, idx, tok.pad, s.device);
    tokens = b.tokens;
    return classification_loss(model, b.ids, b.mask, b.labels, c.dropout, true);
  };
  auto numbers = [&](const Encoded& d) {
    EvalResult r = evaluate(model, d, c.train.eval_batch_size, tok.pad, s.device);
    return EvalNumbers{r.loss, r.accuracy, r.accuracy};
  };
  if (!valid.enc.empty()) task.eval_valid = [&] { return numbers(valid); };
  task.eval_train = [&] { return numbers(train); };
  return run_training(opts, s, model, set, head, task);
}

int train_causal_lm(const core::CommonOptions& opts, const Setup& s) {
  const auto& c = s.cfg;
  auto train_rows = nn::read_lm_jsonl(c.data.train);
  std::vector<nn::LmExample> valid_rows;
  if (!c.data.valid.empty()) valid_rows = nn::read_lm_jsonl(c.data.valid);
  auto model = nn::LlamaForCausalLM::load(c.model.path);
  check_length(model.config().max_position_embeddings, c, "model.max_length", c.model.max_length);
  const int64_t V = model.config().vocab_size;
  const auto tok = load_spm(c, V);
  const int64_t pad = tok && tok->pad_id() >= 0 ? tok->pad_id() : 0;  // padded keys are masked: any id will do
  LmSequences train = encode_lm(train_rows, tok ? &*tok : nullptr, V, c.model.max_length, c.data.train);
  LmSequences valid = encode_lm(valid_rows, tok ? &*tok : nullptr, V, c.model.max_length, c.data.valid);
  if (train.truncated + valid.truncated > 0) {
    log_info(std::to_string(train.truncated + valid.truncated) + " examples cut to model.max_length = " +
             std::to_string(c.model.max_length) + " tokens");
  }
  LoraConfig lc = c.lora;
  if (!c.lora_targets_given) lc.targets = {"q_proj", "v_proj"};  // PEFT's default for LLaMA
  LoraSet set = attach_lora(model, lc, c.seed + 17);
  model.to(s.device);
  TaskOps task;
  task.lm = true;
  task.n = static_cast<int64_t>(train.ids.size());
  DataHash dh;
  for (size_t i = 0; i < train.ids.size(); ++i) {
    dh.add_all(train.ids[i]);
    dh.add_all(train.target[i]);
  }
  task.data_hash = dh.h;
  task.batch_loss = [&](const std::vector<size_t>& idx, int64_t& tokens) {
    LmBatch b = make_lm_batch(train, idx, pad, s.device);
    tokens = b.tokens;
    return causal_lm_loss(model, b.ids, b.mask, b.loss_mask, c.dropout, true);
  };
  auto numbers = [&](const LmSequences& d) {
    LmEval e = evaluate_lm(model, d, c.train.eval_batch_size, pad, s.device);
    return EvalNumbers{e.loss, e.token_accuracy, -e.loss};
  };
  if (!valid.ids.empty()) task.eval_valid = [&] { return numbers(valid); };
  task.eval_train = [&] { return numbers(train); };
  return run_training(opts, s, model, set, {}, task);
}

}  // namespace

int finetune_train(const core::CommonOptions& opts) {
  Setup s = setup(opts);
  return model_type(s.cfg) == "llama" ? train_causal_lm(opts, s) : train_classifier(opts, s);
}

int finetune_eval(const core::CommonOptions& opts) {
  Setup s = setup(opts);
  const auto& c = s.cfg;
  const std::string path = c.data.test.empty() ? c.data.valid : c.data.test;
  const bool lm = model_type(c) == "llama";
  json summary;
  std::vector<std::vector<std::string>> table;
  if (lm) {
    auto rows = nn::read_lm_jsonl(path);
    Loaded L = load_model_with_adapter(s);
    check_length(L.max_positions, c, "model.max_length", c.model.max_length);
    const auto tok = load_spm(c, L.vocab);
    const int64_t pad = tok && tok->pad_id() >= 0 ? tok->pad_id() : 0;
    LmSequences data = encode_lm(rows, tok ? &*tok : nullptr, L.vocab, c.model.max_length, path);
    LmEval e = evaluate_lm(*L.model, data, c.train.eval_batch_size, pad, s.device);
    summary = {{"data", path}, {"examples", data.ids.size()}, {"target_tokens", e.targets}, {"loss", e.loss},
               {"perplexity", e.perplexity}, {"token_accuracy", e.token_accuracy}};
    table = {{"data", "examples", "tokens", "loss", "perplexity", "token acc"},
             {path, std::to_string(data.ids.size()), std::to_string(e.targets), f(e.loss), f(e.perplexity, 3),
              f(e.token_accuracy)}};
  } else {
    auto rows = nn::read_labeled_jsonl(path);
    Loaded L = load_model_with_adapter(s);
    auto tok = load_tokenizer(c);
    check_length(L.max_positions, c, "model.max_length", c.model.max_length);
    Encoded data = encode(rows, tok, L.state.labels, c.model.max_length, path, true);
    EvalResult r = evaluate(*L.model, data, c.train.eval_batch_size, tok.pad, s.device);
    summary = {{"data", path}, {"examples", r.n}, {"accuracy", r.accuracy}, {"loss", r.loss}};
    table = {{"data", "examples", "accuracy", "loss"}, {path, std::to_string(r.n), f(r.accuracy), f(r.loss)}};
  }
  fs::create_directories(s.out);
  json artifact = summary;
  artifact["program"] = kProgram;
  artifact["version"] = std::string(core::version());
  artifact["config"] = c.resolved;
  core::write_file_atomic(s.out / "eval.json", artifact.dump(2) + "\n");
  core::emit_result(opts, summary, core::format_table(table) + "wrote " + (s.out / "eval.json").string() + "\n");
  return 0;
}

namespace {

// predict with a causal LM: the greedy continuation of every prompt.
int predict_causal_lm(const core::CommonOptions& opts, const Setup& s, const std::string& path) {
  const auto& c = s.cfg;
  auto rows = nn::read_lm_jsonl(path, true);
  Loaded L = load_model_with_adapter(s);
  check_length(L.max_positions, c, "model.max_length", c.model.max_length);
  const auto tok = load_spm(c, L.vocab);
  LmSequences data = encode_lm(rows, tok ? &*tok : nullptr, L.vocab, c.model.max_length, path, true);
  const int64_t eos = tok ? tok->eos_id() : -1;
  std::string lines;
  int64_t generated = 0;
  core::Progress progress("predict", data.ids.size(), opts.progress_mode(), opts.quiet);
  for (size_t i = 0; i < data.ids.size(); ++i) {
    core::throw_if_stop_requested();
    auto out = generate_greedy(*L.model, data.ids[i], c.generate.max_new_tokens, eos, c.model.max_length, s.device);
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

int finetune_predict(const core::CommonOptions& opts) {
  Setup s = setup(opts);
  const auto& c = s.cfg;
  const std::string path = !c.data.predict.empty() ? c.data.predict : c.data.test;
  if (model_type(c) == "llama") return predict_causal_lm(opts, s, path);
  auto rows = nn::read_labeled_jsonl(path, false);
  Loaded L = load_model_with_adapter(s);
  auto tok = load_tokenizer(c);
  check_length(L.max_positions, c, "model.max_length", c.model.max_length);
  Encoded data = encode(rows, tok, L.state.labels, c.model.max_length, path, false);
  EvalResult r = evaluate(*L.model, data, c.train.eval_batch_size, tok.pad, s.device, false);
  std::string lines;
  std::map<std::string, int64_t> counts;
  at::Tensor arg = r.probs.argmax(-1);
  for (int64_t i = 0; i < r.n; ++i) {
    const std::string& label = L.state.labels[static_cast<size_t>(arg[i].item<int64_t>())];
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

int finetune_merge(const core::CommonOptions& opts) {
  Setup s = setup(opts);
  Loaded L = load_model_with_adapter(s);
  // check on a few random rows that the merged model computes what the adapter did
  const int64_t V = L.vocab;
  at::Tensor ids = at::randint(std::min<int64_t>(1000, V / 2), V, {4, 16}, at::kLong).to(s.device);
  at::Tensor mask = at::ones({4, 16}, at::kLong).to(s.device);
  c10::NoGradGuard ng;
  at::Tensor before = L.model->forward(ids, mask);
  merge(*L.model, L.set);
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
    if (!L.state.labels.empty()) core::write_file_atomic(tmp / "labels.json", json(L.state.labels).dump() + "\n");
    core::throw_if_stop_requested();
  });
  core::emit_result(opts, json{{"merged", dir.string()}, {"modules", L.set.adapters.size()}, {"max_logit_difference", diff}},
       "merged " + std::to_string(L.set.adapters.size()) + " LoRA modules; max |logit difference| " + f(diff, 7) +
           "\nwrote " + dir.string() + "\n");
  return 0;
}

int finetune_export(const core::CommonOptions& opts) {
  Setup s = setup(opts);
  AdapterState st = load_adapter(s);
  const fs::path dir = s.out / "peft";
  core::replace_folder_atomic(dir, [&](const fs::path& tmp) { export_peft(tmp, st); });
  core::emit_result(opts, json{{"peft", dir.string()}, {"modules", st.ab.size()}, {"r", st.cfg.r}},
       "exported " + std::to_string(st.ab.size()) + " LoRA modules (r=" + std::to_string(st.cfg.r) + ") to " +
           dir.string() + "\n");
  return 0;
}

int finetune_convert(const core::CommonOptions& opts) {
  Setup s = setup(opts);
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

namespace {
// Peak resident set size of this process so far, in MiB (getrusage: ru_maxrss is in KiB on Linux).
double max_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}
}  // namespace

int finetune_bench(const core::CommonOptions& opts) {
  Setup s = setup(opts);
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
  LoraSet set = attach_lora(model, c.lora, c.seed + 17);
  model.to(s.device);
  std::vector<at::Tensor> params;
  for (const auto& [name, p] : head_params(model)) params.push_back(p);
  for (auto& [name, ad] : set.adapters) {
    ad->A = ad->A.detach().to(s.device).set_requires_grad(true);
    ad->B = ad->B.detach().to(s.device).set_requires_grad(true);
    params.push_back(ad->A);
    params.push_back(ad->B);
  }
  int64_t n_trainable = 0;
  for (const auto& p : params) n_trainable += p.numel();
  nn::AdamW opt(params, {0.9, 0.999, 1e-8, c.train.weight_decay});
  const double rss_loaded = max_rss_mib();

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
  json summary = {{"impl", "lora-finetune"},
                  {"preset", c.dropout.preset},
                  {"threads", at::get_num_threads()},
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
                  {"max_rss_mib", max_rss_mib()}};
  // JSON always: the bench scripts parse it
  std::cout << summary.dump() << "\n";
  std::cout.flush();
  return 0;
}

}  // namespace mlsys::lora
