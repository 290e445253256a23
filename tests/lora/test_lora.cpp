// lib/lora: the PEFT golden logits (Python transformers + peft fixture) within 1e-4, B=0
// leaves the base unchanged, merge→unmerge round trip, KL/JS properties, presets, target
// selection, HDF5 and PEFT round trips.
#include "tests/support/torch_catch.hpp"

#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "lora/lora.hpp"
#include "lora/unified_dropout.hpp"
#include "nn/bert.hpp"
#include "tensor/safetensors.hpp"
#include "tests/support/expect_error.hpp"
#include "tests/support/harness.hpp"

namespace fs = std::filesystem;
using namespace mlsys;

namespace {
const fs::path kRoot = MLSYS_SOURCE_ROOT;
const fs::path kMiniLM = kRoot / ".deps/models/all-MiniLM-L6-v2";
const fs::path kGolden = kRoot / "tests/lora/fixtures/golden";

nn::BertClassifier tiny(int64_t labels = 3, uint64_t seed = 7) {
  nn::BertConfig c;
  c.vocab_size = 60;
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 24;
  c.max_position_embeddings = 32;
  return nn::BertClassifier::random(c, labels, seed);
}

// LoRA r=4 on all-linear: with B = 0 the output is `base` exactly; with every B made
// non-zero the output changes, merge gives the same output, unmerge restores the base
// weights (1e-5) and the adapted output again. Returns the adapters for further checks.
lora::LoraSet check_lora_merge_round_trip(nn::TransformerModel& m, const at::Tensor& ids, const at::Tensor& mask) {
  c10::NoGradGuard ng;
  const at::Tensor base = m.forward(ids, mask);
  lora::LoraConfig cfg;
  cfg.targets = {"all-linear"};
  cfg.r = 4;
  auto set = lora::attach_lora(m, cfg, 1);
  CHECK(at::equal(m.forward(ids, mask), base));
  for (auto& [n, ad] : set.adapters) {
    CHECK(ad->A.abs().max().item<double>() <= 1.0 / std::sqrt(static_cast<double>(ad->A.size(1))) + 1e-7);
    ad->B.normal_(0, 0.3);
  }
  std::map<std::string, at::Tensor> w0;
  for (auto& [n, ad] : set.adapters) w0[n] = m.param(n + ".weight").clone();
  at::Tensor adapted = m.forward(ids, mask);
  CHECK(!at::allclose(adapted, base));
  lora::merge(m, set);
  CHECK(at::allclose(m.forward(ids, mask), adapted, 1e-5, 1e-5));
  lora::unmerge(m, set);
  for (auto& [n, ad] : set.adapters) CHECK((m.param(n + ".weight") - w0[n]).abs().max().item<double>() < 1e-5);
  CHECK(at::allclose(m.forward(ids, mask), adapted, 1e-5, 1e-5));
  return set;
}

}  // namespace

TEST_CASE("PEFT golden: the Python adapter on all-MiniLM-L6-v2 gives the same logits") {
  REQUIRE(fs::exists(kMiniLM / "model.safetensors"));  // scripts/install-deps fetches it
  auto inputs = tensor::load_safetensors(kGolden / "inputs.safetensors");
  lora::AdapterState st = lora::import_peft(kGolden);
  CHECK(st.cfg.r == 4);
  CHECK(st.cfg.rslora);
  CHECK(st.ab.size() == 24);  // query, value, attention.output.dense, output.dense in 6 layers
  CHECK(st.ab.count("bert.encoder.layer.0.output.dense") == 1);
  auto model = nn::BertClassifier::load(kMiniLM, 3, 0);
  lora::attach_state(model, st, kGolden.string());
  c10::NoGradGuard ng;
  at::Tensor logits = model.forward(inputs["input_ids"], inputs["attention_mask"]);
  const double diff = (logits - inputs["logits"]).abs().max().item<double>();
  INFO("max |logit difference| " << diff);
  CHECK(diff < 1e-4);
  CHECK(inputs["logits"].abs().max().item<double>() > 0.5);  // a real tolerance, not a trivial one
}

TEST_CASE("fresh LoRA (B = 0) leaves the base outputs unchanged; merge→unmerge round-trips") {
  auto m = tiny();
  auto set = check_lora_merge_round_trip(m, at::randint(1, 60, {3, 8}, at::kLong), at::ones({3, 8}, at::kLong));
  CHECK(set.adapters.size() == 2 * 6 + 1);  // every Linear but the classifier
}

