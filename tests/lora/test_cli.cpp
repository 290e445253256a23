// lora-finetune run as a program: a tiny end-to-end train whose loss must fall, then
// eval/predict/merge/export on its adapter; bad inputs give exit 2 or 3 with a message
// that names the file, key or line, and leave no artifact.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "core/h5.hpp"
#include "tensor/safetensors.hpp"
#include "tests/support/harness.hpp"
#include "tests/support/tiny_bert_task.hpp"

namespace fs = std::filesystem;
using mlsys::test::Run;

namespace {

struct Task {
  mlsys::test::TempDir tmp{"lora-cli"};
  fs::path dir = tmp.path;
  std::string base;  // the options every run shares
  Task() {
    mlsys::test::write_tiny_task(dir);
    std::ofstream(dir / "config.json") << nlohmann::json{
        {"model", {{"path", (dir / "model").string()}, {"max_length", 24}}},
        {"data", {{"train", (dir / "train.jsonl").string()}, {"valid", (dir / "valid.jsonl").string()},
                  {"test", (dir / "valid.jsonl").string()}}},
        {"lora", {{"targets", {"all-linear"}}, {"r", 4}, {"alpha", 8}}},
        {"dropout", {{"preset", "hiddenkey"}}},
        {"train", {{"lr", 0.01}, {"batch_size", 32}, {"max_steps", 40}, {"eval_every", 10}, {"warmup_ratio", 0.05}}}}
                                               .dump(2);
    base = "--config " + (dir / "config.json").string() + " --threads 2 --progress never";
  }
};

Run run(const std::string& args) { return mlsys::test::run_program(mlsys::test::program("lora-finetune"), args); }

}  // namespace

TEST_CASE("lora-finetune: train, eval, predict, merge, export on a tiny task") {
  Task t;
  const fs::path out = t.dir / "out";
  Run r = run("train " + t.base + " --out " + out.string() + " --json");
  INFO(r.err << r.out);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["best_accuracy"].get<double>() >= 0.9);
  CHECK(j["final_loss"].get<double>() < 0.35);  // starts at ln 2 ≈ 0.69 (+ KL)
  CHECK(fs::exists(out / "adapter.h5"));
  CHECK(fs::exists(out / "metrics.h5"));

  r = run("eval " + t.base + " --out " + out.string() + " --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["accuracy"].get<double>() == Approx(j["best_accuracy"].get<double>()));

  r = run("predict " + t.base + " --out " + out.string());
  REQUIRE(r.code == 0);
  std::ifstream pred(out / "predictions.jsonl");
  std::string first;
  std::getline(pred, first);
  CHECK(nlohmann::json::parse(first)["probs"].size() == 2);

  r = run("merge " + t.base + " --out " + out.string() + " --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["max_logit_difference"].get<double>() < 1e-4);
  CHECK(fs::exists(out / "merged/model.safetensors"));
  CHECK(fs::exists(out / "merged/vocab.txt"));
  // a second merge replaces the folder whole, leaving no temporary sibling behind
  r = run("merge " + t.base + " --out " + out.string() + " --json");
  REQUIRE(r.code == 0);
  CHECK(fs::exists(out / "merged/labels.json"));
  for (const auto& e : fs::directory_iterator(out)) CHECK_FALSE(e.path().filename().string().starts_with(".merged"));

  r = run("export " + t.base + " --out " + out.string());
  REQUIRE(r.code == 0);
  CHECK(fs::exists(out / "peft/adapter_config.json"));
  CHECK(fs::exists(out / "peft/adapter_model.safetensors"));
  // the exported PEFT folder is accepted as the adapter
  r = run("eval " + t.base + " --out " + (t.dir / "out2").string() + " --set adapter=" +
                  (out / "peft").string() + " --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["accuracy"].get<double>() == Approx(j["best_accuracy"].get<double>()));
}

TEST_CASE("lora-finetune bench: timed steps on a fixed batch, JSON on stdout") {
  Task t;
  Run r = run("bench " + t.base + " --out " + (t.dir / "bench").string() +
                      " --set train.batch_size=4 --set bench.length=12 --set bench.warmup=1 --set bench.steps=3");
  INFO(r.err << r.out);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["step_seconds"].size() == 3);
  CHECK(j["batch"].get<int64_t>() == 4);
  CHECK(j["length"].get<int64_t>() == 12);
  CHECK(j["tokens_per_s"].get<double>() > 0);
  CHECK(j["max_rss_mib"].get<double>() >= j["max_rss_mib_after_load"].get<double>());
  CHECK(std::isfinite(j["final_loss"].get<double>()));
  CHECK(j["preset"] == "hiddenkey");
  CHECK(j["threads"] == 2);  // --threads reached LibTorch's pool
  CHECK_FALSE(fs::exists(t.dir / "bench"));  // writes nothing
  r = run("bench --config " + (t.dir / "config.json").string() + " --threads 1 --set train.batch_size=4 --set bench.length=12 --set bench.warmup=0 "
          "--set bench.steps=1");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["threads"] == 1);
  r = run("bench " + t.base + " --set bench.length=2");
  CHECK(r.code == 2);
  CHECK(r.err.find("bench.length") != std::string::npos);
}

