// spmd-plan's executor: synthesized and random programs for an MLP, a transformer block
// (BERT and causal GPT), an MoE layer, ViT and VGG run on 2 and 3 processes (Gloo on
// loopback) with uneven ratios ([0.7, 0.3], [0.5, 0.3, 0.2]) give the single-process loss,
// every gradient and the SGD step (fp64, rtol 1e-9); the random programs reach every
// instruction kind and collective variant; a program with a gradient all-reduce removed
// fails the check (the control). Also `spmd-plan run` through the CLI, and its bad plan file.
#include "tests/support/torch_catch.hpp"

#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <set>

#include "plan/spmd_synth.hpp"
#include "plan_exec/spmd_executor.hpp"
#include "tensor/distributed.hpp"
#include "tests/spmd/random_program.hpp"
#include "tests/support/harness.hpp"
#include "tests/support/multi_process.hpp"

using namespace mlsys;
using namespace mlsys::plan;
using core::Json;

namespace {

constexpr const char* kWorker = "spmd executor worker (run by the multi-process tests)";

SpmdModelSize tiny(const std::string& gen) {
  SpmdModelSize s;
  s.generator = gen;
  s.batch = 6;
  s.seq = 5;
  s.hidden = 8;
  s.ffn = 12;
  s.heads = 2;
  s.layers = gen == "bert_moe" ? 2 : 1;
  s.vocab = 11;
  s.classes = 5;
  s.image = 32;
  s.patch = 16;
  s.experts = 4;
  s.channels_scale = 32;
  return s;
}

SpmdCluster tiny_cluster(const std::vector<double>& ratios, double gbytes_per_s) {
  SpmdCluster c;
  c.name = "test";
  for (size_t i = 0; i < ratios.size(); ++i) c.devices.push_back({"d" + std::to_string(i), ratios[i] * 1e10, 1e9, 0});
  for (auto& k : c.intra) k = {gbytes_per_s, 1.0};
  c.inter = c.intra;
  return c;
}

void run_worker() {
  tensor::ProcessGroup pg = tensor::ProcessGroup::create(tensor::dist_env_from_environment(), c10::Device(c10::kCPU),
                                                         std::chrono::seconds(120));
  const int n = pg.size();
  const std::vector<double> ratios = n == 2 ? std::vector<double>{0.7, 0.3} : std::vector<double>{0.5, 0.3, 0.2};
  std::set<std::string> seen;
  int programs = 0;
  const std::vector<std::string> models =
      n == 2 ? std::vector<std::string>{"mlp", "bert", "bert_moe"}
             : std::vector<std::string>{"mlp", "bert", "gpt", "bert_moe", "vit", "vgg19"};
  for (const auto& name : models) {
    const SpmdGraph g = generate_graph(tiny(name));
    // The synthesized programs of a fast and of a slow link, then random ones.
    std::vector<Program> ps;
    for (double bw : {1e3, 1e-3}) {
      const SpmdCluster c = tiny_cluster(ratios, bw);
      SpmdCostModel m(g, c);
      SynthOptions o;
      o.fixed_ratios = ratios;
      const SynthResult r = synthesize(m, o);
      REQUIRE(r.found);
      ps.push_back(r.program);
    }
    std::mt19937 rng(17 + static_cast<unsigned>(name.size()));
    const int randoms = name == "vgg19" || name == "vit" ? 2 : 5;
    for (int i = 0; i < randoms; ++i) ps.push_back(test::random_program(g, rng));
    const SpmdCluster c = tiny_cluster(ratios, 1.0);
    SpmdCostModel m(g, c);
    for (const Program& p : ps) {
      const Json rp = rank_programs(m, p, ratios);
      for (const auto& ins : rp["ranks"][0]["instructions"]) {
        std::string k = ins["op"].get<std::string>();
        if (ins.contains("variant") && k != "compute" && k != "placeholder") k += "/" + ins["variant"].get<std::string>();
        if (k.starts_with("parameter")) k = "parameter " + ins["prop"].get<std::string>().substr(0, 1) + " " + ins["grad"].get<std::string>();
        seen.insert(k);
      }
      SpmdExecOptions eo;
      eo.seed = 5;
      const SpmdRankReport rep = execute_spmd_rank(g, rp, pg, eo);
      INFO(name << " program " << programs << " rank " << pg.rank() << ": loss " << rep.loss << " vs " << rep.reference_loss
                << ", grad error " << rep.max_grad_error << " (" << rep.worst << "), param error " << rep.max_param_error);
      CHECK(rep.ok);
      CHECK(rep.loss == Approx(rep.reference_loss).epsilon(1e-9));
      CHECK(rep.max_grad_error <= 1.0);
      CHECK(rep.parameters_checked > 0);
      ++programs;
    }
  }
  if (n == 3) {
    // Every instruction kind and collective variant ran at least once.
    for (const char* k : {"all_gather/padded", "all_gather/grouped", "reduce_scatter/padded", "reduce_scatter/grouped",
                          "all_reduce/padded", "all_to_all/padded", "slice/padded", "pad/padded", "mask/padded",
                          "parameter I all_reduce", "parameter I sfb", "parameter G none", "parameter R none"}) {
      INFO(k);
      CHECK(seen.count(k) == 1);
    }
  }
  // The control: a program whose gradient all-reduce is dropped must fail the check.
  const SpmdGraph g = generate_graph(tiny("mlp"));
  const SpmdCluster c = tiny_cluster(ratios, 1e-3);
  SpmdCostModel m(g, c);
  SynthOptions o;
  o.fixed_ratios = ratios;
  o.policy.sfb = false;
  const SynthResult r = synthesize(m, o);
  Json rp = rank_programs(m, r.program, ratios);
  std::string dropped;
  for (const auto& ins : rp["ranks"][0]["instructions"]) {
    if (ins["op"] == "parameter" && ins["grad"] == "all_reduce" && ins["shape"].size() == 2) {
      dropped = ins["tensor"].get<std::string>();
      break;
    }
  }
  REQUIRE(!dropped.empty());
  for (auto& rank : rp["ranks"]) {
    for (auto& ins : rank["instructions"]) {
      if (ins["op"] == "parameter" && ins["tensor"] == dropped) ins["grad"] = "none";
    }
  }
  const SpmdRankReport bad = execute_spmd_rank(g, rp, pg, SpmdExecOptions{});
  CHECK_FALSE(bad.ok);
  CHECK(bad.max_grad_error > 1.0);
  CHECK(bad.worst == dropped);
  pg.barrier();
}

// Shell words, each quoted, for test::run_program.
std::string words(std::initializer_list<std::string> w) {
  std::string o;
  for (const auto& x : w) o += (o.empty() ? "'" : " '") + x + "'";
  return o;
}

void run_on(int ranks) {
  const std::vector<int> status = test::run_ranks(
      {.ranks = ranks, .args = {"test_spmd_exec", kWorker}, .extra_env = {}, .timeout = std::chrono::minutes(3)});
  for (int r = 0; r < ranks; ++r) {
    if (status[static_cast<size_t>(r)] == -1) FAIL("rank " << r << " did not finish within three minutes");
    INFO("rank " << r << " wait status " << status[static_cast<size_t>(r)]);
    CHECK(WIFEXITED(status[static_cast<size_t>(r)]));
    CHECK(WEXITSTATUS(status[static_cast<size_t>(r)]) == 0);
  }
}

}  // namespace