TEST_CASE("target selection follows PEFT's suffix rule; unknown targets are config errors") {
  auto m = tiny();
  auto names = m.linear_names();
  auto q = lora::resolve_targets(names, {"query", "value"});
  CHECK(q.size() == 4);
  CHECK(q[0] == "bert.encoder.layer.0.attention.self.query");
  CHECK(lora::resolve_targets(names, {"output.dense"}).size() == 4);  // attention.output.dense and output.dense
  CHECK(lora::resolve_targets(names, {"bert.encoder.layer.1.intermediate.dense"}).size() == 1);
  CHECK_THROWS_AS(lora::resolve_targets(names, {"q_proj"}), core::ConfigError);
  CHECK_THROWS_AS(lora::resolve_targets(names, {"uery"}), core::ConfigError);
}

TEST_CASE("bidirectional KL is symmetric, zero for identical passes; JS likewise") {
  at::manual_seed(2);
  at::Tensor a = at::randn({5, 4}), b = at::randn({5, 4});
  CHECK(lora::bidirectional_kl(a, a).item<double>() == Approx(0.0).margin(1e-7));
  CHECK(lora::js_divergence(a, a).item<double>() == Approx(0.0).margin(1e-7));
  CHECK(lora::bidirectional_kl(a, b).item<double>() == Approx(lora::bidirectional_kl(b, a).item<double>()).epsilon(1e-6));
  CHECK(lora::js_divergence(a, b).item<double>() == Approx(lora::js_divergence(b, a).item<double>()).epsilon(1e-6));
  CHECK(lora::bidirectional_kl(a, b).item<double>() > 0.01);
  CHECK(lora::js_divergence(a, b).item<double>() <= std::log(2.0));
  // against the definition
  at::Tensor p = at::softmax(a, -1), q = at::softmax(b, -1);
  double want = 0;
  for (int i = 0; i < 5; ++i) {
    for (int k = 0; k < 4; ++k) {
      double pi = p[i][k].item<double>(), qi = q[i][k].item<double>();
      want += 0.5 * (pi * std::log(pi / qi) + qi * std::log(qi / pi));
    }
  }
  CHECK(lora::bidirectional_kl(a, b).item<double>() == Approx(want / 5).epsilon(1e-5));
}

TEST_CASE("presets place HiddenKey's pieces; the loss doubles the batch only for consistency") {
  auto hk = lora::dropout_preset("hiddenkey", 0.1, 1.0);
  REQUIRE(hk.sites.at(nn::DropPosition::attn_logits) != nullptr);
  CHECK(hk.sites.at(nn::DropPosition::attn_logits)->pattern == nn::DropPattern::column);
  CHECK(hk.sites.at(nn::DropPosition::hidden)->pattern == nn::DropPattern::element);
  CHECK(hk.consistency == lora::Consistency::kl);
  CHECK(lora::dropout_preset("hiddenkey-minus").consistency == lora::Consistency::none);
  CHECK(lora::dropout_preset("lora-dropout").lora_input_rate() == Approx(0.1));
  CHECK(lora::dropout_preset("hiddencut").consistency == lora::Consistency::js);
  CHECK_THROWS_AS(lora::dropout_preset("dropconnect"), core::ConfigError);
  auto m = tiny();
  at::Tensor ids = at::randint(1, 60, {4, 8}, at::kLong);
  at::Tensor mask = at::ones({4, 8}, at::kLong);
  at::Tensor labels = at::tensor({0L, 1L, 2L, 0L});
  at::manual_seed(4);
  auto tr = lora::classification_loss(m, ids, mask, labels, hk, true);
  CHECK(tr.logits.size(0) == 4);
  CHECK(tr.consistency > 0);  // two passes with different masks
  CHECK(tr.loss.item<double>() == Approx(tr.ce + tr.consistency).epsilon(1e-5));
  auto ev = lora::classification_loss(m, ids, mask, labels, hk, false);
  CHECK(ev.consistency == 0);
  CHECK(at::equal(ev.logits, m.forward(ids, mask)));
}