TEST_CASE("lora-finetune: bad configs exit 2, bad data exit 3, no partial artifact") {
  Task t;
  const fs::path out = t.dir / "bad";
  std::ofstream(t.dir / "broken.json") << "{\"lora\": {\"r\": 4,}}";
  Run r = run("train --config " + (t.dir / "broken.json").string() + " --out " + out.string());
  CHECK(r.code == 2);
  CHECK(r.err.find("broken.json") != std::string::npos);

  r = run("train " + t.base + " --out " + out.string() + " --set lora.rank=4");
  CHECK(r.code == 2);
  CHECK(r.err.find("lora.rank") != std::string::npos);

  r = run("train " + t.base + " --out " + out.string() + " --set dropout.preset=dropconnect");
  CHECK(r.code == 2);

  r = run("train " + t.base + " --out " + out.string() + " --set lora.targets=[\\\"q_proj\\\"]");
  CHECK(r.code == 2);
  CHECK(r.err.find("q_proj") != std::string::npos);

  r = run("train " + t.base + " --out " + out.string() + " --set data.train=" + (t.dir / "nope.jsonl").string());
  CHECK(r.code == 3);
  CHECK(r.err.find("nope.jsonl") != std::string::npos);

  std::ofstream(t.dir / "bad.jsonl") << "{\"text\":\"good.\",\"label\":\"pos\"}\n{\"text\":\"bad.\",\"label\":\"neg\"}\n"
                                     << "{\"text\":\"oops\", \"label\":}\n";
  r = run("train " + t.base + " --out " + out.string() + " --set data.train=" + (t.dir / "bad.jsonl").string());
  CHECK(r.code == 3);
  CHECK(r.err.find("bad.jsonl:3") != std::string::npos);

  // a checkpoint missing a tensor: exit 3 naming it
  fs::copy(t.dir / "model", t.dir / "model2");
  {
    const std::string missing = "bert.encoder.layer.1.output.dense.weight";
    auto all = mlsys::tensor::load_safetensors(t.dir / "model/model.safetensors");
    REQUIRE(all.contains(missing));
    mlsys::tensor::NamedTensors kept;
    for (const auto& [n, tensor] : all) {
      if (n != missing) kept.emplace_back(n, tensor);
    }
    mlsys::tensor::save_safetensors(t.dir / "model2/model.safetensors", kept);
    r = run("train " + t.base + " --out " + out.string() + " --set model.path=" + (t.dir / "model2").string());
    INFO(r.err);
    CHECK(r.code == 3);
    CHECK(r.err.find("model.safetensors") != std::string::npos);
    CHECK(r.err.find("layer.1.output.dense.weight") != std::string::npos);
  }

  // a truncated checkpoint: exit 3 naming the file
  fs::copy(t.dir / "model", t.dir / "model3");
  std::ofstream(t.dir / "model3/model.safetensors", std::ios::trunc) << "short";
  r = run("train " + t.base + " --out " + out.string() + " --set model.path=" + (t.dir / "model3").string());
  CHECK(r.code == 3);
  CHECK(r.err.find("model.safetensors") != std::string::npos);

  // model.max_length beyond the model's position table: a config error at start
  r = run("train " + t.base + " --out " + out.string() + " --set model.max_length=100");
  INFO(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find("model.max_length") != std::string::npos);
  CHECK(r.err.find("config.json") != std::string::npos);
  CHECK(r.err.find("64") != std::string::npos);

  // lora_input dropout is always rescaled: another compensation is a config error
  r = run("train " + t.base + " --out " + out.string() +
              " --set 'dropout.sites=[{\"position\":\"lora_input\",\"compensation\":\"none\"}]'");
  INFO(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find("compensation") != std::string::npos);

  // labels: "-" is a label like any other (no crash); an unknown label names file and line
  std::ofstream(t.dir / "dash.jsonl") << "{\"text\":\"good.\",\"label\":\"-\"}\n{\"text\":\"bad.\",\"label\":\"neg\"}\n";
  std::ofstream(t.dir / "unknown.jsonl") << "{\"text\":\"good.\",\"label\":\"-\"}\n\n{\"text\":\"bad.\",\"label\":\"maybe\"}\n";
  r = run("train " + t.base + " --out " + out.string() + " --set data.train=" + (t.dir / "dash.jsonl").string() +
              " --set data.valid=" + (t.dir / "unknown.jsonl").string());
  INFO(r.err);
  CHECK(r.code == 3);
  CHECK(r.err.find("unknown.jsonl:3") != std::string::npos);
  CHECK(r.err.find("maybe") != std::string::npos);

  r = run("eval " + t.base + " --out " + out.string());
  CHECK(r.code == 3);  // no adapter yet
  CHECK(r.err.find("adapter.h5") != std::string::npos);

  CHECK((!fs::exists(out) || fs::is_empty(out)));
}

