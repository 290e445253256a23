// dynapipe-plan run as a program on small inputs: exit codes, error lines, artifacts.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/harness.hpp"

namespace fs = std::filesystem;

namespace {

using mlsys::test::Run;
using mlsys::test::slurp;
using mlsys::test::TempDir;

Run run(const std::string& args) { return mlsys::test::run_program(mlsys::test::program("dynapipe-plan"), args); }

// Small and fast: 1 batch of a 600-sample generated stream.
const std::string kSmall = "--set data.generate.samples=600 --set data.batches=1 --set data.global_batch_tokens=16384 --quiet";

size_t lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

bool only(const fs::path& dir, const std::vector<std::string>& names) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (std::find(names.begin(), names.end(), e.path().filename().string()) == names.end()) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("cli: plan writes valid JSON with micro-batches and per-rank plans", "[cli]") {
  const TempDir tmp("dynapipe-cli");
  const fs::path out = tmp.path / "out";
  Run r = run("plan " + kSmall + " --out '" + out.string() + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto doc = nlohmann::json::parse(slurp(out / "plan.json"));
  CHECK(doc["program"] == "dynapipe-plan");
  CHECK(doc["config"]["cluster"]["stages"] == 4);
  REQUIRE(doc["batches"].size() == 1);
  const auto& b = doc["batches"][0];
  CHECK(b["microbatches"].size() >= 1);
  CHECK(b["microbatches"][0]["shape"].size() == 3);
  REQUIRE(b["replicas"].size() == 1);
  const auto& ranks = b["replicas"][0]["ranks"];
  REQUIRE(ranks.size() == 4);
  CHECK(ranks[0]["instructions"][0]["op"] == "LoadInput");
  CHECK(b["peak_memory_mb"].get<double>() <= 80000.0);
  CHECK(only(out, {"plan.json"}));

  // --json summary on stdout.
  r = run("plan " + kSmall + " --json --out '" + out.string() + "'");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["batches"] == 1);
}

TEST_CASE("cli: a malformed config exits 2 with one line naming file and key", "[cli]") {
  const TempDir tmp("dynapipe-cli");
  const fs::path cfg = tmp.path / "bad.json";
  std::ofstream(cfg) << "{\"cluster\": {\"stages\": \"four\"}}\n";
  Run r = run("plan --config '" + cfg.string() + "' --out '" + (tmp.path / "out").string() + "'");
  CHECK(r.code == 2);
  CHECK(lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains("bad.json") && Catch::Contains("cluster.stages"));
  CHECK_FALSE(fs::exists(tmp.path / "out" / "plan.json"));

  std::ofstream(cfg) << "{\"cluster\": {\"stages\": 4,}\n";
  r = run("plan --config '" + cfg.string() + "'");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("bad.json"));

  std::ofstream(cfg) << "{\"planner\": {\"no_such_knob\": 1}}\n";
  r = run("compare --config '" + cfg.string() + "'");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("planner.no_such_knob"));

  r = run("plan --set cluster.stages=0");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("cluster.stages"));

  r = run("nonsense");
  CHECK(r.code == 2);
}

TEST_CASE("cli: bad input data exits 3 and leaves the old artifact alone", "[cli]") {
  const TempDir tmp("dynapipe-cli");
  const fs::path out = tmp.path / "out";
  REQUIRE(run("plan " + kSmall + " --out '" + out.string() + "'").code == 0);
  const std::string before = slurp(out / "plan.json");

  Run r = run("plan " + kSmall + " --set data.path='" + (tmp.path / "missing.jsonl").string() + "' --out '" +
                  out.string() + "'");
  CHECK(r.code == 3);
  CHECK(lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains("missing.jsonl"));

  const fs::path data = tmp.path / "lengths.jsonl";
  std::ofstream(data) << "{\"input\": 10, \"target\": 2}\n{\"input\": 10}\n";
  r = run("plan " + kSmall + " --set data.path='" + data.string() + "' --out '" + out.string() + "'");
  CHECK(r.code == 3);
  CHECK_THAT(r.err, Catch::Contains("lengths.jsonl:2:"));
  CHECK(slurp(out / "plan.json") == before);
  CHECK(only(out, {"plan.json"}));
}