TEST_CASE("adapters round-trip through HDF5 and the PEFT layout") {
  auto m = tiny(2);
  lora::LoraConfig cfg;
  cfg.targets = {"query", "intermediate.dense"};
  cfg.r = 3;
  cfg.alpha = 6;
  cfg.rslora = true;
  auto set = lora::attach_lora(m, cfg, 9);
  {
    c10::NoGradGuard ng;
    for (auto& [n, ad] : set.adapters) ad->B.normal_(0, 0.2);
  }
  auto st = lora::state_of(m, set, {"neg", "pos"}, "models/tiny");
  const mlsys::test::TempDir scratch("rt");
  const fs::path& d = scratch.path;
  lora::save_adapter_h5(d / "adapter.h5", st, {"test", "{}"});
  auto h5 = lora::load_adapter_h5(d / "adapter.h5");
  lora::export_peft(d / "peft", st);
  auto peft = lora::import_peft(d / "peft");
  auto file = tensor::SafeTensorsFile::open(d / "peft/adapter_model.safetensors");
  CHECK(file.contains("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"));
  CHECK(file.contains("base_model.model.bert.encoder.layer.1.intermediate.dense.lora_B.weight"));
  CHECK(file.contains("base_model.model.classifier.weight"));
  for (const auto* back : {&h5, &peft}) {
    CHECK(back->cfg.r == 3);
    CHECK(back->cfg.alpha == 6);
    CHECK(back->cfg.rslora);
    CHECK(back->labels == std::vector<std::string>{"neg", "pos"});
    REQUIRE(back->ab.size() == st.ab.size());
    for (const auto& [n, ab] : st.ab) {
      CHECK(at::equal(back->ab.at(n).first, ab.first));
      CHECK(at::equal(back->ab.at(n).second, ab.second));
    }
    CHECK(at::equal(back->head_weight, st.head_weight));
  }
  // attaching the re-read adapter to a fresh copy reproduces the outputs
  at::Tensor ids = at::randint(1, 60, {2, 7}, at::kLong);
  at::Tensor mask = at::ones({2, 7}, at::kLong);
  c10::NoGradGuard ng;
  auto m2 = tiny(2);
  lora::attach_state(m2, peft, "peft");
  CHECK(at::allclose(m2.forward(ids, mask), m.forward(ids, mask), 1e-6, 1e-6));
  auto wrong = tiny(3);
  CHECK_THROWS_AS(lora::attach_state(wrong, peft, "peft"), core::InputError);
}

TEST_CASE("PEFT export: adapter_config.json has LoraConfig's keys only; the labels are in mlsys_labels.json") {
  auto m = tiny(2);
  lora::LoraConfig cfg;
  cfg.targets = {"query", "value"};
  cfg.r = 2;
  auto set = lora::attach_lora(m, cfg, 3);
  const mlsys::test::TempDir scratch("peft-labels");
  const fs::path d = scratch.path / "peft";
  lora::export_peft(d, lora::state_of(m, set, {"neg", "pos"}, "models/tiny"));
  const auto config = nlohmann::json::parse(std::ifstream(d / "adapter_config.json"));
  // every key is a field of PEFT's LoraConfig (an unknown one makes PEFT warn on load)
  for (const auto& [key, v] : config.items()) {
    INFO(key);
    CHECK((key == "peft_type" || key == "task_type" || key == "r" || key == "lora_alpha" || key == "lora_dropout" ||
           key == "use_rslora" || key == "use_dora" || key == "bias" || key == "fan_in_fan_out" ||
           key == "inference_mode" || key == "init_lora_weights" || key == "target_modules" ||
           key == "modules_to_save" || key == "base_model_name_or_path"));
  }
  CHECK_FALSE(config.contains("mlsys_labels"));
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(d)) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  CHECK(files == std::vector<std::string>{"adapter_config.json", "adapter_model.safetensors", "mlsys_labels.json"});
  CHECK(nlohmann::json::parse(std::ifstream(d / "mlsys_labels.json")) == nlohmann::json{{"labels", {"neg", "pos"}}});
  CHECK(lora::import_peft(d).labels == std::vector<std::string>{"neg", "pos"});

  // a folder exported before mlsys_labels.json: the labels from adapter_config.json's key
  fs::remove(d / "mlsys_labels.json");
  auto old = config;
  old["mlsys_labels"] = {"a", "b"};
  std::ofstream(d / "adapter_config.json", std::ios::trunc) << old.dump();
  CHECK(lora::import_peft(d).labels == std::vector<std::string>{"a", "b"});
  // a PEFT folder made elsewhere: the head's rows numbered
  std::ofstream(d / "adapter_config.json", std::ios::trunc) << config.dump();
  CHECK(lora::import_peft(d).labels == std::vector<std::string>{"0", "1"});
  // a malformed labels file is an input error naming it
  for (const char* bad : {"[\"neg\"]", "{\"labels\": [1, 2]}", "{\"labels\": \"neg\"}", "{}"}) {
    std::ofstream(d / "mlsys_labels.json", std::ios::trunc) << bad;
    test::expect_error([&] { (void)lora::import_peft(d); }, {"mlsys_labels.json"});
  }
}

