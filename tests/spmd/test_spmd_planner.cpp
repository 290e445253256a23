// lib/plan spmd_*: the instruction set's pre/post rules and gradient duals, the cost terms,
// rounding, the ratio LP on hand-solvable cases, A* against uniform-cost search on random
// small graphs, synthesis against the baselines, program JSON round trips, bad model and
// cluster files.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "plan/spmd_lp.hpp"
#include "plan/spmd_synth.hpp"
#include "tests/support/expect_error.hpp"

using namespace mlsys;
using namespace mlsys::plan;
using core::Json;

namespace {

Json table(double gbps, double lat_us) {
  Json t = Json::object();
  for (const char* k : {"all_gather", "reduce_scatter", "all_reduce", "broadcast", "reduce", "all_to_all"}) {
    t[k] = {{"gbytes_per_s", gbps}, {"latency_us", lat_us}};
  }
  return t;
}

SpmdCluster cluster_of(const std::vector<double>& tflops, double gbps = 10.0, double lat_us = 5.0, double mem_gb = 80) {
  Json devs = Json::array();
  for (double f : tflops) devs.push_back({{"tflops", f}, {"memory_gb", mem_gb}});
  return cluster_from_json({{"devices", devs}, {"collectives", {{"intra_node", table(gbps, lat_us)}}}}, "test-cluster");
}

bool has_sig(const std::vector<Signature>& sigs, std::vector<Prop> in, Prop out) {
  return std::any_of(sigs.begin(), sigs.end(), [&](const Signature& s) { return s.in == in && s.out == out; });
}

const Prop I{Prop::I, 0}, R{Prop::R, 0};
Prop G(int d) { return Prop::gather(d); }

SpmdModelSize tiny(const std::string& gen) {
  SpmdModelSize s;
  s.generator = gen;
  s.batch = 8;
  s.seq = 8;
  s.hidden = 16;
  s.ffn = 32;
  s.heads = 2;
  s.layers = 2;
  s.vocab = 32;
  s.classes = 10;
  s.image = 32;
  s.patch = 8;
  s.experts = 4;
  s.channels_scale = 16;
  return s;
}

}  // namespace

