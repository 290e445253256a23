// prolora-finetune run as a program: a tiny end-to-end train (loss must fall, parameter
// counts printed and recorded), eval/predict/merge/export on its compact adapter, the PEFT
// export as an adapter, bench, plan --budget, --resume, and bad inputs (exit 2 or 3, one
// line naming the key or file, no artifact).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/h5.hpp"
#include "tests/support/harness.hpp"
#include "tests/support/tiny_bert_task.hpp"

namespace fs = std::filesystem;
using mlsys::test::Run;

namespace {

struct Task {
  mlsys::test::TempDir tmp{"prolora-cli"};
  fs::path dir = tmp.path;
  std::string base, one_thread;  // the options every run shares (2 or 1 threads)
  Task() {
    mlsys::test::write_tiny_task(dir);
    nlohmann::json c = {
        {"model", {{"path", (dir / "model").string()}, {"max_length", 24}}},
        {"data", {{"train", (dir / "train.jsonl").string()}, {"valid", (dir / "valid.jsonl").string()},
                  {"test", (dir / "valid.jsonl").string()}}},
        {"lora", {{"targets", {"all-linear"}}, {"r", 4}, {"alpha", 8}}},
        {"prolora", {{"u", 1}, {"m", 2}, {"n", 2}}},
        {"dropout", {{"preset", "hiddenkey"}}},
        {"train", {{"lr", 0.01}, {"batch_size", 32}, {"max_steps", 40}, {"eval_every", 10}, {"warmup_ratio", 0.05}}}};
    std::ofstream(dir / "config.json") << c.dump(2);
    c.erase("prolora");  // the same task for lora-finetune
    std::ofstream(dir / "lora-config.json") << c.dump(2);
    base = "--config " + (dir / "config.json").string() + " --threads 2 --progress never";
    one_thread = "--config " + (dir / "config.json").string() + " --threads 1 --progress never";
  }
};

Run run(const std::string& args) { return mlsys::test::run_program(mlsys::test::program("prolora-finetune"), args); }

}  // namespace