TEST_CASE("cli: export-profile writes the analytical model as a profile that plan reads back", "[cli][profile]") {
  const TempDir tmp("dynapipe-export");
  const fs::path out = tmp.path / "out";
  const std::string grid = " --set profile.microbatch_sizes=[1,2,4,8,16,32,64,128,256,512,1024,2048]"
                           " --set profile.seqlens=[8,16,32,64,128,256,512,1024,2048] --set profile.folder=aprof";
  Run r = run("export-profile --quiet --out '" + out.string() + "'" + grid);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(fs::exists(out / "aprof" / "tp1_hs4096_ah32_kv128_ffhs16384_seqlen2048_mbs1.txt"));
  CHECK(fs::exists(out / "aprof" / "profile.json"));
  r = run("plan " + kSmall + " --json --out '" + out.string() + "' --set model.profile='" + (out / "aprof").string() +
          "' --set 'planner.recompute=[\"none\"]'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto plan = nlohmann::json::parse(slurp(out / "plan.json"));
  CHECK(plan["batches"].size() == 1);
  CHECK(plan["batches"][0]["makespan_ms"].get<double>() > 0);
  // a T5 model has no profile format here: a config error
  r = run("export-profile --quiet --out '" + out.string() + "' --set model.kind=t5 --set model.decoder_layers=16");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Matchers::Contains("model.kind"));
}

TEST_CASE("cli: generate, compare, simulate and explain", "[cli]") {
  const TempDir tmp("dynapipe-cli");
  const fs::path out = tmp.path / "out";
  Run r = run("generate --set data.generate.samples=500 --quiet --out '" + out.string() + "'");
  REQUIRE(r.code == 0);
  CHECK(lines(slurp(out / "lengths.jsonl")) == 500);

  r = run("compare " + kSmall + " --set data.path='" + (out / "lengths.jsonl").string() + "' --json --out '" +
              out.string() + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto cmp = nlohmann::json::parse(r.out);
  CHECK(cmp["methods"].size() == 5);
  CHECK(cmp["methods"][0]["method"] == "dynapipe");
  CHECK(cmp["dynapipe_throughput_tokens_per_s"].get<double>() > 0);
  CHECK(fs::exists(out / "compare.json"));

  r = run("simulate --set simulate.workload=uniform --json --out '" + out.string() + "'");
  REQUIRE(r.code == 0);
  const auto sim = nlohmann::json::parse(r.out);
  CHECK(sim["runs"][0]["makespan_ms"].get<double>() == Approx(45.6));
  CHECK(sim["runs"][2]["makespan_ms"].get<double>() == Approx(39.4));

  CHECK(sim["runs"][1]["peak_memory_mb"][0].get<double>() == Approx(15000));
  CHECK(sim["runs"][3]["peak_memory_mb"][0].get<double>() == Approx(16000));

  // The shipped cost-table example: the zig-zag row of the reference's uniform table.
  r = run("simulate --set simulate.workload=cost_table --set simulate.cost_table='" +
          (fs::path(MLSYS_SOURCE_ROOT) / "configs/dynapipe-plan/cost-table-zigzag.json").string() + "' --json --out '" +
          out.string() + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto zz = nlohmann::json::parse(r.out);
  REQUIRE(zz["runs"].size() == 1);
  CHECK(zz["runs"][0]["makespan_ms"].get<double>() == Approx(39.8));
  CHECK(zz["runs"][0]["stages"].size() == 7);
  CHECK(zz["runs"][0]["layout"] == "other");
  double peak = 0;
  for (const auto& p : zz["runs"][0]["peak_memory_mb"]) peak = std::max(peak, p.get<double>());
  CHECK(peak == Approx(15000));
  r = run("simulate --set simulate.workload=cost_table --quiet --out '" + out.string() + "'");
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("simulate.cost_table"));

  r = run("explain " + kSmall + " --out '" + out.string() + "'");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("dev 0"));
  const std::string svg = slurp(out / "timeline.svg");
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK_THAT(svg, Catch::Contains("</svg>"));
}