TEST_CASE("instruction pre/post rules: linear, attention, embedding, conv, mean, cross_entropy, moe") {
  const SpmdGraph g = generate_graph(tiny("bert_moe"));
  auto op = [&](const std::string& name) { return g.ops[static_cast<size_t>(g.tensors[g.find(name)].producer)]; };
  const auto lin = signatures(g, op("l0.q"));  // x [8,8,16]
  CHECK(lin[0].in == std::vector<Prop>{I, I, I});
  CHECK(lin[0].out == I);
  CHECK(has_sig(lin, {G(0), I, I}, G(0)));      // batch
  CHECK(has_sig(lin, {G(1), I, I}, G(1)));      // sequence
  CHECK(has_sig(lin, {I, G(0), G(0)}, G(2)));   // column parallel
  CHECK(has_sig(lin, {G(2), G(1), R}, R));      // row parallel: partial sums, bias once
  CHECK_FALSE(has_sig(lin, {G(2), I, I}, G(2)));  // the contracted dim cannot stay sharded
  CHECK(lin.size() == 5);
  const auto att = signatures(g, op("l0.attn"));
  CHECK(has_sig(att, {G(2), G(2), G(2)}, G(2)));  // heads
  CHECK(has_sig(att, {G(1), I, I}, G(1)));        // queries of a non-causal attention
  CHECK_FALSE(has_sig(att, {G(1), G(1), G(1)}, G(1)));
  const auto emb = signatures(g, op("embed"));
  CHECK(has_sig(emb, {I, G(0)}, R));  // vocabulary-parallel: rows looked up where they live
  CHECK(has_sig(emb, {I, G(1)}, G(2)));
  const auto ce = signatures(g, op("loss"));
  CHECK(has_sig(ce, {G(0), G(0)}, R));
  CHECK_FALSE(has_sig(ce, {G(2), I}, R));
  const auto moe = signatures(g, op("l1.moe"));
  CHECK(has_sig(moe, {I, I, G(0), G(0)}, R));  // expert parallel
  CHECK(has_sig(moe, {G(0), I, I, I}, G(0)));
  // Expert-parallel MoE keeps the gating replicated: its FLOPs are not split.
  for (const auto& s : moe) {
    if (s.out == R) CHECK(s.rep_flops > 0);
  }
  const auto add = signatures(g, op("l0.res1"));
  CHECK(has_sig(add, {R, R}, R));
  CHECK_FALSE(has_sig(add, {R, I}, R));

  const SpmdGraph v = generate_graph(tiny("vit"));
  const auto mean = signatures(v, v.ops[static_cast<size_t>(v.tensors[v.find("pool")].producer)]);  // [8,16,16] mean dim 1
  CHECK(has_sig(mean, {G(1)}, R));     // summing a sharded dim gives partial sums
  CHECK(has_sig(mean, {G(2)}, G(1)));  // dims after the reduced one shift
  const auto ln = signatures(g, op("l0.ln1"));  // [8,8,16]: never split the normalized dim
  CHECK(has_sig(ln, {G(0), I, I}, G(0)));
  CHECK(has_sig(ln, {G(1), I, I}, G(1)));
  CHECK_FALSE(has_sig(ln, {G(2), I, I}, G(2)));
  CHECK(ln.size() == 3);
  const auto gelu = signatures(g, op("l0.gelu"));
  CHECK(gelu.size() == 4);  // I and G(0..2)
  CHECK_FALSE(has_sig(gelu, {R}, R));  // nonlinear: partial sums do not pass through
  // matmul: batch, rows of A, columns of B, and the contracted dim giving partial sums.
  const Json mm = {{"inputs", {{{"name", "a"}, {"shape", {2, 4, 6}}}, {{"name", "y"}, {"shape", {2, 4}}, {"kind", "label"}}}},
                   {"params", {{{"name", "b"}, {"shape", {2, 6, 3}}}}},
                   {"ops", {{{"name", "mm"}, {"kind", "matmul"}, {"inputs", {"a", "b"}}, {"output", "c"}},
                            {{"name", "loss"}, {"kind", "cross_entropy"}, {"inputs", {"c", "y"}}, {"output", "loss"}}}}};
  const SpmdGraph gm = graph_from_json(mm, "mm.json");
  CHECK(gm.tensors[static_cast<size_t>(gm.find("c"))].shape == std::vector<int64_t>{2, 4, 3});
  CHECK(gm.ops[0].flops == Approx(2.0 * 2 * 4 * 6 * 3));
  const auto mms = signatures(gm, gm.ops[0]);
  CHECK(has_sig(mms, {G(0), G(0)}, G(0)));
  CHECK(has_sig(mms, {G(1), I}, G(1)));
  CHECK(has_sig(mms, {I, G(2)}, G(2)));
  CHECK(has_sig(mms, {G(2), G(1)}, R));

  const SpmdGraph c = generate_graph(tiny("vgg19"));
  // flatten keeps a channel split (channel-major) in units of H * W; pooling keeps batch or channels.
  const auto& flat = c.ops[static_cast<size_t>(c.tensors[static_cast<size_t>(c.find("flatten"))].producer)];
  CHECK(has_sig(signatures(c, flat), {G(1)}, G(1)));
  const auto& ft = c.tensors[static_cast<size_t>(c.find("flatten"))];
  const auto& pooled = c.tensors[static_cast<size_t>(flat.inputs[0])];
  CHECK(ft.granule[1] == pooled.shape[2] * pooled.shape[3]);
  const auto pool = signatures(c, c.ops[static_cast<size_t>(c.tensors[static_cast<size_t>(c.find("f2.pool"))].producer)]);
  CHECK(pool.size() == 3);
  CHECK_FALSE(has_sig(pool, {G(2)}, G(2)));
  const auto conv = signatures(c, c.ops[1 - 1]);
  CHECK(has_sig(conv, {G(0), I, I}, G(0)));
  CHECK(has_sig(conv, {I, G(0), G(0)}, G(1)));
  CHECK(has_sig(conv, {G(1), G(1), R}, R));
}