TEST_CASE("prolora-finetune: train, eval, predict, merge, export on a tiny task", "[prolora]") {
  Task t;
  const fs::path out = t.dir / "out";
  Run r = run("train " + t.base + " --out " + out.string() + " --json");
  INFO(r.err << r.out);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["best_accuracy"].get<double>() >= 0.9);
  CHECK(j["final_loss"].get<double>() < 0.4);  // starts at ln 2 ≈ 0.69 (+ KL)
  // the counts: tiny BERT hidden 32, intermediate 64, 2 layers; all-linear = 4 [32x32] + [64x32] + [32x64]
  // per layer and the pooler; R = 3 shared ranks
  const int64_t sq = 3 * (16 + 16) + 64, up = 3 * (16 + 32) + 96;
  const int64_t want = 2 * (4 * sq + 2 * up) + sq;
  const int64_t lora = 4 * (2 * (4 * 64 + 2 * 96) + 64);
  CHECK(j["adapter_report"]["parameters"].get<int64_t>() == want);
  CHECK(j["adapter_report"]["lora_parameters"].get<int64_t>() == lora);
  CHECK(j["trainable_parameters"].get<int64_t>() == want + 2 * 32 + 2);  // + the classifier head
  CHECK(r.err.find("PRoLoRA parameters in total: " + std::to_string(want)) != std::string::npos);
  CHECK(r.err.find("per module of 32x32 (9 modules): " + std::to_string(sq)) != std::string::npos);
  {
    mlsys::core::H5Reader m(out / "metrics.h5");
    CHECK(m.attr_int("/", "adapter_parameters") == want);
    CHECK(m.attr_int("/", "lora_parameters") == lora);
    CHECK(m.read_i64("/adapter/parameters").size() == 13);
    mlsys::core::H5Reader a(out / "adapter.h5");
    CHECK(a.has("/prolora/bert.encoder.layer.0.attention.self.query/A0"));
    CHECK(a.shape("/prolora/bert.encoder.layer.0.attention.self.query/A0") == std::vector<uint64_t>{3, 16});
    CHECK(a.shape("/prolora/bert.encoder.layer.0.attention.self.query/B_u") == std::vector<uint64_t>{32, 1});
    CHECK(a.read_i64("/prolora/bert.encoder.layer.0.intermediate.dense/layout") ==
          std::vector<int64_t>{32, 64, 4, 1, 2, 2, 1, 1});
    CHECK(a.attr_string("/", "program") == "prolora-finetune");
    CHECK_FALSE(a.has("/lora/bert.encoder.layer.0.attention.self.query"));
  }

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
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["max_logit_difference"].get<double>() < 1e-4);
  CHECK(nlohmann::json::parse(r.out)["modules"].get<int64_t>() == 13);
  CHECK(fs::exists(out / "merged/model.safetensors"));

  r = run("export " + t.base + " --out " + out.string());
  REQUIRE(r.code == 0);
  CHECK(r.out.find("PRoLoRA (materialised as LoRA)") != std::string::npos);
  const auto cfg = nlohmann::json::parse(mlsys::test::slurp(out / "peft/adapter_config.json"));
  CHECK(cfg["peft_type"] == "LORA");
  CHECK(cfg["r"] == 4);
  // the PEFT folder as the adapter (LoRA form): the same accuracy, by either program
  r = run("eval " + t.base + " --out " + (t.dir / "out2").string() + " --set adapter=" + (out / "peft").string() +
          " --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["accuracy"].get<double>() == Approx(j["best_accuracy"].get<double>()));
  r = mlsys::test::run_program(mlsys::test::program("lora-finetune"),
                               "eval --config " + (t.dir / "lora-config.json").string() + " --threads 2 --out " +
                                   (t.dir / "out3").string() + " --set adapter=" + (out / "peft").string() + " --json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["accuracy"].get<double>() == Approx(j["best_accuracy"].get<double>()));
}

TEST_CASE("prolora-finetune: the chunked and materialised forward train to the same adapter", "[prolora]") {
  Task t;
  const std::string common = "train " + t.one_thread + " --json --set train.max_steps=6 --set train.eval_every=3";
  Run a = run(common + " --out " + (t.dir / "chunked").string() + " --set prolora.forward=chunked");
  Run b = run(common + " --out " + (t.dir / "mat").string());  // the default
  INFO(a.err << b.err);
  REQUIRE(a.code == 0);
  REQUIRE(b.code == 0);
  const auto ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
  CHECK(ja["final_loss"].get<double>() == Approx(jb["final_loss"].get<double>()).epsilon(1e-4));
  CHECK(ja["adapter_report"]["forward"] == "chunked");
  CHECK(jb["adapter_report"]["forward"] == "materialized");
}

TEST_CASE("prolora-finetune bench and plan --budget", "[prolora]") {
  Task t;
  Run r = run("bench " + t.base + " --set train.batch_size=4 --set bench.length=12 --set bench.warmup=1 --set bench.steps=2");
  INFO(r.err << r.out);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["impl"] == "prolora-finetune");
  CHECK(j["step_seconds"].size() == 2);
  CHECK(j["adapter_report"]["u"] == 1);
  CHECK(j["adapter_report"]["parameters"].get<int64_t>() + 2 * 32 + 2 == j["trainable_parameters"].get<int64_t>());

  // plan on the tiny model's config.json: budget = LoRA r=4 over all-linear (13 modules)
  const int64_t lora = 4 * (2 * (4 * 64 + 2 * 96) + 64);
  r = run("plan " + t.base + " --json");
  INFO(r.err << r.out);
  REQUIRE(r.code == 0);
  j = nlohmann::json::parse(r.out);
  CHECK(j["budget"].get<int64_t>() == lora);
  CHECK(j["modules"] == 13);
  CHECK(j["configured"]["lora_parameters"].get<int64_t>() == lora);
  r = run("plan " + t.base + " --budget 500 --json");
  REQUIRE(r.code == 0);
  j = nlohmann::json::parse(r.out);
  CHECK(j["budget"] == 500);
  REQUIRE(!j["plans"].empty());
  for (const auto& p : j["plans"]) CHECK(p["parameters"].get<int64_t>() <= 500);
  CHECK(j["plans"][0]["r"].get<int64_t>() > j["plans"].back()["r"].get<int64_t>());
  r = run("plan " + t.base + " --budget 500");  // the table
  REQUIRE(r.code == 0);
  CHECK(r.out.find("budget 500") != std::string::npos);
  CHECK(r.out.find("variant") != std::string::npos);
  r = run("plan " + t.base + " --budget -3");
  CHECK(r.code == 2);
  CHECK(r.err.find("plan.budget") != std::string::npos);
  r = run("plan " + t.base + " --budget");
  CHECK(r.code == 2);
}