TEST_CASE("lora-finetune: a run that fails after training started leaves no adapter or metrics") {
  Task t;
  const fs::path out = t.dir / "diverge";
  // a huge learning rate: evaluation at step 1 is the best so far, then the loss overflows
  Run r = run("train " + t.base + " --out " + out.string() +
                  " --set train.lr=1e30 --set train.eval_every=1 --set train.max_steps=6 --set train.warmup_ratio=0");
  INFO(r.err << r.out);
  CHECK(r.code == 1);
  CHECK(r.err.find("not finite") != std::string::npos);
  CHECK_FALSE(fs::exists(out / "adapter.h5"));
  CHECK_FALSE(fs::exists(out / "metrics.h5"));
}

namespace {

// Every dataset of an adapter.h5 (LoRA A/B per module and the head) as raw floats.
std::map<std::string, std::vector<float>> adapter_tensors(const fs::path& path) {
  mlsys::core::H5Reader r(path);
  std::map<std::string, std::vector<float>> out;
  for (const auto& m : r.list("/lora")) {
    for (const char* ab : {"/A", "/B"}) out["/lora/" + m + ab] = r.read_f32("/lora/" + m + ab);
  }
  out["/head/weight"] = r.read_f32("/head/weight");
  out["/head/bias"] = r.read_f32("/head/bias");
  return out;
}

}  // namespace

TEST_CASE("lora-finetune train --resume continues bit-for-bit") {
  Task t;
  // HiddenKey draws dropout masks every step: the generators must be restored too
  const std::string common = "train --config " + (t.dir / "config.json").string() + " --threads 1 --progress never --json --set train.max_steps=12 --set train.eval_every=4";
  const fs::path whole = t.dir / "whole", split = t.dir / "split";
  Run r = run(common + " --out " + whole.string());
  INFO(r.err << r.out);
  REQUIRE(r.code == 0);
  CHECK_FALSE(fs::exists(whole / "checkpoint.h5"));  // removed once the run is complete

  // nothing to resume yet: exit 3 naming the checkpoint
  r = run(common + " --out " + split.string() + " --resume");
  CHECK(r.code == 3);
  CHECK(r.err.find("checkpoint.h5") != std::string::npos);

  fs::copy_file(t.dir / "train.jsonl", t.dir / "train.orig.jsonl");
  // 5 steps (a pause between evaluations), 4 more, then to the end
  r = run(common + " --out " + split.string() + " --set train.run_steps=5");
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["status"] == "paused");
  CHECK(j["steps"] == 5);
  CHECK_FALSE(fs::exists(split / "adapter.h5"));
  // a different config is refused, naming the key
  r = run(common + " --out " + split.string() + " --resume --set train.lr=0.02");
  CHECK(r.code == 2);
  CHECK(r.err.find("train.lr") != std::string::npos);
  // other training data with as many examples is refused too (the checkpoint holds its fingerprint)
  {
    std::string text = mlsys::core::read_file(t.dir / "train.jsonl");
    const auto first = text.find('"', text.find("\"text\"") + 7);
    text.insert(first + 1, "x");
    std::ofstream(t.dir / "train2.jsonl") << text;
  }
  r = run(common + " --out " + split.string() + " --resume --set data.train=" + (t.dir / "train2.jsonl").string());
  CHECK(r.code == 2);  // the data path is part of the config key first
  r = run(common + " --out " + split.string() + " --resume --set data.test=" + (t.dir / "train.jsonl").string() +
              " --set train.run_steps=4");
  REQUIRE(r.code == 0);  // keys that training does not read may change
  CHECK(nlohmann::json::parse(r.out)["steps"] == 9);
  fs::copy_file(t.dir / "train2.jsonl", t.dir / "train.jsonl", fs::copy_options::overwrite_existing);
  r = run(common + " --out " + split.string() + " --resume");
  CHECK(r.code == 3);
  CHECK(r.err.find("other training data") != std::string::npos);
  fs::copy_file(t.dir / "train.orig.jsonl", t.dir / "train.jsonl", fs::copy_options::overwrite_existing);
  r = run(common + " --out " + split.string() + " --resume");
  REQUIRE(r.code == 0);
  j = nlohmann::json::parse(r.out);
  CHECK(j["status"] == "done");
  CHECK(j["steps"] == 12);

  const auto a = adapter_tensors(whole / "adapter.h5"), b = adapter_tensors(split / "adapter.h5");
  REQUIRE(a.size() == b.size());
  REQUIRE(a.size() > 2);
  for (const auto& [name, v] : a) {
    INFO(name);
    CHECK(v == b.at(name));  // exact, not approximate
  }
  mlsys::core::H5Reader ma(whole / "metrics.h5"), mb(split / "metrics.h5");
  CHECK(ma.read_f64("/metrics/loss") == mb.read_f64("/metrics/loss"));
  CHECK(ma.read_f64("/eval/accuracy") == mb.read_f64("/eval/accuracy"));
  CHECK(ma.attr_int("/", "best_step") == mb.attr_int("/", "best_step"));
  CHECK(mb.attr_int("/", "resumed_at_step") == 9);
}