TEST_CASE("gradient duality and conversions with their dual collectives") {
  CHECK(gradient_prop(I) == R);
  CHECK(gradient_prop(R) == I);
  CHECK(gradient_prop(G(3)) == G(3));
  SpmdTensor t;
  t.shape = {12, 4};
  t.granule = {1, 1};
  auto kinds = [&](Prop a, Prop b) {
    std::vector<std::string> k;
    for (const auto& c : conversions(t, a, b)) k.push_back(to_string(c.kind) + "/" + to_string(c.variant));
    return k;
  };
  CHECK(kinds(G(0), I) == std::vector<std::string>{"all_gather/padded", "all_gather/grouped"});
  CHECK(kinds(R, I) == std::vector<std::string>{"all_reduce/padded", "reduce_scatter+all_gather/padded",
                                                "reduce_scatter+all_gather/grouped"});
  CHECK(kinds(R, G(1)) == std::vector<std::string>{"reduce_scatter/padded", "reduce_scatter/grouped"});
  CHECK(kinds(I, G(1)) == std::vector<std::string>{"slice/padded"});
  CHECK(kinds(G(0), R) == std::vector<std::string>{"pad/padded"});
  CHECK(kinds(G(0), G(1)) == std::vector<std::string>{"all_to_all/padded"});
  CHECK(kinds(I, I).empty());
  SpmdTensor scalar;
  CHECK(kinds(I, R).size() == 1);
  CHECK(conversions(scalar, R, G(0)).empty());

  // Costs: an all-gather is charged forward (all-gather) and backward (its dual, a
  // reduce-scatter), in bytes: a float32 [12, 4] tensor is 192 bytes.
  SpmdGraph g = generate_graph(tiny("mlp"));
  const SpmdCluster c = cluster_of({1, 1, 1}, 1.0 /*GB/s*/, 0.0);
  SpmdCostModel m(g, c);
  t.elem_bytes = 4;
  std::vector<CostTerm> terms;
  m.conversion_terms(t, conversions(t, G(0), I)[0], terms);
  REQUIRE(terms.size() == 2);
  const std::vector<double> even = even_ratios(3);
  // padded: n * max shard * bytes / bandwidth = 3 * (4/12) * 192 B / 1e9 B/s
  CHECK(m.term_max(terms[0], even) == Approx(192e-9).epsilon(1e-12));
  CHECK(m.term_max(terms[0], {0.5, 0.25, 0.25}) == Approx(3 * 0.5 * 192e-9));
  // grouped (n broadcasts): the whole tensor once, whatever the skew
  terms.clear();
  m.conversion_terms(t, conversions(t, G(0), I)[1], terms);
  CHECK(m.term_max(terms[0], {0.5, 0.25, 0.25}) == Approx(192e-9));
  // All-reduce forward and backward.
  terms.clear();
  m.conversion_terms(t, conversions(t, R, I)[0], terms);
  CHECK(terms.size() == 2);
  // A half-precision tensor moves half the bytes.
  SpmdTensor h = t;
  h.elem_bytes = 2;
  terms.clear();
  m.conversion_terms(h, conversions(h, R, I)[0], terms);
  CHECK(m.term_max(terms[0], even) == Approx(96e-9));
}

TEST_CASE("rounding of shard lengths") {
  CHECK(shard_lengths(10, 1, {0.5, 0.3, 0.2}) == std::vector<int64_t>{5, 3, 2});
  CHECK(shard_lengths(7, 1, {0.5, 0.3, 0.2}) == std::vector<int64_t>{4, 2, 1});
  CHECK(shard_lengths(768, 64, {0.5, 0.3, 0.2}) == std::vector<int64_t>{384, 256, 128});
  CHECK(shard_lengths(2, 1, {0.4, 0.3, 0.3}) == std::vector<int64_t>{1, 1, 0});
  for (int len : {1, 5, 17, 64}) {
    const auto l = shard_lengths(len, 1, {0.61, 0.27, 0.12});
    CHECK(std::accumulate(l.begin(), l.end(), int64_t{0}) == len);
  }
}

TEST_CASE("LP: two devices at 2:1 speed split a compute-bound program 2/3 : 1/3") {
  SpmdModelSize s = tiny("mlp");
  s.batch = 96;
  const SpmdGraph g = generate_graph(s);
  const SpmdCluster c = cluster_of({2.0, 1.0}, 1e6, 0.0);  // communication ~free
  SpmdCostModel m(g, c);
  SearchOptions so;
  so.policy.data_parallel_only = true;
  so.policy.conversions = false;
  const auto sr = search_program(m, even_ratios(2), so);
  REQUIRE(sr.found);
  const LpResult lp = solve_ratios(m, sr.program);
  REQUIRE(lp.optimal);
  CHECK(lp.ratios[0] == Approx(2.0 / 3).epsilon(1e-6));
  CHECK(lp.ratios[1] == Approx(1.0 / 3).epsilon(1e-6));
  CHECK(lp.objective < program_cost(m, sr.program, even_ratios(2)));
  CHECK(lp.objective == Approx(program_cost(m, sr.program, lp.ratios)));
}

