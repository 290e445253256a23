// LoRA adapters, merge/unmerge and their files: HDF5 and the PEFT layout (see lora.hpp).
#include "lora/lora.hpp"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "core/json.hpp"
#include "nn/checkpoint.hpp"
#include "nn/structured_dropout.hpp"
#include "tensor/h5_tensor.hpp"
#include "tensor/safetensors.hpp"

namespace mlsys::lora {
namespace fs = std::filesystem;
using nlohmann::json;

double LoraConfig::scale() const {
  return rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

LoraAdapter::LoraAdapter(at::Tensor a, at::Tensor b, double s, double p)
    : A(std::move(a)), B(std::move(b)), scale(s), input_dropout(p) {}

at::Tensor LoraAdapter::delta(const at::Tensor& x, bool training) const {
  if (merged) return {};
  at::Tensor in = (training && input_dropout > 0) ? nn::drop_elements(x, input_dropout) : x;
  return at::linear(at::linear(in, A), B) * scale;
}

namespace {

// PEFT's rule: a target names the module whose path equals it or ends with "." + it.
bool target_matches(const std::string& module, const std::string& target) {
  return module == target || (module.size() > target.size() && module.ends_with(target) &&
                              module[module.size() - target.size() - 1] == '.');
}

}  // namespace

std::vector<std::string> resolve_targets(const std::vector<std::string>& linears, const std::vector<std::string>& targets,
                                         const std::string& output_layer) {
  std::vector<std::string> out;
  auto add = [&](const std::string& n) {
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  };
  for (const auto& t : targets) {
    if (t == "all-linear") {
      for (const auto& n : linears) {
        if (n != output_layer) add(n);
      }
      continue;
    }
    bool hit = false;
    for (const auto& n : linears) {
      if (target_matches(n, t)) {
        add(n);
        hit = true;
      }
    }
    if (!hit) {
      std::string some;
      for (size_t i = 0; i < std::min<size_t>(linears.size(), 6); ++i) some += (i ? ", " : "") + linears[i];
      throw core::ConfigError("key 'lora.targets': target module '" + t +
                              "' matches no Linear of the model (expected a module name or suffix such as " + some +
                              ", ..., or all-linear)");
    }
  }
  std::sort(out.begin(), out.end(), [&](const std::string& a, const std::string& b) {
    return std::find(linears.begin(), linears.end(), a) < std::find(linears.begin(), linears.end(), b);
  });
  return out;
}

LoraSet attach_lora(nn::TransformerModel& model, const LoraConfig& cfg, uint64_t seed) {
  LoraSet set{cfg, {}};
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& [n, t] : model.params()) t.set_requires_grad(false);
  for (const auto& name : resolve_targets(model.linear_names(), cfg.targets, model.output_layer())) {
    const at::Tensor& W = model.param(name + ".weight");
    const int64_t d_out = W.size(0), d_in = W.size(1);
    at::Tensor A;
    if (cfg.init == "gaussian") {
      A = at::normal(0.0, 1.0 / static_cast<double>(cfg.r), {cfg.r, d_in}, gen);
    } else {
      // kaiming_uniform(a=√5) on [r, d_in]: bound = √(6/((1+5)·d_in)) = 1/√d_in (PEFT's default)
      const double bound = 1.0 / std::sqrt(static_cast<double>(d_in));
      A = at::rand({cfg.r, d_in}, gen) * (2 * bound) - bound;
    }
    A = A.to(W.device()).set_requires_grad(true);
    at::Tensor B = at::zeros({d_out, cfg.r}, W.options()).set_requires_grad(true);
    auto ad = std::make_shared<LoraAdapter>(A, B, cfg.scale(), cfg.input_dropout);
    model.set_adapter(name, ad);
    set.adapters[name] = ad;
  }
  return set;
}

void merge(nn::TransformerModel& model, LoraSet& set) {
  c10::NoGradGuard g;
  for (auto& [name, ad] : set.adapters) {
    if (ad->merged) continue;
    // a tied weight (LLaMA's lm_head reading the embeddings) would change the other use too
    const at::Tensor& W = model.param(name + ".weight");
    for (const auto& [other, t] : model.params()) {
      if (other != name + ".weight" && t.is_same(W)) {
        throw core::ConfigError("cannot merge the adapter of '" + name + "': its weight is tied to '" + other +
                                "' (keep the adapter unmerged)");
      }
    }
    model.param(name + ".weight").add_(at::matmul(ad->B, ad->A) * ad->scale);
    ad->merged = true;
  }
}

void unmerge(nn::TransformerModel& model, LoraSet& set) {
  c10::NoGradGuard g;
  for (auto& [name, ad] : set.adapters) {
    if (!ad->merged) continue;
    model.param(name + ".weight").sub_(at::matmul(ad->B, ad->A) * ad->scale);
    ad->merged = false;
  }
}

AdapterState state_of(const nn::TransformerModel& model, const LoraSet& set, const std::vector<std::string>& labels,
                      const std::string& base_model) {
  AdapterState s;
  s.cfg = set.cfg;
  // copies (not views of the live parameters): a snapshot stays as it was while training goes on
  for (const auto& [name, ad] : set.adapters) s.ab[name] = {ad->A.detach().cpu().clone(), ad->B.detach().cpu().clone()};
  s.task_type = model.task_type();
  if (s.task_type == "SEQ_CLS") {
    s.head_module = model.output_layer();
    s.head_weight = model.param(s.head_module + ".weight").detach().cpu().clone();
    s.head_bias = model.param(s.head_module + ".bias").detach().cpu().clone();
    for (const auto& [name, t] : model.params()) {
      if (name.starts_with("classifier.") && name != s.head_module + ".weight" && name != s.head_module + ".bias") {
        s.head_extra[name] = t.detach().cpu().clone();
      }
    }
  }
  s.labels = labels;
  s.base_model = base_model;
  return s;
}

LoraSet attach_state(nn::TransformerModel& model, const AdapterState& state, const std::string& source) {
  if (state.task_type != model.task_type()) {
    throw core::InputError(source + ": adapter task_type " + state.task_type + " does not fit the model (" +
                           model.task_type() + ")");
  }
  LoraSet set{state.cfg, {}};
  const auto linears = model.linear_names();
  // target_modules must name modules of this model: an adapter trained for another
  // architecture is refused, not silently applied to nothing
  if (!state.targets_source.empty()) {
    for (const auto& t : state.cfg.targets) {
      if (t == "all-linear") continue;
      const bool hit = std::any_of(linears.begin(), linears.end(), [&](const std::string& n) { return target_matches(n, t); });
      if (!hit) {
        throw core::InputError(state.targets_source + ": expected modules of the model (such as " +
                               (linears.empty() ? std::string("none") : linears.front()) + "), found " +
                               core::short_json(t) + ", which names no Linear of " + source);
      }
    }
  }
  for (auto& [n, t] : model.params()) t.set_requires_grad(false);
  for (const auto& [name, ab] : state.ab) {
    if (std::find(linears.begin(), linears.end(), name) == linears.end()) {
      throw core::InputError(source + ": adapter module '" + name + "' is not a Linear of the model");
    }
    const at::Tensor& W = model.param(name + ".weight");
    if (ab.first.dim() != 2 || ab.second.dim() != 2 || ab.first.size(1) != W.size(1) || ab.second.size(0) != W.size(0) ||
        ab.first.size(0) != ab.second.size(1)) {
      throw core::InputError(source + ": adapter module '" + name + "': expected A [r," + std::to_string(W.size(1)) +
                             "] and B [" + std::to_string(W.size(0)) + ",r], found A " + nn::shape_str(ab.first.sizes()) +
                             " and B " + nn::shape_str(ab.second.sizes()));
    }
    auto ad = std::make_shared<LoraAdapter>(ab.first.to(W.device()).clone(), ab.second.to(W.device()).clone(),
                                            state.cfg.scale(), state.cfg.input_dropout);
    model.set_adapter(name, ad);
    set.adapters[name] = ad;
  }
  if (state.head_weight.defined() && model.task_type() == "SEQ_CLS") {
    const std::string out = model.output_layer();
    if (state.head_module != out) {
      throw core::InputError(source + ": the adapter's classifier head ends in '" + state.head_module +
                             "', the model's in '" + out + "' (an adapter of another architecture)");
    }
    const at::Tensor& hw = model.param(out + ".weight");
    if (state.head_weight.sizes() != hw.sizes()) {
      throw core::InputError(source + ": classifier head: expected shape " + nn::shape_str(hw.sizes()) + " (" +
                             std::to_string(hw.size(0)) + " labels), found " + nn::shape_str(state.head_weight.sizes()));
    }
    for (const auto& [name, t] : state.head_extra) {
      if (!model.params().contains(name) || model.param(name).sizes() != t.sizes()) {
        throw core::InputError(source + ": classifier tensor '" + name + "' does not fit the model");
      }
    }
    for (const auto& [name, p] : model.params()) {
      if (name.starts_with("classifier.") && name != out + ".weight" && name != out + ".bias" &&
          !state.head_extra.contains(name)) {
        throw core::InputError(source + ": the adapter's classifier head lacks '" + name + "'");
      }
    }
    model.param(out + ".weight") = state.head_weight.to(hw.device()).clone();
    model.param(out + ".bias") = state.head_bias.to(hw.device()).clone();
    for (const auto& [name, t] : state.head_extra) model.param(name) = t.to(hw.device()).clone();
  }
  return set;
}

// ------------------------------------------------------------------ adapter files

void check_adapter_tensors(const AdapterState& s, const std::string& file) {
  auto check = [&](const std::string& what, const at::Tensor& t, int64_t dims) {
    if (!t.defined()) throw core::InputError(file + ": " + what + ": missing");
    if (!at::isFloatingType(t.scalar_type())) {
      throw core::InputError(file + ": " + what + ": expected a floating-point tensor, found " +
                             std::string(c10::toString(t.scalar_type())));
    }
    if (t.dim() != dims) {
      throw core::InputError(file + ": " + what + ": expected a " + std::to_string(dims) + "-d tensor, found shape " +
                             nn::shape_str(t.sizes()));
    }
    if (!at::isfinite(t).all().item<bool>()) {
      throw core::InputError(file + ": " + what + ": expected finite values, found NaN or infinity");
    }
  };
  for (const auto& [m, ab] : s.ab) {
    check("module '" + m + "': lora_A", ab.first, 2);
    check("module '" + m + "': lora_B", ab.second, 2);
    if (ab.first.size(0) != s.cfg.r || ab.second.size(1) != s.cfg.r) {
      throw core::InputError(file + ": module '" + m + "': expected lora_A [r," + std::to_string(ab.first.size(1)) +
                             "] and lora_B [" + std::to_string(ab.second.size(0)) + ",r] with r=" +
                             std::to_string(s.cfg.r) + " (the adapter's config), found lora_A " +
                             nn::shape_str(ab.first.sizes()) + " and lora_B " + nn::shape_str(ab.second.sizes()));
    }
  }
  if (s.head_weight.defined() || s.head_bias.defined()) {
    check(s.head_module + ".weight", s.head_weight, 2);
    check(s.head_module + ".bias", s.head_bias, 1);
    if (s.head_bias.size(0) != s.head_weight.size(0)) {
      throw core::InputError(file + ": " + s.head_module + ".bias: expected shape [" +
                             std::to_string(s.head_weight.size(0)) + "] (one per label of the weight), found " +
                             nn::shape_str(s.head_bias.sizes()));
    }
  }
  for (const auto& [name, t] : s.head_extra) check(name, t, name.ends_with(".bias") ? 1 : 2);
}

// ------------------------------------------------------------------ HDF5

void save_adapter_h5(const fs::path& path, const AdapterState& s, const core::ArtifactInfo& info) {
  core::H5Writer w(path, info);
  for (const auto& [name, ab] : s.ab) {
    tensor::write_tensor(w, "/lora/" + name + "/A", ab.first);
    tensor::write_tensor(w, "/lora/" + name + "/B", ab.second);
  }
  write_adapter_common(w, s);
  w.commit();
}

void write_adapter_common(core::H5Writer& w, const AdapterState& s) {
  if (s.head_weight.defined()) {
    tensor::write_tensor(w, "/head/weight", s.head_weight);
    tensor::write_tensor(w, "/head/bias", s.head_bias);
    if (s.head_module != "classifier") w.write_strings("/head/module", {s.head_module});
    for (const auto& [name, t] : s.head_extra) tensor::write_tensor(w, "/head/extra/" + name, t);
  }
  w.write_strings("/labels", s.labels);
  w.write_strings("/targets", s.cfg.targets);
  w.set_attr("/", "r", s.cfg.r);
  w.set_attr("/", "alpha", s.cfg.alpha);
  w.set_attr("/", "rslora", static_cast<int64_t>(s.cfg.rslora));
  w.set_attr("/", "lora_dropout", s.cfg.input_dropout);
  w.set_attr("/", "base_model", s.base_model);
  w.write_strings("/task_type", {s.task_type});
}

AdapterState load_adapter_h5(const fs::path& path) {
  if (!fs::exists(path)) throw core::InputError(path.string() + ": adapter file not found (run lora-finetune train first)");
  core::H5Reader r(path);
  AdapterState s;
  if (!r.has("/lora")) throw core::InputError(path.string() + ": not a lora-finetune adapter (expected a /lora group)");
  read_adapter_common(r, s, path.string());
  // module paths are nested groups: walk /lora down to the groups that hold A and B
  std::vector<std::string> stack = {"/lora"};
  while (!stack.empty()) {
    std::string g = stack.back();
    stack.pop_back();
    for (const auto& m : r.list(g)) {
      const std::string p = g + "/" + m;
      if (m == "A" || m == "B") continue;
      if (r.has(p + "/A") && r.has(p + "/B")) {
        s.ab[p.substr(6)] = {tensor::read_tensor(r, p + "/A"), tensor::read_tensor(r, p + "/B")};
      } else {
        stack.push_back(p);
      }
    }
  }
  read_adapter_head(r, s, path.string());
  s.targets_source = path.string() + ": /targets";
  check_adapter_tensors(s, path.string());
  return s;
}

void read_adapter_common(const core::H5Reader& r, AdapterState& s, const std::string& file) {
  const fs::path path = file;
  if (r.has("/task_type")) {
    auto tt = r.read_strings("/task_type");
    if (tt.size() != 1 || (tt[0] != "SEQ_CLS" && tt[0] != "CAUSAL_LM")) {
      throw core::InputError(path.string() + ": /task_type: expected SEQ_CLS or CAUSAL_LM");
    }
    s.task_type = tt[0];
  }
  if (s.task_type == "SEQ_CLS" && !r.has("/head/weight")) {
    throw core::InputError(path.string() + ": a SEQ_CLS adapter needs the /head group (classifier weight and bias)");
  }
  s.cfg.r = r.attr_int("/", "r");
  s.cfg.alpha = r.attr_double("/", "alpha");
  s.cfg.rslora = r.attr_int("/", "rslora") != 0;
  s.cfg.input_dropout = r.attr_double("/", "lora_dropout");
  s.base_model = r.attr_string("/", "base_model");
  s.cfg.targets = r.read_strings("/targets");
  s.labels = r.read_strings("/labels");
}

void read_adapter_head(const core::H5Reader& r, AdapterState& s, const std::string& file) {
  const fs::path path = file;
  if (r.has("/head/weight")) {
    s.head_weight = tensor::read_tensor(r, "/head/weight");
    s.head_bias = tensor::read_tensor(r, "/head/bias");
    if (r.has("/head/module")) {
      auto m = r.read_strings("/head/module");
      if (m.size() != 1) throw core::InputError(path.string() + ": /head/module: expected one module name");
      s.head_module = m[0];
    }
    if (r.has("/head/extra")) {
      for (const auto& name : r.list("/head/extra")) s.head_extra[name] = tensor::read_tensor(r, "/head/extra/" + name);
    }
  }
}

// ------------------------------------------------------------------ PEFT

namespace {
constexpr const char* kPrefix = "base_model.model.";
constexpr const char* kLabelsFile = "mlsys_labels.json";  // beside adapter_config.json
}

void export_peft(const fs::path& dir, const AdapterState& s) {
  fs::create_directories(dir);
  tensor::NamedTensors named;
  for (const auto& [name, ab] : s.ab) {
    named.emplace_back(kPrefix + name + ".lora_A.weight", ab.first);
    named.emplace_back(kPrefix + name + ".lora_B.weight", ab.second);
  }
  const bool head = s.head_weight.defined();
  if (head) {
    named.emplace_back(kPrefix + s.head_module + ".weight", s.head_weight);
    named.emplace_back(kPrefix + s.head_module + ".bias", s.head_bias);
    for (const auto& [name, t] : s.head_extra) named.emplace_back(kPrefix + name, t);
  }
  // target_modules as full module paths: PEFT matches them exactly, whatever the selection rule was
  std::vector<std::string> targets;
  for (const auto& [name, ab] : s.ab) targets.push_back(name);
  json cfg = {{"peft_type", "LORA"},
              {"task_type", s.task_type},
              {"r", s.cfg.r},
              {"lora_alpha", s.cfg.alpha},
              {"lora_dropout", s.cfg.input_dropout},
              {"use_rslora", s.cfg.rslora},
              {"use_dora", false},
              {"bias", "none"},
              {"fan_in_fan_out", false},
              {"inference_mode", true},
              {"init_lora_weights", true},
              {"target_modules", targets},
              {"modules_to_save", head ? json{"classifier"} : json(nullptr)},
              {"base_model_name_or_path", fs::path(s.base_model).filename().string()}};
  tensor::save_safetensors(dir / "adapter_model.safetensors", named, {{"format", "pt"}});
  core::write_file_atomic(dir / "adapter_config.json", cfg.dump(2) + "\n");
  // the label names are ours, not PEFT's: a key of adapter_config.json that LoraConfig does
  // not know makes PEFT warn on load, so they live in a file beside it
  if (head || !s.labels.empty()) {
    core::write_file_atomic(dir / kLabelsFile, json{{"labels", s.labels}}.dump(2) + "\n");
  }
}

namespace {

// The label names of a PEFT folder: DIR/mlsys_labels.json {"labels": [...]}, or the key
// "mlsys_labels" of adapter_config.json that exports before it wrote (none: no labels).
std::vector<std::string> read_peft_labels(const fs::path& dir, const json& cfg, const fs::path& cfg_path) {
  const fs::path path = dir / kLabelsFile;
  const bool in_file = fs::exists(path);
  const json j = in_file ? core::read_json_file(path) : json();
  const std::string where = in_file ? path.string() + ": field 'labels'" : cfg_path.string() + ": field 'mlsys_labels'";
  if (in_file && (!j.is_object() || !j.contains("labels"))) {
    throw core::InputError(path.string() + ": expected an object {\"labels\": [names]}, found " + core::short_json(j));
  }
  const json* v = in_file ? &j["labels"] : (cfg.contains("mlsys_labels") ? &cfg["mlsys_labels"] : nullptr);
  std::vector<std::string> out;
  if (v == nullptr || v->is_null()) return out;
  if (!v->is_array()) throw core::InputError(where + ": expected a list of strings, found " + core::short_json(*v));
  for (const auto& e : *v) {
    if (!e.is_string()) throw core::InputError(where + ": expected a list of strings, found " + core::short_json(*v));
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace

AdapterState import_peft(const fs::path& dir) {
  const fs::path cfg_path = dir / "adapter_config.json";
  const fs::path st_path = dir / "adapter_model.safetensors";
  if (!fs::is_regular_file(cfg_path)) {
    throw core::InputError(cfg_path.string() + ": cannot open (expected a PEFT adapter folder)");
  }
  json j = core::read_json_file(cfg_path);
  if (!j.is_object()) throw core::InputError(cfg_path.string() + ": expected a JSON object, found " + core::describe_json(j));
  auto bad = [&](const std::string& key, const std::string& expected) {
    throw core::InputError(cfg_path.string() + ": field '" + key + "': expected " + expected + ", found " +
                           core::short_json(j[key]));
  };
  auto unsupported = [&](const std::string& key, const std::string& what) {
    throw core::InputError(cfg_path.string() + ": field '" + key + "': " + what + " is not supported (found " +
                           core::short_json(j[key]) + ")");
  };
  auto has = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  if (!j.contains("peft_type") || !j["peft_type"].is_string() || j["peft_type"].get<std::string>() != "LORA") {
    throw core::InputError(cfg_path.string() + ": field 'peft_type': expected \"LORA\", found " +
                           (j.contains("peft_type") ? core::short_json(j["peft_type"]) : "nothing"));
  }
  auto get_bool = [&](const char* key, bool dflt) {
    if (!has(key)) return dflt;
    if (!j[key].is_boolean()) bad(key, "true or false");
    return j[key].get<bool>();
  };
  auto get_number = [&](const char* key, double dflt) {
    if (!has(key)) return dflt;
    if (!j[key].is_number()) bad(key, "a number");
    return j[key].get<double>();
  };
  auto get_strings = [&](const char* key) {
    std::vector<std::string> out;
    if (!has(key)) return out;
    if (j[key].is_string()) return std::vector<std::string>{j[key].get<std::string>()};
    if (!j[key].is_array()) bad(key, "a list of strings");
    for (const auto& v : j[key]) {
      if (!v.is_string()) bad(key, "a list of strings");
      out.push_back(v.get<std::string>());
    }
    return out;
  };
  if (get_bool("use_dora", false)) unsupported("use_dora", "DoRA");
  AdapterState s;
  if (has("r")) {
    if (!j["r"].is_number_integer() || j["r"].get<int64_t>() <= 0) bad("r", "a positive integer");
    s.cfg.r = j["r"].get<int64_t>();
  }
  s.cfg.alpha = get_number("lora_alpha", 8.0);
  s.cfg.rslora = get_bool("use_rslora", false);
  s.cfg.input_dropout = get_number("lora_dropout", 0.0);
  if (has("target_modules")) {
    s.cfg.targets = get_strings("target_modules");
    // a list names modules (checked against the model); a string is PEFT's regex, not checked
    if (j["target_modules"].is_array()) s.targets_source = cfg_path.string() + ": field 'target_modules'";
  }
  if (has("base_model_name_or_path")) {
    if (!j["base_model_name_or_path"].is_string()) bad("base_model_name_or_path", "a string");
    s.base_model = j["base_model_name_or_path"].get<std::string>();
  }
  s.labels = read_peft_labels(dir, j, cfg_path);
  bool task_given = false;
  if (has("task_type") && !j["task_type"].is_null()) {  // PEFT writes null when no task was given
    task_given = true;
    if (!j["task_type"].is_string()) bad("task_type", "a string");
    s.task_type = j["task_type"].get<std::string>();
    if (s.task_type != "SEQ_CLS" && s.task_type != "CAUSAL_LM") {
      unsupported("task_type", "a task other than SEQ_CLS and CAUSAL_LM");
    }
  }
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    if (!has(key)) continue;
    if (!j[key].is_object()) bad(key, "an object");
    if (!j[key].empty()) unsupported(key, std::string("a per-module ") + (key[0] == 'r' ? "rank" : "alpha"));
  }
  if (has("layers_to_transform")) unsupported("layers_to_transform", "restricting LoRA to some layers");
  if (has("bias")) {
    if (!j["bias"].is_string()) bad("bias", "a string");
    if (j["bias"].get<std::string>() != "none") unsupported("bias", "training biases (only \"none\")");
  }
  if (get_bool("lora_bias", false)) unsupported("lora_bias", "a bias on lora_B");
  if (get_bool("fan_in_fan_out", false)) unsupported("fan_in_fan_out", "fan_in_fan_out weights");
  auto file = tensor::SafeTensorsFile::open(st_path);
  const std::string pre = kPrefix;
  std::map<std::string, at::Tensor> a_of, b_of;
  for (const auto& key : file.names()) {
    if (!key.starts_with(pre)) throw core::InputError(st_path.string() + ": tensor '" + key + "': expected the prefix " + pre);
    std::string rest = key.substr(pre.size());
    if (!at::isFloatingType(file.info(key).scalar_type)) {
      throw core::InputError(st_path.string() + ": tensor '" + key + "': expected a floating-point dtype (F32, F16, "
                             "BF16 or F64), found " + file.info(key).dtype);
    }
    auto t = file.get(key).to(at::kFloat);
    auto strip = [&](const std::string& suffix) {
      return rest.ends_with(suffix) ? rest.substr(0, rest.size() - suffix.size()) : std::string();
    };
    if (auto m = strip(".lora_A.weight"); !m.empty()) {
      a_of[m] = t;
      continue;
    }
    if (auto m2 = strip(".lora_B.weight"); !m2.empty()) {
      b_of[m2] = t;
      continue;
    }
    // the head (modules_to_save): classifier.{weight,bias} (BERT) or classifier.dense / classifier.out_proj
    // (RoBERTa), possibly under the wrapper's "modules_to_save." (older PEFT)
    if (rest.starts_with("classifier.modules_to_save.")) rest = "classifier." + rest.substr(27);
    if (rest == "classifier.weight" || rest == "classifier.out_proj.weight") {
      s.head_weight = t;
      s.head_module = rest.substr(0, rest.size() - 7);
    } else if (rest == "classifier.bias" || rest == "classifier.out_proj.bias") {
      s.head_bias = t;
    } else if (rest == "classifier.dense.weight" || rest == "classifier.dense.bias") {
      s.head_extra[rest] = t;
    } else {
      throw core::InputError(st_path.string() + ": tensor '" + key + "' is neither lora_A/lora_B nor the classifier");
    }
  }
  for (const auto& [m, b] : b_of) {
    if (!a_of.contains(m)) throw core::InputError(st_path.string() + ": module '" + m + "' has lora_B but no lora_A");
  }
  for (const auto& [m, a] : a_of) {
    auto b = b_of.find(m);
    if (b == b_of.end()) throw core::InputError(st_path.string() + ": module '" + m + "' has lora_A but no lora_B");
    s.ab[m] = {a, b->second};
  }
  if (s.ab.empty()) throw core::InputError(st_path.string() + ": no lora_A/lora_B tensors");
  // no task_type: a classifier head among the tensors means SEQ_CLS, none a causal LM
  if (!task_given) s.task_type = s.head_weight.defined() ? "SEQ_CLS" : "CAUSAL_LM";
  if (s.task_type == "CAUSAL_LM" && s.head_weight.defined()) {
    throw core::InputError(st_path.string() + ": a CAUSAL_LM adapter holds no classifier (found base_model.model.classifier.*)");
  }
  if (s.head_weight.defined() != s.head_bias.defined()) {
    throw core::InputError(st_path.string() + ": the classifier needs both weight and bias");
  }
  if (!s.head_extra.empty() && (!s.head_weight.defined() || s.head_module != "classifier.out_proj" ||
                                s.head_extra.size() != 2)) {
    throw core::InputError(st_path.string() + ": a RoBERTa classifier needs classifier.dense and classifier.out_proj, "
                           "each with weight and bias");
  }
  check_adapter_tensors(s, st_path.string());
  if (s.labels.empty() && s.head_weight.defined()) {
    for (int64_t i = 0; i < s.head_weight.size(0); ++i) s.labels.push_back(std::to_string(i));
  }
  return s;
}

}  // namespace mlsys::lora