TEST_CASE("lora-finetune on a causal LM: convert stories260K, train, eval, predict, export, merge") {
  mlsys::test::TempDir tmp{"lora-lm"};
  const fs::path dir = tmp.path, model = dir / "s260", out = dir / "out";
  Run r = run("convert --set convert.input=" MLSYS_SOURCE_ROOT "/tests/nn/fixtures/stories260K/stories260K.bin --out " +
              model.string() + " --json");
  INFO(r.err << r.out);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["parameters"] == 260032);
  CHECK(j["kv_heads"] == 4);
  CHECK(fs::exists(model / "model.safetensors"));

  // a copy task in token ids (stories260K ships no tokenizer): BOS, 6 random ids, then the
  // same ids again as the completion; seeded, so the numbers below are fixed
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> tokid(3, 511);
  for (const auto& [name, n] : {std::pair<const char*, int>{"train", 128}, {"valid", 32}}) {
    std::ofstream f(dir / (std::string(name) + ".jsonl"));
    for (int i = 0; i < n; ++i) {
      std::vector<int> p = {1};
      for (int k = 0; k < 6; ++k) p.push_back(tokid(rng));
      f << nlohmann::json{{"prompt_ids", p}, {"completion_ids", std::vector<int>(p.begin() + 1, p.end())}}.dump() << "\n";
    }
  }
  {
    std::ofstream f(dir / "prompts.jsonl");
    f << R"({"prompt_ids": [1, 40, 41]})" << "\n" << R"({"ids": [1, 300]})" << "\n";
  }
  const std::string base = "--set model.path=" + model.string() + " --set data.train=" + (dir / "train.jsonl").string() +
                           " --set data.valid=" + (dir / "valid.jsonl").string() + " --set data.test=" +
                           (dir / "valid.jsonl").string() + " --set model.max_length=32 --threads 1 --progress never --out " +
                           out.string() + " --json";
  // the base model's loss on the copy task (B = 0: the adapter adds nothing yet) is far
  // above uniform guessing; training must bring it well down
  r = run("train " + base + " --set 'lora.targets=[\"q_proj\",\"v_proj\",\"o_proj\"]' --set train.lr=0.01" +
          " --set train.max_steps=30 --set train.eval_every=10 --set train.batch_size=16");
  INFO(r.err << r.out);
  REQUIRE(r.code == 0);
  j = nlohmann::json::parse(r.out);
  CHECK(j["task"] == "causal-lm");
  const double best = j["best_loss"].get<double>();
  CHECK(best < 9.0);
  CHECK(j["best_perplexity"].get<double>() == Approx(std::exp(best)).epsilon(1e-6));
  mlsys::core::H5Reader m(out / "metrics.h5");
  const auto losses = m.read_f64("/metrics/loss");
  REQUIRE(losses.size() == 30);
  CHECK(losses.back() < losses.front() - 2.0);

  r = run("eval " + base);
  REQUIRE(r.code == 0);
  j = nlohmann::json::parse(r.out);
  CHECK(j["loss"].get<double>() == Approx(best).epsilon(1e-6));  // the kept adapter is the best one
  CHECK(j["target_tokens"] == 32 * 6);

  r = run("predict " + base + " --set data.predict=" + (dir / "prompts.jsonl").string() +
          " --set generate.max_new_tokens=5");
  REQUIRE(r.code == 0);
  std::ifstream pred(out / "predictions.jsonl");
  std::string line;
  int rows = 0;
  while (std::getline(pred, line)) {
    CHECK(nlohmann::json::parse(line)["completion_ids"].size() == 5);
    ++rows;
  }
  CHECK(rows == 2);

  r = run("export " + base);
  REQUIRE(r.code == 0);
  auto cfg = nlohmann::json::parse(mlsys::core::read_file(out / "peft/adapter_config.json"));
  CHECK(cfg["task_type"] == "CAUSAL_LM");
  r = run("merge " + base);
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["max_logit_difference"].get<double>() < 1e-4);

  // a text example needs a tokenizer, which this folder lacks: exit 3 naming the line
  {
    std::ofstream f(dir / "text.jsonl");
    f << R"({"prompt_ids": [1, 2], "completion_ids": [3]})" << "\n" << R"({"text": "Once upon a time"})" << "\n";
  }
  r = run("train " + base + " --set data.train=" + (dir / "text.jsonl").string());
  CHECK(r.code == 3);
  CHECK(r.err.find("text.jsonl:2") != std::string::npos);
  CHECK(r.err.find("tokenizer.model") != std::string::npos);
  // an id outside the vocabulary
  {
    std::ofstream f(dir / "big.jsonl");
    f << R"({"ids": [1, 2, 512]})" << "\n";
  }
  r = run("train " + base + " --set data.train=" + (dir / "big.jsonl").string());
  CHECK(r.code == 3);
  CHECK(r.err.find("big.jsonl:1") != std::string::npos);
  // a truncated checkpoint
  {
    const std::string bytes = mlsys::core::read_file(MLSYS_SOURCE_ROOT "/tests/nn/fixtures/stories260K/stories260K.bin");
    std::ofstream(dir / "cut.bin", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  r = run("convert --set convert.input=" + (dir / "cut.bin").string() + " --out " + (dir / "cut").string());
  CHECK(r.code == 3);
  CHECK(r.err.find("cut.bin") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "cut" / "model.safetensors"));
  // convert replaces a model folder whole, but not a folder of other things
  fs::create_directories(dir / "notes");
  std::ofstream(dir / "notes" / "todo.txt") << "keep me\n";
  r = run("convert --set convert.input=" MLSYS_SOURCE_ROOT "/tests/nn/fixtures/stories260K/stories260K.bin --out " +
          (dir / "notes").string());
  CHECK(r.code == 2);
  CHECK(fs::exists(dir / "notes" / "todo.txt"));

  // text data through a SentencePiece tokenizer.model (the fortunes-trained fixture: 512
  // pieces like stories260K's own, though not its vocabulary; this exercises the text path)
  const fs::path withtok = dir / "s260-spm";
  r = run("convert --set convert.input=" MLSYS_SOURCE_ROOT "/tests/nn/fixtures/stories260K/stories260K.bin"
          " --set convert.tokenizer=" MLSYS_SOURCE_ROOT "/tests/nn/fixtures/spm/tokenizer.model --out " + withtok.string());
  REQUIRE(r.code == 0);
  CHECK(fs::exists(withtok / "tokenizer.model"));
  {
    std::ofstream f(dir / "stories.jsonl");
    f << R"({"text": "Once upon a time there was a little dog."})" << "\n"
      << R"({"prompt": "The cat sat", "completion": " on the mat."})" << "\n";
  }
  std::string text_base = base;
  text_base.replace(text_base.find(" --out "), std::string(" --out " + out.string()).size(), " --out " + (dir / "out-text").string());
  r = run("train " + text_base + " --set model.path=" + withtok.string() + " --set data.train=" +
          (dir / "stories.jsonl").string() + " --set data.valid=" + (dir / "stories.jsonl").string() +
          " --set train.max_steps=3 --set train.eval_every=0");
  INFO(r.err);
  CHECK(r.code == 0);
  {
    std::ofstream f(dir / "long.jsonl");
    f << R"({"prompt_ids": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33]})" << "\n";
  }
  r = run("predict " + base + " --set data.predict=" + (dir / "long.jsonl").string());
  CHECK(r.code == 3);
  CHECK(r.err.find("long.jsonl:1") != std::string::npos);
}