TEST_CASE("LP: a memory budget caps the fast device's share") {
  SpmdModelSize s = tiny("mlp");
  s.batch = 96;
  const SpmdGraph g = generate_graph(s);
  SpmdCluster c = cluster_of({2.0, 1.0}, 1e6, 0.0);
  SpmdCostModel m(g, c);
  SearchOptions so;
  so.policy.data_parallel_only = true;
  so.policy.conversions = false;
  const auto sr = search_program(m, even_ratios(2), so);
  REQUIRE(sr.found);
  std::vector<CostTerm> mem;
  for (const auto& st : sr.program.steps) m.memory_terms(st, mem);
  double mc = 0, ml = 0;
  for (const auto& t : mem) mc += t.c_uniform, ml += t.l_uniform;
  // Device 0 may hold the replicated state plus 40% of the sharded bytes only.
  c.devices[0].memory_bytes = (mc + 0.4 * ml) / m.options().memory_fraction;
  SpmdCostModel m2(g, c);
  const LpResult lp = solve_ratios(m2, sr.program);
  REQUIRE(lp.optimal);
  CHECK(lp.ratios[0] == Approx(0.4).epsilon(1e-6));
  CHECK(lp.ratios[1] == Approx(0.6).epsilon(1e-6));
  // Below the replicated state nothing fits: the LP says so.
  c.devices[0].memory_bytes = 0.5 * mc / m.options().memory_fraction;
  SpmdCostModel m3(g, c);
  const LpResult none = solve_ratios(m3, sr.program);
  CHECK_FALSE(none.optimal);
  CHECK(none.status.find("infeasible") != std::string::npos);
}

TEST_CASE("LP: a compute-bound program follows the speeds, a link-bound one is pulled towards even shards") {
  // A one-layer MLP searched with padded collectives only. With a near-free link the LP gives
  // the 2:1 devices 2/3 : 1/3 (compute balance); with a very slow link the program's padded
  // collectives (n * max shard * bytes / bandwidth) dominate and the LP's ratio for the fast
  // device cannot exceed 2/3 (it moves towards 1/2, where the padded volume is least).
  SpmdModelSize s = tiny("mlp");
  s.batch = 96;
  s.layers = 1;
  const SpmdGraph g = generate_graph(s);
  for (double gbps : {1e6, 1e-4}) {
    const SpmdCluster c = cluster_of({2.0, 1.0}, gbps, 0.0);
    SpmdCostModel m(g, c);
    SearchOptions so;
    so.policy.grouped_collectives = false;
    so.policy.sfb = false;
    so.policy.check_memory = false;
    const auto sr = search_program(m, {2.0 / 3, 1.0 / 3}, so);
    REQUIRE(sr.found);
    const LpResult lp = solve_ratios(m, sr.program);
    REQUIRE(lp.optimal);
    CHECK(lp.objective <= program_cost(m, sr.program, {2.0 / 3, 1.0 / 3}) * (1 + 1e-9));
    if (gbps > 1) CHECK(lp.ratios[0] == Approx(2.0 / 3).epsilon(1e-6));
    if (gbps < 1) CHECK(lp.ratios[0] <= 2.0 / 3 + 1e-9);
  }
}