TEST_CASE("spmd executor worker (run by the multi-process tests)", "[.worker]") { run_worker(); }

TEST_CASE("two processes with ratios [0.7, 0.3] match one process", "[spmd_exec]") { run_on(2); }

TEST_CASE("three processes with ratios [0.5, 0.3, 0.2] match one process, every instruction kind", "[spmd_exec]") {
  run_on(3);
}

TEST_CASE("spmd-plan run through the CLI: equivalence on 3 processes, run.json, bad plan file", "[spmd_exec]") {
  test::TempDir dir("spmd-run");
  const auto res = test::run_program(test::program("spmd-plan"),
                                     words({"run", "--config", std::string(MLSYS_SOURCE_ROOT) + "/configs/spmd-plan/tiny-run.json",
                                      "--threads", "1", "--out", (dir / "out").string(), "--set", "run.iterations=1"}));
  INFO(res.err);
  REQUIRE(res.code == 0);
  CHECK(res.out.find("equivalent to one process") != std::string::npos);
  const Json run = Json::parse(test::slurp(dir / "out" / "run.json"));
  CHECK(run["equivalent"] == true);
  CHECK(run["world_size"] == 3);
  CHECK(run["ranks"].size() == 3);
  CHECK(run["loss"].get<double>() == Approx(run["reference_loss"].get<double>()).epsilon(1e-9));
  // A plan file whose programs are missing: exit 3 naming the file and field.
  const auto plan = dir.write("plan.json", R"({"model": {"inputs": [], "params": [], "ops": []}, "prediction": {}})");
  const auto bad = test::run_program(test::program("spmd-plan"),
                                     words({"run", "--set", "run.plan=" + plan.string(), "--out", (dir / "bad").string()}));
  CHECK(bad.code == 3);
  CHECK(bad.err.find("plan.json") != std::string::npos);
  CHECK(bad.err.find("programs") != std::string::npos);
}