TEST_CASE("lora-finetune on RoBERTa: BPE tokenizer from the folder; train, eval, predict, export, merge") {
  mlsys::test::TempDir tmp{"lora-roberta"};
  const fs::path dir = tmp.path;
  const fs::path model = fs::path(MLSYS_SOURCE_ROOT) / "tests/nn/fixtures/roberta";
  const char* nouns[] = {"movie", "book", "song", "food", "game", "city", "car", "house", "dog", "show"};
  auto write = [&](const fs::path& p, int n, int offset) {
    std::ofstream f(p);
    for (int i = 0; i < n; ++i) {
      const bool pos = (i + offset) % 2 == 0;
      const std::string noun = nouns[(i * 3 + offset) % 10];
      f << nlohmann::json{{"text", pos ? "I love this " + noun + ", it is great!" : "I hate that " + noun + "; it's awful."},
                          {"label", pos ? "pos" : "neg"}}
               .dump()
        << "\n";
    }
  };
  write(dir / "train.jsonl", 40, 0);
  write(dir / "valid.jsonl", 10, 1);
  std::ofstream(dir / "config.json") << nlohmann::json{
      {"model", {{"path", model.string()}, {"max_length", 24}}},
      {"data", {{"train", (dir / "train.jsonl").string()}, {"valid", (dir / "valid.jsonl").string()},
                {"test", (dir / "valid.jsonl").string()}}},
      {"lora", {{"targets", {"query", "value"}}, {"r", 4}, {"alpha", 8}}},
      {"train", {{"lr", 0.01}, {"batch_size", 16}, {"max_steps", 30}, {"eval_every", 10}}}}
                                             .dump(2);
  // one thread: a model this small only loses time to thread hand-offs on a busy machine
  const std::string base = "--config " + (dir / "config.json").string() + " --threads 1 --progress never";
  const fs::path out = dir / "out";

  Run r = run("train " + base + " --out " + out.string() + " --json");
  INFO(r.err << r.out);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["task"] == "classification");
  CHECK(j["best_accuracy"].get<double>() >= 0.9);
  // LoRA on query/value in 2 layers (r=4, 32x32) + the whole head (dense 32x32+32, out_proj 2x32+2)
  CHECK(j["trainable_parameters"].get<int64_t>() == 4 * (4 * 32 + 32 * 4) + (32 * 32 + 32) + (2 * 32 + 2));

  r = run("eval " + base + " --out " + out.string() + " --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["accuracy"].get<double>() == Approx(j["best_accuracy"].get<double>()));

  r = run("predict " + base + " --out " + out.string());
  REQUIRE(r.code == 0);
  std::ifstream pred(out / "predictions.jsonl");
  std::string first;
  std::getline(pred, first);
  CHECK(nlohmann::json::parse(first)["probs"].size() == 2);

  r = run("export " + base + " --out " + out.string());
  REQUIRE(r.code == 0);
  auto peft = mlsys::tensor::load_safetensors(out / "peft/adapter_model.safetensors");
  CHECK(peft.count("base_model.model.classifier.dense.weight") == 1);
  CHECK(peft.count("base_model.model.classifier.out_proj.weight") == 1);
  CHECK(peft.count("base_model.model.roberta.encoder.layer.0.attention.self.query.lora_A.weight") == 1);
  r = run("eval " + base + " --out " + (dir / "out2").string() + " --set adapter=" + (out / "peft").string() + " --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["accuracy"].get<double>() == Approx(j["best_accuracy"].get<double>()));

  r = run("merge " + base + " --out " + out.string() + " --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["max_logit_difference"].get<double>() < 1e-4);
  CHECK(fs::exists(out / "merged/vocab.json"));
  CHECK(fs::exists(out / "merged/merges.txt"));
  auto merged_cfg = nlohmann::json::parse(std::ifstream(out / "merged/config.json"));
  CHECK(merged_cfg["model_type"] == "roberta");
  CHECK(merged_cfg["architectures"][0] == "RobertaForSequenceClassification");
  auto merged = mlsys::tensor::load_safetensors(out / "merged/model.safetensors");
  CHECK(merged.count("classifier.out_proj.weight") == 1);
  CHECK(merged.count("roberta.embeddings.position_embeddings.weight") == 1);
}

// ------------------------------------------------------------------ hardening (issue 20)

TEST_CASE("lora-finetune: a run of no steps, or a number beyond a double, exits 2 and keeps the good adapter",
          "[hardening]") {
  Task t;
  const fs::path out = t.dir / "out";
  Run r = run("train " + t.base + " --out " + out.string() + " --set train.max_steps=4 --set train.eval_every=0");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const std::string good = mlsys::test::slurp(out / "adapter.h5");
  REQUIRE(!good.empty());
  // 4e17 epochs x 32 steps per epoch (256 examples, batches of 8) overflowed to a negative
  // step count: 0 steps, exit 0, an untrained adapter in place of the good one
  r = run("train " + t.base + " --out " + out.string() +
          " --set train.max_steps=0 --set train.epochs=4e17 --set train.batch_size=8");
  INFO(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find("train.epochs") != std::string::npos);
  CHECK(mlsys::test::slurp(out / "adapter.h5") == good);
  // 1e309 from --set and from the file: nlohmann's out_of_range.406 was exit 1 naming nothing
  r = run("train " + t.base + " --out " + out.string() + " --set train.lr=1e309");
  CHECK(r.code == 2);
  CHECK(r.err.find("train.lr") != std::string::npos);
  std::ofstream(t.dir / "huge.json") << R"({"train": {"lr": 1e309}})";
  r = run("train --config " + (t.dir / "huge.json").string() + " --out " + out.string());
  CHECK(r.code == 2);
  CHECK(r.err.find("huge.json") != std::string::npos);
  CHECK(r.err.find("train.lr") != std::string::npos);
  CHECK(mlsys::test::slurp(out / "adapter.h5") == good);
}

TEST_CASE("lora-finetune: hostile model and adapter files exit 3 with one short line naming the file", "[hardening]") {
  Task t;
  const fs::path out = t.dir / "out";
  Run r = run("train " + t.base + " --out " + out.string() + " --set train.max_steps=4 --set train.eval_every=0");
  INFO(r.err);
  REQUIRE(r.code == 0);
  r = run("export " + t.base + " --out " + out.string());
  REQUIRE(r.code == 0);
  const fs::path peft = out / "peft";
  const std::string peft_config = mlsys::test::slurp(peft / "adapter_config.json");
  auto eval_peft = [&] { return run("eval " + t.base + " --out " + (t.dir / "e").string() + " --set adapter=" + peft.string()); };

  // 50k levels in adapter_config.json: a segfault in the error message's dump()
  std::string deep = peft_config;
  deep.insert(deep.find('{') + 1, "\"lora_bias\": " + std::string(50000, '[') + std::string(50000, ']') + ", ");
  mlsys::test::write_file(peft / "adapter_config.json", deep);
  r = eval_peft();
  CHECK(r.code == 3);
  CHECK(r.err.find("adapter_config.json") != std::string::npos);
  CHECK(r.err.size() < 600);

  // NaN adapter weights: "loss": null in eval.json, exit 0
  mlsys::test::write_file(peft / "adapter_config.json", peft_config);
  {
    const fs::path st = peft / "adapter_model.safetensors";
    mlsys::tensor::NamedTensors named;
    for (auto& [n, tensor] : mlsys::tensor::load_safetensors(st)) {
      if (n.ends_with("lora_B.weight")) tensor.fill_(std::nan(""));
      named.emplace_back(n, tensor);
    }
    mlsys::tensor::save_safetensors(st, named);
  }
  r = eval_peft();
  INFO(r.err);
  CHECK(r.code == 3);
  CHECK(r.err.find("adapter_model.safetensors") != std::string::npos);
  CHECK(r.err.find("NaN") != std::string::npos);

  // a vocab.txt longer than the embeddings, used by the data: "index out of range in self"
  // and a LibTorch backtrace, exit 1
  std::ofstream(t.dir / "model/vocab.txt", std::ios::app) << "zebra\n";
  std::ofstream(t.dir / "zebra.jsonl") << "{\"text\":\"good zebra.\",\"label\":\"pos\"}\n{\"text\":\"bad.\",\"label\":\"neg\"}\n";
  r = run("eval " + t.base + " --out " + out.string() + " --set data.test=" + (t.dir / "zebra.jsonl").string());
  INFO(r.err);
  CHECK(r.code == 3);
  CHECK(r.err.find("vocab.txt") != std::string::npos);
  CHECK(r.err.find("index out of range") == std::string::npos);
}

TEST_CASE("lora-finetune train replaces adapter.h5 and metrics.h5 as a pair or not at all") {
  Task t;
  const fs::path out = t.dir / "pair";
  const std::string common = "train " + t.base + " --set train.max_steps=4 --set train.eval_every=2 --out " + out.string();
  Run r = run(common);
  INFO(r.err << r.out);
  REQUIRE(r.code == 0);
  const std::string adapter = mlsys::test::slurp(out / "adapter.h5");
  REQUIRE(!adapter.empty());
  // the second artifact cannot be replaced (a folder in its way): the first must not be either
  fs::remove(out / "metrics.h5");
  fs::create_directory(out / "metrics.h5");
  r = run(common + " --seed 7");
  INFO(r.err << r.out);
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("metrics.h5"));
  const bool unchanged = mlsys::test::slurp(out / "adapter.h5") == adapter;
  CHECK(unchanged);
  for (const auto& e : fs::directory_iterator(out)) {
    INFO(e.path());
    CHECK(e.path().filename().string().front() != '.');  // no temporary, no staging folder left
  }
}

namespace {

// The corpus rows of the multi-script fixture (tests/nn/fixtures/unicode/ids.jsonl, Hugging
// Face's ids) that are one line of text each.
std::vector<nlohmann::json> one_line_fixture_rows() {
  std::ifstream in(MLSYS_SOURCE_ROOT "/tests/nn/fixtures/unicode/ids.jsonl");
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("meta") || j["kind"] != "corpus") continue;
    const auto text = j["text"].get<std::string>();
    if (text.find_first_of("\r\n") == std::string::npos) rows.push_back(std::move(j));
  }
  return rows;
}

}  // namespace

