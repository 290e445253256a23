// lora-finetune run as a program: a tiny end-to-end train whose loss must fall, then
// eval/predict/merge/export on its adapter; bad inputs give exit 2 or 3 with a message
// that names the file, key or line, and leave no artifact. LORA_FINETUNE is its path.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/lora/tiny_model.hpp"

namespace fs = std::filesystem;

namespace {

struct Run {
  int code = -1;
  std::string out, err;
};

Run run(const fs::path& dir, const std::string& args) {
  const char* exe = std::getenv("LORA_FINETUNE");
  REQUIRE(exe != nullptr);
  const std::string cmd = std::string(exe) + " " + args + " >" + (dir / "stdout.txt").string() + " 2>" +
                          (dir / "stderr.txt").string();
  const int st = std::system(cmd.c_str());
  Run r;
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::stringstream a, b;
  a << std::ifstream(dir / "stdout.txt").rdbuf();
  b << std::ifstream(dir / "stderr.txt").rdbuf();
  r.out = a.str();
  r.err = b.str();
  return r;
}

struct Task {
  fs::path dir;
  std::string base;  // the options every run shares
  Task() {
    dir = fs::temp_directory_path() / ("mlsys-lora-cli-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_tiny_task(dir);
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
  ~Task() { fs::remove_all(dir); }
};

}  // namespace

TEST_CASE("lora-finetune: train, eval, predict, merge, export on a tiny task") {
  Task t;
  const fs::path out = t.dir / "out";
  Run r = run(t.dir, "train " + t.base + " --out " + out.string() + " --json");
  INFO(r.err << r.out);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["best_accuracy"].get<double>() >= 0.9);
  CHECK(j["final_loss"].get<double>() < 0.35);  // starts at ln 2 ≈ 0.69 (+ KL)
  CHECK(fs::exists(out / "adapter.h5"));
  CHECK(fs::exists(out / "metrics.h5"));

  r = run(t.dir, "eval " + t.base + " --out " + out.string() + " --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["accuracy"].get<double>() == Approx(j["best_accuracy"].get<double>()));

  r = run(t.dir, "predict " + t.base + " --out " + out.string());
  REQUIRE(r.code == 0);
  std::ifstream pred(out / "predictions.jsonl");
  std::string first;
  std::getline(pred, first);
  CHECK(nlohmann::json::parse(first)["probs"].size() == 2);

  r = run(t.dir, "merge " + t.base + " --out " + out.string() + " --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["max_logit_difference"].get<double>() < 1e-4);
  CHECK(fs::exists(out / "merged/model.safetensors"));

  r = run(t.dir, "export " + t.base + " --out " + out.string());
  REQUIRE(r.code == 0);
  CHECK(fs::exists(out / "peft/adapter_config.json"));
  CHECK(fs::exists(out / "peft/adapter_model.safetensors"));
  // the exported PEFT folder is accepted as the adapter
  r = run(t.dir, "eval " + t.base + " --out " + (t.dir / "out2").string() + " --set adapter=" +
                     (out / "peft").string() + " --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["accuracy"].get<double>() == Approx(j["best_accuracy"].get<double>()));
}

TEST_CASE("lora-finetune bench: timed steps on a fixed batch, JSON on stdout") {
  Task t;
  Run r = run(t.dir, "bench " + t.base + " --out " + (t.dir / "bench").string() +
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
  CHECK_FALSE(fs::exists(t.dir / "bench"));  // writes nothing
  r = run(t.dir, "bench " + t.base + " --set bench.length=2");
  CHECK(r.code == 2);
  CHECK(r.err.find("bench.length") != std::string::npos);
}

TEST_CASE("lora-finetune: bad configs exit 2, bad data exit 3, no partial artifact") {
  Task t;
  const fs::path out = t.dir / "bad";
  std::ofstream(t.dir / "broken.json") << "{\"lora\": {\"r\": 4,}}";
  Run r = run(t.dir, "train --config " + (t.dir / "broken.json").string() + " --out " + out.string());
  CHECK(r.code == 2);
  CHECK(r.err.find("broken.json") != std::string::npos);

  r = run(t.dir, "train " + t.base + " --out " + out.string() + " --set lora.rank=4");
  CHECK(r.code == 2);
  CHECK(r.err.find("lora.rank") != std::string::npos);

  r = run(t.dir, "train " + t.base + " --out " + out.string() + " --set dropout.preset=dropconnect");
  CHECK(r.code == 2);

  r = run(t.dir, "train " + t.base + " --out " + out.string() + " --set lora.targets=[\\\"q_proj\\\"]");
  CHECK(r.code == 2);
  CHECK(r.err.find("q_proj") != std::string::npos);

  r = run(t.dir, "train " + t.base + " --out " + out.string() + " --set data.train=" + (t.dir / "nope.jsonl").string());
  CHECK(r.code == 3);
  CHECK(r.err.find("nope.jsonl") != std::string::npos);

  std::ofstream(t.dir / "bad.jsonl") << "{\"text\":\"good.\",\"label\":\"pos\"}\n{\"text\":\"bad.\",\"label\":\"neg\"}\n"
                                     << "{\"text\":\"oops\", \"label\":}\n";
  r = run(t.dir, "train " + t.base + " --out " + out.string() + " --set data.train=" + (t.dir / "bad.jsonl").string());
  CHECK(r.code == 3);
  CHECK(r.err.find("bad.jsonl:3") != std::string::npos);

  // a checkpoint missing a tensor: exit 3 naming it
  fs::copy(t.dir / "model", t.dir / "model2");
  std::ofstream(t.dir / "model2/model.safetensors", std::ios::trunc) << "short";
  r = run(t.dir, "train " + t.base + " --out " + out.string() + " --set model.path=" + (t.dir / "model2").string());
  CHECK(r.code == 3);
  CHECK(r.err.find("model.safetensors") != std::string::npos);

  r = run(t.dir, "eval " + t.base + " --out " + out.string());
  CHECK(r.code == 3);  // no adapter yet
  CHECK(r.err.find("adapter.h5") != std::string::npos);

  CHECK((!fs::exists(out) || fs::is_empty(out)));
}