TEST_CASE("PEFT import: wrong field types and unsupported features are input errors naming the field") {
  auto m = tiny(2);
  lora::LoraConfig cfg;
  cfg.targets = {"query", "value"};
  cfg.r = 2;
  auto set = lora::attach_lora(m, cfg, 3);
  const mlsys::test::TempDir scratch("peft-bad");
  const fs::path& d = scratch.path;
  lora::export_peft(d / "peft", lora::state_of(m, set, {"neg", "pos"}, "models/tiny"));
  const fs::path cfg_path = d / "peft/adapter_config.json";
  const nlohmann::json good = nlohmann::json::parse(std::ifstream(cfg_path));
  auto expect_error = [&](const nlohmann::json& j, const std::string& field) {
    std::ofstream(cfg_path, std::ios::trunc) << j.dump();
    test::expect_error([&] { (void)lora::import_peft(d / "peft"); }, {"adapter_config.json", "'" + field + "'"});
  };
  auto with = [&](const std::string& key, const nlohmann::json& v) {
    nlohmann::json j = good;
    j[key] = v;
    return j;
  };
  expect_error(with("r", "4"), "r");
  expect_error(with("r", 0), "r");
  expect_error(with("lora_alpha", "8"), "lora_alpha");
  expect_error(with("use_rslora", 1), "use_rslora");
  expect_error(with("lora_dropout", "x"), "lora_dropout");
  expect_error(with("target_modules", 3), "target_modules");
  fs::rename(d / "peft/mlsys_labels.json", d / "labels.json");  // an older export: labels in the config
  expect_error(with("mlsys_labels", {1, 2}), "mlsys_labels");
  fs::rename(d / "labels.json", d / "peft/mlsys_labels.json");
  expect_error(with("base_model_name_or_path", 5), "base_model_name_or_path");
  expect_error(with("rank_pattern", {{"query", 4}}), "rank_pattern");
  expect_error(with("alpha_pattern", {{"query", 4}}), "alpha_pattern");
  expect_error(with("layers_to_transform", {0}), "layers_to_transform");
  expect_error(with("bias", "lora_only"), "bias");
  expect_error(with("bias", "all"), "bias");
  expect_error(with("lora_bias", true), "lora_bias");
  expect_error(with("use_dora", true), "use_dora");
  expect_error(with("peft_type", "IA3"), "peft_type");
  // empty patterns, a null layers_to_transform and bias "none" are what PEFT writes by default
  nlohmann::json ok = good;
  ok["rank_pattern"] = nlohmann::json::object();
  ok["alpha_pattern"] = nlohmann::json::object();
  ok["layers_to_transform"] = nullptr;
  std::ofstream(cfg_path, std::ios::trunc) << ok.dump();
  CHECK(lora::import_peft(d / "peft").ab.size() == set.adapters.size());
}

TEST_CASE("PEFT import: a lora_B without its lora_A (or the reverse) is an input error naming the module") {
  auto m = tiny(2);
  lora::LoraConfig cfg;
  cfg.targets = {"query"};
  cfg.r = 2;
  auto set = lora::attach_lora(m, cfg, 3);
  const mlsys::test::TempDir scratch("peft-half");
  const fs::path& d = scratch.path;
  lora::export_peft(d / "peft", lora::state_of(m, set, {"neg", "pos"}, "models/tiny"));
  const fs::path st = d / "peft/adapter_model.safetensors";
  const auto all = tensor::load_safetensors(st);
  const std::string module = "bert.encoder.layer.1.attention.self.query";
  for (const std::string& drop : {std::string("lora_A"), std::string("lora_B")}) {
    tensor::NamedTensors kept;
    for (const auto& [n, t] : all) {
      if (n != "base_model.model." + module + "." + drop + ".weight") kept.emplace_back(n, t);
    }
    REQUIRE(kept.size() + 1 == all.size());
    tensor::save_safetensors(st, kept);
    test::expect_error([&] { (void)lora::import_peft(d / "peft"); }, {module, "but no " + drop});
  }
}

// ------------------------------------------------------------------ LLaMA (causal LM)

#include "nn/llama.hpp"
#include "nn/llama2c.hpp"
#include "tests/support/tiny_llama.hpp"

namespace {
const fs::path kStoriesBin = kRoot / "tests/nn/fixtures/stories260K/stories260K.bin";
const fs::path kLlamaGolden = kRoot / "tests/nn/fixtures/llama_golden";

nn::LlamaForCausalLM tiny_llama(bool tied, uint64_t seed = 5) {
  return nn::LlamaForCausalLM::random(mlsys::test::tiny_llama_config(30, tied), seed);
}
}  // namespace

TEST_CASE("PEFT golden (LLaMA): the Python adapter on converted stories260K gives the same logits") {
  REQUIRE(fs::exists(kStoriesBin));
  auto bin = nn::read_llama2c(kStoriesBin);
  auto model = nn::LlamaForCausalLM::from_tensors(bin.cfg, bin.tensors, kStoriesBin.string());
  auto inputs = tensor::load_safetensors(kLlamaGolden / "inputs.safetensors");
  lora::AdapterState st = lora::import_peft(kLlamaGolden);
  CHECK(st.task_type == "CAUSAL_LM");
  CHECK(!st.head_weight.defined());
  CHECK(st.cfg.r == 4);
  CHECK(st.ab.size() == 10);  // q_proj, v_proj in 5 layers
  CHECK(st.ab.count("model.layers.0.self_attn.q_proj") == 1);
  c10::NoGradGuard ng;
  const at::Tensor ids = inputs["input_ids"], mask = inputs["attention_mask"], want = inputs["logits"];
  const at::Tensor real = mask.to(at::kBool).unsqueeze(-1).expand_as(want);
  at::Tensor base = model.forward(ids, mask);
  lora::attach_state(model, st, kLlamaGolden.string());
  at::Tensor logits = model.forward(ids, mask);
  const double diff = (logits - want).abs().masked_select(real).max().item<double>();
  INFO("max |logit difference| " << diff);
  CHECK(diff < 1e-4);
  CHECK((base - want).abs().masked_select(real).max().item<double>() > 1.0);  // the adapter matters
}