namespace {

// A random small graph: a chain of linear / gelu / layer_norm / add(residual) ops on [B, D].
SpmdGraph random_graph(std::mt19937& rng) {
  std::uniform_int_distribution<int> len(3, 7), pick(0, 3), dim(1, 4);
  const int64_t B = 8 * dim(rng), D = 8 * dim(rng);
  Json inputs = Json::array({{{"name", "x"}, {"shape", {B, D}}}, {{"name", "y"}, {"shape", {B}}, {"kind", "label"}}});
  Json params = Json::array(), ops = Json::array();
  std::string cur = "x", skip = "x";
  int64_t width = D;
  const int n = len(rng);
  for (int i = 0; i < n; ++i) {
    const std::string o = "o" + std::to_string(i);
    const int kind = pick(rng);
    if (kind == 0 || width != D) {
      const int64_t out = (kind == 0 && width == D) ? 8 * dim(rng) : D;
      params.push_back({{"name", o + ".w"}, {"shape", {out, width}}});
      params.push_back({{"name", o + ".b"}, {"shape", {out}}});
      ops.push_back({{"name", o}, {"kind", "linear"}, {"inputs", {cur, o + ".w", o + ".b"}}, {"output", o}});
      width = out;
    } else if (kind == 1) {
      ops.push_back({{"name", o}, {"kind", "gelu"}, {"inputs", {cur}}, {"output", o}});
    } else if (kind == 2) {
      params.push_back({{"name", o + ".g"}, {"shape", {width}}});
      params.push_back({{"name", o + ".b"}, {"shape", {width}}});
      ops.push_back({{"name", o}, {"kind", "layer_norm"}, {"inputs", {cur, o + ".g", o + ".b"}}, {"output", o}});
    } else {
      ops.push_back({{"name", o}, {"kind", "add"}, {"inputs", {cur, skip}}, {"output", o}});
      skip = o;
    }
    cur = o;
  }
  params.push_back({{"name", "head.w"}, {"shape", {5, width}}});
  params.push_back({{"name", "head.b"}, {"shape", {5}}});
  ops.push_back({{"name", "head"}, {"kind", "linear"}, {"inputs", {cur, "head.w", "head.b"}}, {"output", "logits"}});
  ops.push_back({{"name", "loss"}, {"kind", "cross_entropy"}, {"inputs", {"logits", "y"}}, {"output", "loss"}});
  return graph_from_json({{"name", "random"}, {"inputs", inputs}, {"params", params}, {"ops", ops}}, "random");
}

}  // namespace

TEST_CASE("A* finds the uniform-cost optimum on random small graphs, expanding fewer nodes") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> speed(0.5, 3.0), bw(0.05, 50.0);
  int64_t astar_nodes = 0, ucs_nodes = 0;
  for (int trial = 0; trial < 25; ++trial) {
    const SpmdGraph g = random_graph(rng);
    const int n = 2 + trial % 3;
    std::vector<double> tf;
    for (int i = 0; i < n; ++i) tf.push_back(speed(rng) * 1e-3);
    const SpmdCluster c = cluster_of(tf, bw(rng), 20.0);
    SpmdCostModel m(g, c);
    std::vector<double> ratios;
    for (int i = 0; i < n; ++i) ratios.push_back(speed(rng));
    double s = 0;
    for (double r : ratios) s += r;
    for (double& r : ratios) r /= s;
    SearchOptions a, u;
    u.astar = false;
    const auto ra = search_program(m, ratios, a);
    const auto ru = search_program(m, ratios, u);
    REQUIRE(ra.found);
    REQUIRE(ru.found);
    INFO("trial " << trial);
    CHECK(ra.cost == Approx(ru.cost).epsilon(1e-9));
    CHECK(ra.cost == Approx(program_cost(m, ra.program, ratios)).epsilon(1e-9));
    CHECK(ra.expanded <= ru.expanded);
    astar_nodes += ra.expanded;
    ucs_nodes += ru.expanded;
    // Optimal: no single-step change of the program's signature is cheaper (spot check
    // against the DP-only program, which is one member of the search space).
    SearchOptions dp;
    dp.policy.data_parallel_only = true;
    dp.policy.conversions = false;
    const auto rd = search_program(m, ratios, dp);
    if (rd.found) CHECK(ra.cost <= rd.cost * (1 + 1e-12));
  }
  CHECK(astar_nodes < ucs_nodes);
}

