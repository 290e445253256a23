// The runtime's contract on every program (core::run_program): --out that cannot be a
// folder is exit 2 before any work (issue 20 item 10), a second run into a folder another
// run is writing is refused (item 13), --seed is what the artifact records (item 14), and
// --device has one spelling everywhere.
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/support/harness.hpp"

namespace fs = std::filesystem;
using mlsys::test::program;
using mlsys::test::Run;
using mlsys::test::TempDir;

namespace {
Run run(const char* prog, const std::string& args) { return mlsys::test::run_program(program(prog), args); }
}  // namespace

TEST_CASE("runtime: --out that cannot be a folder is refused before any work, by every program", "[runtime]") {
  const TempDir tmp("runtime-out");
  const fs::path file = tmp.write("a-file", "x");
  for (const char* cmd : {"dynapipe-plan generate", "tgnn-train generate", "lora-finetune convert"}) {
    const std::string c(cmd);
    const std::string prog = c.substr(0, c.find(' ')), sub = c.substr(c.find(' ') + 1);
    Run r = run(prog.c_str(), sub + " --quiet --out '" + file.string() + "'");
    INFO(cmd << ": " << r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find("--out " + file.string() + ": expected a folder, found a file") != std::string::npos);
    CHECK(mlsys::test::slurp(file) == "x");
    r = run(prog.c_str(), sub + " --quiet --out ''");
    INFO(cmd << ": " << r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find("--out: expected a folder, found an empty path") != std::string::npos);
  }
}

TEST_CASE("runtime: a second run writing into the same --out is refused", "[runtime]") {
  const TempDir tmp("runtime-lock");
  const fs::path out = tmp.path / "out";
  // a long fit: the synthetic `small` stream, many epochs; stopped once the second run was refused
  mlsys::test::Background first(program("tgnn-train"),
                                "fit --quiet --threads 1 --set train.epochs=50 --set train.patience=50 "
                                "--set baselines.memory_zeroed=false --set train.checkpoint_every=1 --out '" +
                                    out.string() + "'");
  for (int i = 0; i < 6000 && !fs::exists(out / "checkpoint.h5") && first.running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE(first.running());
  Run second = run("dynapipe-plan", "generate --quiet --out '" + out.string() + "'");
  INFO(second.err);
  CHECK(second.code == 2);
  CHECK(second.err.find("another run is writing into this folder") != std::string::npos);
  CHECK_FALSE(fs::exists(out / "lengths.jsonl"));
  first.signal(SIGINT);
  const Run r = first.wait();
  CHECK(r.code == 1);
  // released with the first run: the folder takes a new writer
  Run third = run("dynapipe-plan", "generate --quiet --out '" + out.string() + "'");
  INFO(third.err);
  CHECK(third.code == 0);
}

TEST_CASE("runtime: --seed is the seed the artifacts record; the header names the command", "[runtime]") {
  const TempDir tmp("runtime-seed");
  Run r = run("dynapipe-plan", "generate --quiet --seed 7 --out '" + tmp.path.string() + "'");
  REQUIRE(r.code == 0);
  r = run("dynapipe-plan", "plan --quiet --seed 7 --set data.path='" + (tmp.path / "lengths.jsonl").string() +
                               "' --out '" + tmp.path.string() + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto plan = nlohmann::json::parse(mlsys::test::slurp(tmp.path / "plan.json"));
  CHECK(plan["config"]["seed"] == 7);
  CHECK(plan["program"] == "dynapipe-plan");
  CHECK(plan["command"] == "plan");
  CHECK(plan["command_line"].get<std::string>().find("--seed 7") != std::string::npos);
  for (const char* key : {"version", "git_commit", "created"}) CHECK(plan.contains(key));
}

TEST_CASE("runtime: --device is spelled one way in every program", "[runtime]") {
  const TempDir tmp("runtime-device");
  for (const char* prog : {"dynapipe-plan", "tgnn-train", "lora-finetune"}) {
    Run r = run(prog, "generate --quiet --device gpu --out '" + tmp.path.string() + "'");
    if (std::string(prog) == "lora-finetune") r = run(prog, "export --quiet --device gpu --out '" + tmp.path.string() + "'");
    INFO(prog << ": " << r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find("--device 'gpu': expected cpu, cuda or cuda:N") != std::string::npos);
  }
}

TEST_CASE("runtime: an error that quotes a path with a newline prints on one line, by every program", "[runtime]") {
  const TempDir tmp("runtime-oneline");
  // The harness runs the command through /bin/sh: the newline goes in literally, quoted.
  const std::string bad = tmp.path.string() + "/no\nsuch.csv";
  for (const char* prog : {"dynapipe-plan", "tgnn-train"}) {
    const std::string sub = std::string(prog) == "dynapipe-plan" ? "plan" : "fit";
    Run r = run(prog, sub + " --quiet --set 'data.path=" + bad + "' --out '" + (tmp.path / "out").string() + "'");
    INFO(prog << ": " << r.err);
    CHECK(r.code == 3);
    CHECK(r.err.find("no\\x0asuch.csv") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
}