TEST_CASE("lora-finetune tokenize: Hugging Face's ids for every tokenizer, from a file or stdin, JSONL or a table") {
  mlsys::test::TempDir tmp{"lora-tokenize"};
  const fs::path dir = tmp.path;
  const auto rows = one_line_fixture_rows();
  REQUIRE(rows.size() >= 100);
  {
    std::ofstream f(dir / "texts.txt", std::ios::binary);
    for (const auto& r : rows) f << r["text"].get<std::string>() << "\n";
  }
  const std::string texts = (dir / "texts.txt").string();
  // llama: stories260K converted with the 512-piece SentencePiece model of the fixtures
  Run r = run("convert --set convert.input=" MLSYS_SOURCE_ROOT "/tests/nn/fixtures/stories260K/stories260K.bin"
              " --set convert.tokenizer=" MLSYS_SOURCE_ROOT "/tests/nn/fixtures/spm/tokenizer.model --out " +
              (dir / "s260").string());
  REQUIRE(r.code == 0);
  const std::vector<std::pair<std::string, std::string>> models = {
      {"bert", MLSYS_SOURCE_ROOT "/.deps/models/all-MiniLM-L6-v2"},
      {"roberta", MLSYS_SOURCE_ROOT "/tests/nn/fixtures/roberta"},
      {"llama", (dir / "s260").string()}};
  for (const auto& [column, path] : models) {
    INFO(column);
    for (const std::string& how : {"--input " + texts + " --format jsonl", "--json < " + texts}) {
      r = run("tokenize --set model.path=" + path + " " + how);
      INFO(r.err);
      REQUIRE(r.code == 0);
      std::istringstream out(r.out);
      size_t n = 0, bad = 0;
      for (std::string line; std::getline(out, line); ++n) {
        const auto j = nlohmann::json::parse(line);
        REQUIRE(n < rows.size());
        CHECK(j["line"] == n + 1);
        CHECK(j["text"] == rows[n]["text"]);
        CHECK(j["pieces"].size() == j["ids"].size());
        if (j["ids"] != rows[n][column]) {
          ++bad;
          UNSCOPED_INFO("differs: " << rows[n]["text"].dump());
        }
        if (column == "bert") {
          auto inner = j["pieces"].get<std::vector<std::string>>();
          REQUIRE(inner.size() >= 2);
          CHECK(inner.front() == "[CLS]");
          CHECK(inner.back() == "[SEP]");
          CHECK(std::vector<std::string>(inner.begin() + 1, inner.end() - 1) == rows[n]["bert_pieces"]);
        }
      }
      CHECK(n == rows.size());
      CHECK(bad == 0);
    }
  }
  // the table: one row per token, then the count
  std::ofstream(dir / "two.txt") << "Hello, Wörld!\r\nｶﾞ\u3000「한」\n";
  r = run("tokenize --set model.path=" + models[0].second + " --input " + (dir / "two.txt").string());
  REQUIRE(r.code == 0);
  CHECK(r.out.starts_with("line  pos     id  piece\n"));
  CHECK(r.out.find("2 texts, 14 tokens (wordpiece, " + models[0].second + ")\n") != std::string::npos);
  CHECK(r.out.find("2088  world") != std::string::npos);
  CHECK(r.out.find("##ᅡ") != std::string::npos);  // 한 decomposed into jamo (NFD)
}