TEST_CASE("synthesis on a heterogeneous cluster beats DP-proportional and reaches a fixed point") {
  SpmdModelSize s = tiny("bert");
  s.batch = 16;
  s.seq = 32;
  s.hidden = 64;
  s.ffn = 256;
  s.heads = 4;
  s.vocab = 512;
  const SpmdGraph g = generate_graph(s);
  Json devs = Json::array({{{"tflops", 18.0}, {"memory_gb", 32}, {"count", 2}, {"node", 0}},
                           {{"tflops", 10.0}, {"memory_gb", 16}, {"count", 2}, {"node", 1}}});
  const SpmdCluster c = cluster_from_json(
      {{"devices", devs}, {"collectives", {{"intra_node", table(100, 5)}, {"inter_node", table(1.25, 30)}}}}, "het");
  SpmdCostModel m(g, c);
  const SynthResult hap = synthesize(m, {});
  REQUIRE(hap.found);
  const SynthResult dpp = baseline(m, "dp-proportional", {});
  const SynthResult dpe = baseline(m, "dp-even", {});
  const SynthResult tp = baseline(m, "tp", {});
  REQUIRE(dpp.found);
  REQUIRE(dpe.found);
  REQUIRE(tp.found);
  CHECK(hap.cost <= dpp.cost * (1 + 1e-9));
  CHECK(dpp.cost < dpe.cost);  // a 1.8:1 speed ratio: an even batch split waits for the slow devices
  for (size_t i = 1; i < hap.history.size(); ++i) CHECK(hap.history[i].search_cost <= hap.history[i - 1].lp_cost * (1 + 1e-9));
  REQUIRE(hap.ratios.size() == 4);
  CHECK(std::accumulate(hap.ratios.begin(), hap.ratios.end(), 0.0) == Approx(1.0));
  // The rounded prediction is close to the fractional one (tiny shapes round coarsely).
  CHECK(hap.prediction.iteration_s == Approx(hap.cost).epsilon(0.5));
  CHECK(hap.prediction.fits_memory);
}

TEST_CASE("program JSON round trip and per-rank programs with shard ranges") {
  const SpmdGraph g = generate_graph(tiny("bert"));
  const SpmdCluster c = cluster_of({1.0, 0.6, 0.4}, 1.0, 10.0);
  SpmdCostModel m(g, c);
  SynthOptions o;
  o.fixed_ratios = {0.5, 0.3, 0.2};
  const SynthResult r = synthesize(m, o);
  REQUIRE(r.found);
  const Json j = program_to_json(m, r.program);
  const Program back = program_from_json(g, j, "plan.json");
  CHECK(program_to_json(m, back) == j);
  CHECK(program_cost(m, back, o.fixed_ratios) == Approx(r.cost));
  const Json rp = rank_programs(m, r.program, o.fixed_ratios);
  REQUIRE(rp["ranks"].size() == 3);
  for (const auto& [key, ranges] : rp["shards"].items()) {
    INFO(key);
    int64_t at = 0;
    for (const auto& range : ranges) {
      CHECK(range[0].get<int64_t>() == at);
      at = range[1].get<int64_t>();
    }
    const auto& t = g.tensors[static_cast<size_t>(g.find(key.substr(0, key.find(':'))))];
    CHECK(at == t.shape[static_cast<size_t>(std::stoi(key.substr(key.find(':') + 1)))]);
  }
  // A step naming a property nothing made is rejected with its field.
  Json bad = j;
  for (auto& st : bad) {
    for (auto& in : st["inputs"]) {
      if (in["source"] == "existing") {
        in["prop"] = in["prop"] == "I" ? "R" : "I";
        goto done;
      }
    }
  }
done:
  test::expect_error([&] { (void)program_from_json(g, bad, "plan.json"); }, {"plan.json", "steps[", "expected"});
}