TEST_CASE("prolora-finetune: bad configs exit 2, bad adapters exit 3, no partial artifact", "[prolora]") {
  Task t;
  const fs::path out = t.dir / "bad";
  Run r = run("train " + t.base + " --out " + out.string() + " --set prolora.u=9");
  CHECK(r.code == 2);
  CHECK(r.err.find("prolora.u") != std::string::npos);
  r = run("train " + t.base + " --out " + out.string() + " --set prolora.m=40");
  INFO(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find("prolora.m") != std::string::npos);
  r = run("train " + t.base + " --out " + out.string() + " --set prolora.variant=vera");
  CHECK(r.code == 2);
  r = run("train " + t.base + " --out " + out.string() + " --set lora.init=gaussian");
  CHECK(r.code == 2);
  CHECK(r.err.find("lora.init") != std::string::npos);
  r = run("eval " + t.base + " --out " + out.string());
  CHECK(r.code == 3);
  CHECK(r.err.find("adapter.h5") != std::string::npos);
  // a lora-finetune adapter is not a prolora-finetune adapter
  const fs::path lout = t.dir / "lora";
  std::ofstream(t.dir / "lora.json") << nlohmann::json{
      {"model", {{"path", (t.dir / "model").string()}, {"max_length", 24}}},
      {"data", {{"train", (t.dir / "train.jsonl").string()}, {"valid", ""}}},
      {"lora", {{"r", 2}}},
      {"train", {{"max_steps", 1}, {"batch_size", 8}}}}.dump();
  r = mlsys::test::run_program(mlsys::test::program("lora-finetune"),
                               "train --config " + (t.dir / "lora.json").string() + " --threads 1 --progress never --out " +
                                   lout.string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  r = run("eval " + t.base + " --out " + out.string() + " --set adapter=" + (lout / "adapter.h5").string());
  CHECK(r.code == 3);
  CHECK(r.err.find("lora-finetune adapter") != std::string::npos);
  CHECK((!fs::exists(out) || fs::is_empty(out)));
}

TEST_CASE("prolora-finetune train --resume continues bit-for-bit", "[prolora]") {
  Task t;
  const std::string common = "train " + t.one_thread + " --json --set train.max_steps=8 --set train.eval_every=4";
  Run whole = run(common + " --out " + (t.dir / "whole").string());
  REQUIRE(whole.code == 0);
  Run part = run(common + " --out " + (t.dir / "split").string() + " --set train.run_steps=4");
  INFO(part.err);
  REQUIRE(part.code == 0);
  Run rest = run(common + " --out " + (t.dir / "split").string() + " --resume");
  INFO(rest.err);
  REQUIRE(rest.code == 0);
  mlsys::core::H5Reader a(t.dir / "whole/adapter.h5"), b(t.dir / "split/adapter.h5");
  for (const auto& m : a.list("/prolora")) {
    for (const char* part_name : {"/A0", "/B0", "/A_u", "/B_u"}) {
      const std::string p = "/prolora/" + m + part_name;
      CHECK(a.read_f32(p) == b.read_f32(p));
    }
  }
}