TEST_CASE("spmd-plan bad model and cluster files: one line, exit 3, the field named", "[spmd_exec]") {
  test::TempDir dir("spmd-bad");
  const auto model = dir.write("m.json", R"({"inputs":[{"name":"x","shape":[4,8]}],"params":[{"name":"w","shape":[3,7]},{"name":"b","shape":[3]}],
    "ops":[{"name":"fc","kind":"linear","inputs":["x","w","b"],"output":"h"}]})");
  auto res = test::run_program(test::program("spmd-plan"), words({"synth", "--set", "model.file=" + model.string(), "--out", (dir / "o").string()}));
  CHECK(res.code == 3);
  CHECK(res.err.find("m.json: ops[0] ('fc').inputs[1]") != std::string::npos);
  CHECK(std::count(res.err.begin(), res.err.end(), '\n') == 1);
  const auto cluster = dir.write("c.json", R"({"devices":[{"tflops":1,"memory_gb":"lots"}],"collectives":{"intra_node":{}}})");
  res = test::run_program(test::program("spmd-plan"), words({"synth", "--set", "cluster.file=" + cluster.string(), "--out", (dir / "o").string()}));
  CHECK(res.code == 3);
  CHECK(res.err.find("c.json: devices[0].memory_gb") != std::string::npos);
  res = test::run_program(test::program("spmd-plan"), words({"synth", "--set", "model.heads=5", "--out", (dir / "o").string()}));
  CHECK(res.code == 2);
  CHECK(res.err.find("model.heads") != std::string::npos);
}

TEST_CASE("spmd-plan synth, simulate, compare, explain and profile through the CLI", "[spmd_exec]") {
  test::TempDir dir("spmd-cli");
  const std::string cfg = std::string(MLSYS_SOURCE_ROOT) + "/configs/spmd-plan/tiny-run.json";
  auto run = [&](std::initializer_list<std::string> a) { return test::run_program(test::program("spmd-plan"), words(a)); };
  auto r = run({"synth", "--config", cfg, "--out", (dir / "s").string(), "--json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const Json summary = Json::parse(r.out);
  CHECK(summary["baselines"].size() == 3);
  const Json plan = Json::parse(test::slurp(dir / "s" / "plan.json"));
  CHECK(plan["programs"]["ranks"].size() == 3);
  CHECK(plan["ratios"].size() == 3);
  CHECK(plan["program"] == "spmd-plan");
  // HAP never predicts worse than DP-proportional (its program is in HAP's search space).
  for (const auto& b : summary["baselines"]) {
    if (b["method"] == "dp-proportional") CHECK(summary["hap"]["iteration_ms"].get<double>() <= b["iteration_ms"].get<double>() * (1 + 1e-9));
  }
  // simulate re-predicts the same program on the same cluster: the same time.
  r = run({"simulate", "--config", cfg, "--set", "simulate.plan=" + (dir / "s" / "plan.json").string(), "--out", (dir / "m").string(), "--json"});
  REQUIRE(r.code == 0);
  CHECK(Json::parse(r.out)["prediction"]["iteration_ms"].get<double>() ==
        Approx(plan["prediction"]["iteration_ms"].get<double>()).epsilon(1e-12));
  // compare: A* and uniform-cost search find the same cost.
  r = run({"compare", "--config", cfg, "--out", (dir / "c").string(), "--json"});
  REQUIRE(r.code == 0);
  const Json cmp = Json::parse(r.out);
  CHECK(cmp["search"]["astar"]["cost_ms"].get<double>() == Approx(cmp["search"]["uniform_cost"]["cost_ms"].get<double>()).epsilon(1e-12));
  CHECK(cmp["search"]["astar"]["expanded"].get<int64_t>() <= cmp["search"]["uniform_cost"]["expanded"].get<int64_t>());
  r = run({"explain", "--config", cfg, "--out", (dir / "e").string()});
  REQUIRE(r.code == 0);
  CHECK(test::slurp(dir / "e" / "timeline.svg").starts_with("<svg"));
  CHECK(r.out.find("predicted iteration") != std::string::npos);
  // profile on 2 processes writes a cluster file that synth reads back.
  r = run({"profile", "--set", "profile.processes=2", "--set", "profile.sizes_mb=[0.01,0.1]", "--set", "profile.repeats=2",
           "--set", "profile.gemm=64", "--threads", "1", "--out", (dir / "p").string()});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const SpmdCluster c = read_cluster_file((dir / "p" / "cluster.json").string());
  REQUIRE(c.size() == 2);
  CHECK(c.devices[0].flops > 0);
  CHECK(c.intra[static_cast<size_t>(Collective::all_reduce)].gbytes_per_s > 0);
  r = run({"synth", "--config", cfg, "--set", "cluster.file=" + (dir / "p" / "cluster.json").string(), "--set", "run.ratios=[]",
           "--out", (dir / "s2").string()});
  CHECK(r.code == 0);
}