TEST_CASE("LLaMA LoRA: B = 0 leaves the logits unchanged; merge→unmerge round-trips; all-linear skips lm_head") {
  for (bool tied : {false, true}) {
    auto m = tiny_llama(tied);
    auto set = check_lora_merge_round_trip(m, at::randint(0, 30, {2, 9}, at::kLong), at::ones({2, 9}, at::kLong));
    CHECK(set.adapters.size() == 2 * 7);
    CHECK(set.adapters.count("lm_head") == 0);
    CHECK(lora::resolve_targets(m.linear_names(), {"q_proj", "v_proj"}, m.output_layer()).size() == 4);
  }
}

TEST_CASE("causal_lm_loss: next-token cross-entropy over the target tokens, by hand; HiddenKey doubles the batch") {
  auto m = tiny_llama(false, 8);
  at::Tensor ids = at::tensor({3L, 7L, 9L, 11L, 2L, 0L, 4L, 5L, 6L, 7L, 8L, 9L}).view({2, 6});
  at::Tensor mask = at::tensor({1L, 1L, 1L, 1L, 1L, 0L, 1L, 1L, 1L, 1L, 1L, 1L}).view({2, 6});
  // row 0: prompt 3 7, completion 9 11 2; row 1: all text (position 0 is never a target)
  at::Tensor loss_mask = at::tensor({0L, 0L, 1L, 1L, 1L, 0L, 1L, 1L, 1L, 1L, 1L, 1L}).view({2, 6});
  auto none = lora::dropout_preset("none");
  auto ev = lora::causal_lm_loss(m, ids, mask, loss_mask, none, false);
  at::Tensor logits = m.forward(ids, mask);
  CHECK(at::equal(ev.logits, logits));
  double sum = 0;
  int n = 0;
  for (int b = 0; b < 2; ++b) {
    for (int t = 1; t < 6; ++t) {
      if (loss_mask[b][t].item<int64_t>() == 0) continue;
      sum -= at::log_softmax(logits[b][t - 1], -1)[ids[b][t].item<int64_t>()].item<double>();
      ++n;
    }
  }
  CHECK(n == 8);
  CHECK(ev.ce == Approx(sum / n).epsilon(1e-6));
  CHECK(ev.loss.item<double>() == Approx(sum / n).epsilon(1e-6));
  auto hk = lora::dropout_preset("hiddenkey", 0.3, 1.0);
  at::manual_seed(3);
  auto tr = lora::causal_lm_loss(m, ids, mask, loss_mask, hk, true);
  CHECK(tr.logits.sizes() == logits.sizes());
  CHECK(std::isfinite(tr.loss.item<double>()));
  CHECK(tr.consistency > 0);
  CHECK(tr.loss.item<double>() == Approx(tr.ce + tr.consistency).epsilon(1e-5));
  // the loss back-propagates into the adapters
  lora::LoraConfig cfg;
  cfg.targets = {"q_proj", "v_proj"};
  auto set = lora::attach_lora(m, cfg, 2);
  auto tr2 = lora::causal_lm_loss(m, ids, mask, loss_mask, hk, true);
  tr2.loss.backward();
  CHECK(set.adapters.at("model.layers.0.self_attn.q_proj")->B.grad().abs().sum().item<double>() > 0);
  CHECK_THROWS_AS(lora::causal_lm_loss(m, ids, mask, at::zeros_like(ids), none, false), core::InputError);
}