TEST_CASE("lora-finetune tokenize: bad input is one line and exit 3; a bad format exit 2") {
  mlsys::test::TempDir tmp{"lora-tokenize-bad"};
  const fs::path dir = tmp.path;
  std::ofstream(dir / "bad.txt", std::ios::binary) << "fine\nnot \xC3\x28 utf-8\n";
  const auto run = [](const std::string& args) {
    const bool minilm = args.starts_with("tokenize") && args.find("model.path=") == std::string::npos;
    return ::run(minilm ? args + " --set model.path=" MLSYS_SOURCE_ROOT "/.deps/models/all-MiniLM-L6-v2" : args);
  };
  Run r = run("tokenize --input " + (dir / "bad.txt").string());
  CHECK(r.code == 3);
  CHECK(r.err.find("bad.txt:2: not UTF-8 (byte 5 of the line: \\xc3(") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  r = run("tokenize --json < " + (dir / "bad.txt").string());
  CHECK(r.code == 3);
  CHECK(r.err.find("<stdin>:2: not UTF-8") != std::string::npos);
  r = run("tokenize --input " + (dir / "missing.txt").string());
  CHECK(r.code == 3);
  CHECK(r.err.find("missing.txt: no such file") != std::string::npos);
  r = run("tokenize --format xml < /dev/null");
  CHECK(r.code == 2);
  CHECK(r.err.find("tokenize.format") != std::string::npos);
  // a llama folder without tokenizer.model: nothing to tokenize text with
  r = run("convert --set convert.input=" MLSYS_SOURCE_ROOT "/tests/nn/fixtures/stories260K/stories260K.bin --out " +
          (dir / "s260").string());
  REQUIRE(r.code == 0);
  r = run("tokenize --set model.path=" + (dir / "s260").string() + " < /dev/null");
  CHECK(r.code == 3);
  CHECK(r.err.find("tokenizer.model: no such file") != std::string::npos);
  // empty input: no texts
  r = run("tokenize --json < /dev/null");
  CHECK(r.code == 0);
  CHECK(r.out.empty());
}