TEST_CASE("cli: data parallel plans use global peers, idle replicas and every replica in simulate", "[cli]") {
  const TempDir tmp("dynapipe-cli");
  const fs::path out = tmp.path / "out";
  Run r = run("plan " + kSmall + " --set cluster.data_parallel=2 --out '" + out.string() + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto doc = nlohmann::json::parse(slurp(out / "plan.json"));
  const auto& reps = doc["batches"][0]["replicas"];
  REQUIRE(reps.size() == 2);
  // Global rank -> its instructions.
  std::map<int, nlohmann::json> by_rank;
  for (const auto& rep : reps) {
    for (const auto& rank : rep["ranks"]) by_rank[rank["rank"].get<int>()] = rank["instructions"];
  }
  REQUIRE(by_rank.size() == 8);
  int sends = 0;
  for (const auto& [g, ins] : by_rank) {
    for (const auto& x : ins) {
      const std::string op = x["op"];
      if (op != "SendActivationStart" && op != "SendGradStart") continue;
      ++sends;
      const int peer = x["peer"];
      INFO("rank " << g << " " << op << " mb " << x["mb"] << " peer " << peer);
      CHECK(peer / 4 == g / 4);  // the same replica
      const std::string want = op == "SendActivationStart" ? "RecvActivationStart" : "RecvGradStart";
      bool found = false;
      for (const auto& y : by_rank.at(peer)) {
        found |= y["op"] == want && y["peer"] == g && y["mb"] == x["mb"] && y["stage"] == x["stage"];
      }
      CHECK(found);
    }
  }
  CHECK(sends > 0);
  CHECK(by_rank.count(7) == 1);

  r = run("simulate " + kSmall + " --set cluster.data_parallel=2 --json --out '" + out.string() + "'");
  REQUIRE(r.code == 0);
  const auto sim = nlohmann::json::parse(r.out);
  std::set<int> replicas;
  for (const auto& run : sim["runs"]) replicas.insert(run["replica"].get<int>());
  CHECK(replicas == std::set<int>{0, 1});

  // Fewer samples than replicas: planned with idle replicas, not a memory failure.
  const fs::path three = tmp.path / "three.jsonl";
  std::ofstream(three) << "{\"input\":100,\"target\":10}\n{\"input\":200,\"target\":10}\n{\"input\":300,\"target\":10}\n";
  r = run("compare --quiet --set cluster.data_parallel=4 --set data.path='" + three.string() + "' --out '" +
              out.string() + "'");
  INFO(r.err);
  CHECK(r.code == 0);
  r = run("plan --quiet --set cluster.data_parallel=4 --set data.path='" + three.string() + "' --out '" + out.string() + "'");
  REQUIRE(r.code == 0);
  const auto p3 = nlohmann::json::parse(slurp(out / "plan.json"));
  CHECK(p3["batches"][0]["replicas"].size() == 4);
}

TEST_CASE("cli: a sample too large names its file line; model state too large is a config error", "[cli]") {
  const TempDir tmp("dynapipe-cli");
  const fs::path data = tmp.path / "lengths.jsonl";
  // Line 4 (after a blank line) is the sample that cannot fit; it is planned first.
  std::ofstream(data) << "{\"input\": 10, \"target\": 2}\n\n{\"input\": 20, \"target\": 2}\n"
                         "{\"input\": 8000, \"target\": 100}\n{\"input\": 30, \"target\": 2}\n";
  Run r = run("plan --quiet --set data.max_seqlen=8192 --set cluster.device_memory_mb=18000 --set data.path='" +
                  data.string() + "' --out '" + (tmp.path / "out").string() + "'");
  CHECK(r.code == 3);
  CHECK(lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains("lengths.jsonl:4:") && Catch::Contains("does not fit"));

  r = run("plan " + kSmall + " --set cluster.device_memory_mb=1000 --out '" + (tmp.path / "out").string() + "'");
  CHECK(r.code == 2);
  CHECK(lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::Contains("cluster.device_memory_mb") && Catch::Contains("stage"));
  CHECK_FALSE(fs::exists(tmp.path / "out" / "plan.json"));
}

TEST_CASE("cli: explain.svg that names no file is a config error before any work", "[cli][artifact]") {
  const TempDir tmp("dynapipe-cli");
  const fs::path out = tmp.path / "out";
  // without --quiet: the workload's log line would show that work started
  for (const std::string bad : {"", ".", "..", "sub/", "sub/.."}) {
    Run r = run("explain --set data.generate.samples=600 --set data.batches=1 --set 'explain.svg=" + bad + "' --out '" +
                out.string() + "'");
    INFO("explain.svg='" << bad << "': " << r.err);
    CHECK(r.code == 2);
    CHECK(lines(r.err) == 1);
    CHECK_THAT(r.err, Catch::Contains("explain.svg"));
    CHECK_THAT(r.err, !Catch::Contains("global batches"));  // failed before the workload was built
    CHECK((!fs::exists(out) || fs::is_empty(out)));
  }
}

TEST_CASE("cli: explain.svg may not leave --out", "[cli][artifact]") {
  const TempDir tmp("dynapipe-cli");
  const fs::path out = tmp.path / "a" / "out";
  for (const std::string& bad : std::vector<std::string>{"../x.svg", "../../x.svg", "sub/../../x.svg", (tmp.path / "abs.svg").string()}) {
    Run r = run("explain " + kSmall + " --set 'explain.svg=" + bad + "' --out '" + out.string() + "'");
    INFO("explain.svg='" << bad << "': " << r.err);
    CHECK(r.code == 2);
    CHECK(lines(r.err) == 1);
    CHECK_THAT(r.err, Catch::Contains("explain.svg"));
  }
  CHECK_FALSE(fs::exists(tmp.path / "a" / "x.svg"));
  CHECK_FALSE(fs::exists(tmp.path / "x.svg"));
  CHECK_FALSE(fs::exists(tmp.path / "abs.svg"));
  // a relative name, folders included, lands under --out
  Run r = run("explain " + kSmall + " --set explain.svg=figs/../figs/t.svg --json --out '" + out.string() + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(fs::exists(out / "figs" / "t.svg"));
  CHECK(nlohmann::json::parse(r.out)["svg"] == (out / "figs" / "t.svg").string());
}