TEST_CASE("LLaMA adapters: PEFT layout with CAUSAL_LM keys and no classifier; HDF5 without a head") {
  auto m = tiny_llama(true);
  lora::LoraConfig cfg;
  cfg.targets = {"q_proj", "down_proj"};
  cfg.r = 2;
  auto set = lora::attach_lora(m, cfg, 4);
  {
    c10::NoGradGuard ng;
    for (auto& [n, ad] : set.adapters) ad->B.normal_(0, 0.2);
  }
  auto st = lora::state_of(m, set, {}, "models/tiny-llama");
  CHECK(st.task_type == "CAUSAL_LM");
  CHECK(!st.head_weight.defined());
  const mlsys::test::TempDir scratch("llama-rt");
  const fs::path& d = scratch.path;
  lora::export_peft(d / "peft", st);
  auto file = tensor::SafeTensorsFile::open(d / "peft/adapter_model.safetensors");
  CHECK(file.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  CHECK(file.contains("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
  CHECK(file.names().size() == 8);
  const auto j = nlohmann::json::parse(std::ifstream(d / "peft/adapter_config.json"));
  CHECK(j["task_type"] == "CAUSAL_LM");
  CHECK(j["modules_to_save"].is_null());
  lora::save_adapter_h5(d / "adapter.h5", st, {"test", "{}"});
  c10::NoGradGuard ng;
  at::Tensor ids = at::randint(0, 30, {2, 7}, at::kLong);
  at::Tensor mask = at::ones({2, 7}, at::kLong);
  for (const auto& back : {lora::import_peft(d / "peft"), lora::load_adapter_h5(d / "adapter.h5")}) {
    CHECK(back.task_type == "CAUSAL_LM");
    CHECK(!back.head_weight.defined());
    REQUIRE(back.ab.size() == st.ab.size());
    auto m2 = tiny_llama(true);
    lora::attach_state(m2, back, "back");
    CHECK(at::allclose(m2.forward(ids, mask), m.forward(ids, mask), 1e-6, 1e-6));
  }
  auto bert = tiny(2);
  CHECK_THROWS_AS(lora::attach_state(bert, st, "llama adapter"), core::InputError);
}

TEST_CASE("LLaMA LoRA on a tied lm_head: it adapts the logits but refuses to merge into the embeddings") {
  auto m = tiny_llama(true);
  lora::LoraConfig cfg;
  cfg.targets = {"lm_head"};
  cfg.r = 2;
  auto set = lora::attach_lora(m, cfg, 6);
  REQUIRE(set.adapters.size() == 1);
  c10::NoGradGuard ng;
  at::Tensor ids = at::randint(0, 30, {1, 5}, at::kLong), mask = at::ones({1, 5}, at::kLong);
  at::Tensor base = m.forward(ids, mask);
  set.adapters.at("lm_head")->B.normal_(0, 0.3);
  CHECK(!at::allclose(m.forward(ids, mask), base));
  const at::Tensor emb = m.param("model.embed_tokens.weight").clone();
  CHECK_THROWS_AS(lora::merge(m, set), core::ConfigError);
  CHECK(at::equal(m.param("model.embed_tokens.weight"), emb));
}

// ------------------------------------------------------------------ RoBERTa

namespace {
const fs::path kRoberta = kRoot / "tests/nn/fixtures/roberta";
}

TEST_CASE("PEFT golden (RoBERTa): the Python adapter and two-layer head give transformers' logits") {
  auto inputs = tensor::load_safetensors(kRoberta / "inputs.safetensors");
  lora::AdapterState st = lora::import_peft(kRoberta / "peft");
  CHECK(st.cfg.r == 4);
  CHECK(st.ab.size() == 4);  // query, value in 2 layers
  CHECK(st.ab.count("roberta.encoder.layer.1.attention.self.value") == 1);
  CHECK(st.head_module == "classifier.out_proj");
  CHECK(st.head_extra.size() == 2);
  CHECK(st.labels.size() == 3);
  auto model = nn::BertClassifier::load(kRoberta, 3, 0);
  lora::LoraSet set = lora::attach_state(model, st, (kRoberta / "peft").string());
  c10::NoGradGuard ng;
  const at::Tensor logits = model.forward(inputs["input_ids"], inputs["attention_mask"]);
  const double diff = (logits - inputs["logits"]).abs().max().item<double>();
  INFO("max |logit difference| " << diff);
  CHECK(diff < 1e-4);
  // merged weights compute the same logits
  lora::merge(model, set);
  model.clear_adapters();
  CHECK((model.forward(inputs["input_ids"], inputs["attention_mask"]) - inputs["logits"]).abs().max().item<double>() < 1e-4);
}

TEST_CASE("RoBERTa adapters: the whole head round-trips through HDF5 and PEFT; a BERT head does not fit") {
  auto model = nn::BertClassifier::load(kRoberta, 2, 11);
  lora::LoraConfig cfg;
  cfg.r = 2;
  lora::LoraSet set = lora::attach_lora(model, cfg, 3);
  for (auto& [n, ad] : set.adapters) ad->B = at::randn_like(ad->B);
  const auto st = lora::state_of(model, set, {"neg", "pos"}, kRoberta.string());
  CHECK(st.head_module == "classifier.out_proj");
  CHECK(st.head_extra.count("classifier.dense.weight") == 1);
  const mlsys::test::TempDir scratch("roberta-head");
  const fs::path& d = scratch.path;
  lora::save_adapter_h5(d / "a.h5", st, {"test", "{}"});
  lora::export_peft(d / "peft", st);
  auto file = tensor::load_safetensors(d / "peft/adapter_model.safetensors");
  CHECK(file.count("base_model.model.classifier.dense.weight") == 1);
  CHECK(file.count("base_model.model.classifier.out_proj.bias") == 1);
  CHECK(file.count("base_model.model.classifier.weight") == 0);
  for (const auto& back : {lora::load_adapter_h5(d / "a.h5"), lora::import_peft(d / "peft")}) {
    CHECK(back.head_module == "classifier.out_proj");
    REQUIRE(back.head_extra.size() == 2);
    CHECK(at::equal(back.head_extra.at("classifier.dense.weight"), st.head_extra.at("classifier.dense.weight")));
    CHECK(at::equal(back.head_weight, st.head_weight));
    auto fresh = nn::BertClassifier::load(kRoberta, 2, 99);  // a different random head
    lora::attach_state(fresh, back, "x");
    const at::Tensor ids = at::tensor({0, 40, 41, 42, 2, 1}, at::kLong).view({1, 6});
    const at::Tensor mask = at::tensor({1, 1, 1, 1, 1, 0}, at::kLong).view({1, 6});
    c10::NoGradGuard ng;
    CHECK(at::allclose(fresh.forward(ids, mask), model.forward(ids, mask)));
  }
  // a BERT adapter (classifier.weight) on a RoBERTa model, and the reverse, are input errors
  auto bert = tiny(2);
  lora::LoraSet bset = lora::attach_lora(bert, {}, 1);
  CHECK_THROWS_AS(lora::attach_state(model, lora::state_of(bert, bset, {"a", "b"}, "m"), "x"), core::InputError);
  lora::AdapterState no_lora = st;
  no_lora.ab.clear();
  CHECK_THROWS_AS(lora::attach_state(bert, no_lora, "x"), core::InputError);
}

// ------------------------------------------------------------------ hardening (issue 20)

#include "lora/finetune_config.hpp"

namespace {

// A tiny BERT with LoRA r=2 on query/value (B made non-zero), exported to DIR/peft and
// saved as DIR/adapter.h5.
lora::AdapterState write_adapters(const fs::path& dir) {
  auto m = tiny(2);
  lora::LoraConfig cfg;
  cfg.targets = {"query", "value"};
  cfg.r = 2;
  auto set = lora::attach_lora(m, cfg, 3);
  {
    c10::NoGradGuard ng;
    for (auto& [n, ad] : set.adapters) ad->B.normal_(0, 0.2);
  }
  auto st = lora::state_of(m, set, {"neg", "pos"}, "models/tiny");
  lora::export_peft(dir / "peft", st);
  lora::save_adapter_h5(dir / "adapter.h5", st, {"test", "{}"});
  return st;
}

// The PEFT tensors with `name` replaced by `t`.
void replace_peft_tensor(const fs::path& peft, const std::string& name, const at::Tensor& t) {
  tensor::NamedTensors out;
  bool found = false;
  for (const auto& [n, old] : tensor::load_safetensors(peft / "adapter_model.safetensors")) {
    found = found || n == name;
    out.emplace_back(n, n == name ? t : old);
  }
  REQUIRE(found);
  tensor::save_safetensors(peft / "adapter_model.safetensors", out);
}

const std::string kQueryA = "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight";

}  // namespace

TEST_CASE("PEFT import: a deeply nested adapter_config.json is an input error of one short line", "[hardening]") {
  const mlsys::test::TempDir scratch("peft-deep");
  write_adapters(scratch.path);
  const fs::path cfg_path = scratch / "peft/adapter_config.json";
  auto j = nlohmann::json::parse(std::ifstream(cfg_path));
  std::string text = j.dump();
  // 50k levels under "lora_bias": the message's dump() recursed 50k frames deep (a segfault)
  text.insert(1, "\"lora_bias\": " + std::string(50000, '[') + std::string(50000, ']') + ", ");
  std::ofstream(cfg_path, std::ios::trunc) << text;
  try {
    (void)lora::import_peft(scratch / "peft");
    FAIL("no error");
  } catch (const core::InputError& e) {
    const std::string msg = e.what();
    INFO(msg.substr(0, 300));
    CHECK(msg.size() < 300);
    CHECK(msg.find("adapter_config.json: malformed JSON: JSON nested deeper than 64 levels (at key 'lora_bias[0]") !=
          std::string::npos);
  }
  // a long value is quoted by its start
  j["peft_type"] = std::string(100000, 'L');
  std::ofstream(cfg_path, std::ios::trunc) << j.dump();
  try {
    (void)lora::import_peft(scratch / "peft");
    FAIL("no error");
  } catch (const core::InputError& e) {
    CHECK(std::string(e.what()).size() < 300);
    CHECK(std::string(e.what()).find("'peft_type'") != std::string::npos);
  }
}

TEST_CASE("adapter files: 0-d and 1-d lora tensors are input errors naming file and module", "[hardening]") {
  const mlsys::test::TempDir scratch("peft-dims");
  const auto st = write_adapters(scratch.path);
  const std::string module = "bert.encoder.layer.0.attention.self.query";
  for (const at::Tensor& bad : {at::ones({}), at::ones({2})}) {
    INFO("shape " << bad.sizes());
    write_adapters(scratch.path);
    replace_peft_tensor(scratch / "peft", kQueryA, bad);
    test::expect_error([&] { (void)lora::import_peft(scratch / "peft"); },
                       {"adapter_model.safetensors", module, "lora_A", "expected a 2-d tensor"});
    lora::AdapterState h5 = st;
    h5.ab.at(module).first = bad;
    lora::save_adapter_h5(scratch / "bad.h5", h5, {"test", "{}"});
    test::expect_error([&] { (void)lora::load_adapter_h5(scratch / "bad.h5"); },
                       {"bad.h5", module, "lora_A", "expected a 2-d tensor"});
  }
  // a state built in memory still fails with a readable message in attach_state
  lora::AdapterState flat = st;
  flat.ab.at(module).first = at::ones({2});
  auto m = tiny(2);
  test::expect_error([&] { (void)lora::attach_state(m, flat, "mem"); }, {"mem", module, "found A [2]"});
}

TEST_CASE("adapter files: NaN or infinite weights and integer dtypes are refused at import", "[hardening]") {
  const mlsys::test::TempDir scratch("peft-nan");
  const auto st = write_adapters(scratch.path);
  const at::Tensor a = st.ab.begin()->second.first;
  for (double v : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    write_adapters(scratch.path);
    at::Tensor poisoned = tensor::load_safetensors(scratch / "peft/adapter_model.safetensors").at(kQueryA).clone();
    poisoned[0][0] = v;
    replace_peft_tensor(scratch / "peft", kQueryA, poisoned);
    test::expect_error([&] { (void)lora::import_peft(scratch / "peft"); },
                       {"adapter_model.safetensors", "bert.encoder.layer.0.attention.self.query", "NaN or infinity"});
    lora::AdapterState h5 = st;
    h5.head_weight = st.head_weight.clone();
    h5.head_weight[0][0] = v;
    lora::save_adapter_h5(scratch / "bad.h5", h5, {"test", "{}"});
    test::expect_error([&] { (void)lora::load_adapter_h5(scratch / "bad.h5"); },
                       {"bad.h5", "classifier.weight", "NaN or infinity"});
  }
  write_adapters(scratch.path);
  replace_peft_tensor(scratch / "peft", kQueryA,
                      tensor::load_safetensors(scratch / "peft/adapter_model.safetensors").at(kQueryA).to(at::kInt));
  test::expect_error([&] { (void)lora::import_peft(scratch / "peft"); },
                     {"adapter_model.safetensors", kQueryA, "expected a floating-point dtype", "found I32"});
}

TEST_CASE("PEFT: target_modules naming no module of the model is an input error naming it and the file",
          "[hardening]") {
  const mlsys::test::TempDir scratch("peft-targets");
  write_adapters(scratch.path);
  const fs::path cfg_path = scratch / "peft/adapter_config.json";
  auto j = nlohmann::json::parse(std::ifstream(cfg_path));
  j["target_modules"].push_back("q_proj");  // a LLaMA module: not in a BERT
  std::ofstream(cfg_path, std::ios::trunc) << j.dump();
  auto m = tiny(2);
  const auto st = lora::import_peft(scratch / "peft");
  test::expect_error([&] { (void)lora::attach_state(m, st, (scratch / "peft").string()); },
                     {"adapter_config.json", "'target_modules'", "\"q_proj\""});
  // suffixes PEFT accepts are fine
  j["target_modules"] = {"query", "value"};
  std::ofstream(cfg_path, std::ios::trunc) << j.dump();
  auto m2 = tiny(2);
  CHECK(lora::attach_state(m2, lora::import_peft(scratch / "peft"), "peft").adapters.size() == 4);
}

TEST_CASE("lora-finetune config: step counts are bounded; epochs x steps per epoch may not overflow", "[hardening]") {
  auto read = [](const std::vector<std::string>& sets) {
    return lora::read_finetune_config(core::parse_config("{}", "cfg.json", sets));
  };
  test::expect_error<core::ConfigError>([&] { (void)read({"train.max_steps=0", "train.epochs=4e17"}); },
                                        {"--set train.epochs=4e17", "'train.epochs'"});
  for (const char* key : {"max_steps", "eval_every", "patience", "checkpoint_every", "run_steps"}) {
    const std::string set = std::string("train.") + key + "=1e15";
    test::expect_error<core::ConfigError>([&] { (void)read({set}); }, {"'train." + std::string(key) + "'"});
  }
  CHECK(read({"train.max_steps=0", "train.epochs=3"}).train.epochs == 3);
}