TEST_CASE("malformed model files are rejected naming the field") {
  auto model = [](const std::string& ops_json) {
    return Json::parse(R"({"name":"m","inputs":[{"name":"x","shape":[4,8]},{"name":"y","shape":[4],"kind":"label"}],
      "params":[{"name":"w","shape":[3,8]},{"name":"b","shape":[3]}],"ops":)" + ops_json + "}");
  };
  const std::string good = R"([{"name":"fc","kind":"linear","inputs":["x","w","b"],"output":"h"},
                               {"name":"loss","kind":"cross_entropy","inputs":["h","y"],"output":"loss"}])";
  CHECK(graph_from_json(model(good), "m.json").ops.size() == 2);
  test::expect_error([&] { (void)graph_from_json(model(R"([{"name":"fc","kind":"lineer","inputs":["x","w","b"],"output":"h"}])"), "m.json"); },
                     {"m.json", "ops[0].kind", "'lineer'"});
  test::expect_error([&] { (void)graph_from_json(model(R"([{"name":"fc","kind":"linear","inputs":["x","b","w"],"output":"h"}])"), "m.json"); },
                     {"m.json", "ops[0]", "inputs[1]", "shape"});
  test::expect_error([&] { (void)graph_from_json(model(R"([{"name":"fc","kind":"linear","inputs":["x","w","q"],"output":"h"}])"), "m.json"); },
                     {"ops[0]", "inputs[2]", "'q'"});
  test::expect_error([&] { (void)graph_from_json(model(R"([{"name":"fc","kind":"linear","inputs":["x","w","b"],"output":"h"}])"), "m.json"); },
                     {"m.json", "cross_entropy"});
  Json j = model(good);
  j["inputs"][0]["shape"] = {4, -8};
  test::expect_error([&] { (void)graph_from_json(j, "m.json"); }, {"inputs[0].shape[1]", "-8"});
  j = model(good);
  j["params"][0]["shape"] = "3x8";
  test::expect_error([&] { (void)graph_from_json(j, "m.json"); }, {"params[0].shape", "an array"});
  j = model(good);
  j["extra"] = 1;
  test::expect_error([&] { (void)graph_from_json(j, "m.json"); }, {"m.json", "unknown key 'extra'"});
}

TEST_CASE("malformed cluster files are rejected naming the field") {
  Json ok = {{"devices", {{{"tflops", 10}, {"memory_gb", 16}}}}, {"collectives", {{"intra_node", table(10, 5)}}}};
  CHECK(cluster_from_json(ok, "c.json").size() == 1);
  Json j = ok;
  j["devices"][0]["tflops"] = -1;
  test::expect_error([&] { (void)cluster_from_json(j, "c.json"); }, {"c.json", "devices[0].tflops", "-1"});
  j = ok;
  j["devices"][0].erase("memory_gb");
  test::expect_error([&] { (void)cluster_from_json(j, "c.json"); }, {"devices[0].memory_gb", "required"});
  j = ok;
  j["collectives"]["intra_node"].erase("all_to_all");
  test::expect_error([&] { (void)cluster_from_json(j, "c.json"); }, {"intra_node.all_to_all"});
  j = ok;
  j["devices"][0]["node"] = 1;
  j["devices"].push_back({{"tflops", 10}, {"memory_gb", 16}, {"node", 0}});
  test::expect_error([&] { (void)cluster_from_json(j, "c.json"); }, {"c.json", "collectives.inter_node", "2 nodes"});
  j = ok;
  j["collectives"]["intra_node"]["all_reduce"]["gbytes_per_s"] = "fast";
  test::expect_error([&] { (void)cluster_from_json(j, "c.json"); }, {"intra_node.all_reduce.gbytes_per_s", "a number"});
}

TEST_CASE("memory model: when replicated weights do not fit, the search shards them") {
  SpmdModelSize s = tiny("mlp");
  s.batch = 8;
  s.hidden = 512;
  s.ffn = 2048;
  s.layers = 2;
  const SpmdGraph g = generate_graph(s);
  // Parameters, gradients and Adam state of the replicated model: 4 x 17 MB; each device may use 90% of 40 MB.
  const double state = 4.0 * static_cast<double>(g.param_bytes());
  REQUIRE(state > 0.9 * 40e6);
  const SpmdCluster c = cluster_of({1.0, 1.0, 1.0, 1.0}, 100.0, 5.0, 0.040);
  SpmdCostModel m(g, c);
  const SynthResult dp = baseline(m, "dp-proportional", {});
  REQUIRE(dp.found);
  CHECK_FALSE(dp.prediction.fits_memory);
  const SynthResult hap = synthesize(m, {});
  REQUIRE(hap.found);
  CHECK(hap.prediction.fits_memory);
  for (double b : hap.prediction.device_memory_bytes) CHECK(b <= 0.9 * 40e6);
  // Devices of 1 MB hold no program: the search prunes every prefix over budget and finds none.
  const SpmdCluster tiny_mem = cluster_of({1.0, 1.0, 1.0, 1.0}, 100.0, 5.0, 0.001);
  SpmdCostModel m2(g, tiny_mem);
  const SearchResult none = search_program(m2, even_ratios(4), {});
  CHECK_FALSE(none.found);
  CHECK(none.over_memory > 0);
  SearchOptions loose;
  loose.policy.check_memory = false;
  CHECK(search_program(m2, even_ratios(4), loose).found);
}
