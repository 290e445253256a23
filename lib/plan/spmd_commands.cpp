// spmd-plan synth, explain, simulate, compare.
#include "plan/spmd_commands.hpp"

#include <algorithm>
#include <filesystem>

#include "core/artifact.hpp"
#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/report.hpp"
#include "plan/timeline.hpp"

namespace mlsys::plan {

using core::Json;
namespace fs = std::filesystem;

namespace {

std::string ms(double s, int prec = 3) { return core::fixed(s * 1e3, prec); }

struct Setup {
  SpmdConfig c;
  SpmdGraph g;
  SpmdCluster cluster;
};

Setup load(const core::CommonOptions& opts) {
  Setup s{read_spmd_config(core::load_config(opts)), {}, {}};
  s.g = model_of(s.c);
  s.cluster = cluster_of(s.c);
  if (!s.c.synth.fixed_ratios.empty() && static_cast<int>(s.c.synth.fixed_ratios.size()) != s.cluster.size()) {
    throw core::ConfigError("synth.ratios: expected " + std::to_string(s.cluster.size()) + " ratios (one per device), found " +
                            std::to_string(s.c.synth.fixed_ratios.size()));
  }
  return s;
}

std::string model_line(const SpmdGraph& g, const SpmdCluster& c) {
  return "model " + g.name + ": " + std::to_string(g.ops.size()) + " ops, " +
         core::fixed(static_cast<double>(g.param_bytes()) / 1e6, 1) + " MB of parameters, " +
         core::fixed(g.total_flops() / 1e9, 1) + " GFLOP forward; cluster " + c.name + ": " + std::to_string(c.size()) +
         " devices in " + std::to_string(c.nodes()) + " nodes\n";
}

SynthResult run_hap(const SpmdCostModel& m, const SpmdConfig& c) {
  SynthOptions o = c.synth;
  o.policy.name = "hap";
  SynthResult r = synthesize(m, o);
  if (!r.found) {
    throw core::RuntimeFailure("synth: no program fits every device's memory (cost.memory_fraction " +
                               core::fixed(c.cost.memory_fraction, 2) + "); use a larger cluster, a smaller model or "
                               "synth.check_memory=false to see the best plan regardless");
  }
  return r;
}

Json method_json(const SynthResult& r, double hap_s) {
  return {{"method", r.method},
          {"found", r.found},
          {"iteration_ms", r.prediction.iteration_s * 1e3},
          {"compute_ms", r.prediction.compute_s * 1e3},
          {"comm_ms", r.prediction.comm_s * 1e3},
          {"fits_memory", r.prediction.fits_memory},
          {"max_memory_gb", r.prediction.device_memory_bytes.empty()
                                ? 0.0
                                : *std::max_element(r.prediction.device_memory_bytes.begin(), r.prediction.device_memory_bytes.end()) / 1e9},
          {"speedup_of_hap", r.found && hap_s > 0 ? r.prediction.iteration_s / hap_s : 0.0},
          {"synthesis_s", r.seconds},
          {"nodes_expanded", r.expanded}};
}

std::vector<std::string> method_row(const SynthResult& r, double hap_s) {
  const auto& p = r.prediction;
  return {r.method, ms(p.iteration_s), ms(p.compute_s), ms(p.comm_s), core::fixed(p.iteration_s / hap_s, 2) + "x",
          core::fixed(p.device_memory_bytes.empty() ? 0 : *std::max_element(p.device_memory_bytes.begin(), p.device_memory_bytes.end()) / 1e9, 2),
          p.fits_memory ? "yes" : "NO"};
}

std::vector<SynthResult> run_baselines(const SpmdCostModel& m, const SpmdConfig& c) {
  std::vector<SynthResult> out;
  for (const auto& b : c.baselines) out.push_back(baseline(m, b, c.synth));
  return out;
}

std::string ratios_line(const std::vector<double>& r) {
  // Distinct ratios with their multiplicity: "16 x 0.0221, 48 x 0.0135".
  std::vector<std::pair<double, int>> groups;
  for (double x : r) {
    if (!groups.empty() && std::abs(groups.back().first - x) < 1e-9) {
      ++groups.back().second;
    } else {
      groups.emplace_back(x, 1);
    }
  }
  std::string s;
  for (const auto& [x, n] : groups) s += (s.empty() ? "" : ", ") + std::to_string(n) + " x " + core::fixed(x, 4);
  return s;
}

}  // namespace

Json prediction_json(const Prediction& p) {
  return {{"iteration_ms", p.iteration_s * 1e3},      {"compute_ms", p.compute_s * 1e3},
          {"comm_ms", p.comm_s * 1e3},                {"fits_memory", p.fits_memory},
          {"device_compute_ms", [&] { Json a = Json::array(); for (double v : p.device_compute_s) a.push_back(v * 1e3); return a; }()},
          {"device_comm_ms", [&] { Json a = Json::array(); for (double v : p.device_comm_s) a.push_back(v * 1e3); return a; }()},
          {"device_memory_gb", [&] { Json a = Json::array(); for (double v : p.device_memory_bytes) a.push_back(v / 1e9); return a; }()}};
}

Json spmd_plan_json(const core::CommonOptions& opts, const SpmdConfig& c, const SpmdCostModel& m, const SynthResult& r) {
  Json doc = core::artifact_header(core::artifact_info(opts, c.resolved));
  Json hist = Json::array();
  for (const auto& h : r.history) {
    hist.push_back({{"search_ms", h.search_cost * 1e3}, {"lp_ms", h.lp_cost * 1e3}, {"nodes_expanded", h.expanded},
                    {"nodes_generated", h.generated}, {"search_s", h.search_s}, {"lp_s", h.lp_s}, {"lp_status", h.lp_status},
                    {"rejected_over_memory", h.over_memory}});
  }
  doc["model"] = graph_to_json(m.graph());
  doc["cluster"] = cluster_to_json(m.cluster());
  doc["method"] = r.method;
  doc["ratios"] = r.ratios;
  doc["steps"] = program_to_json(m, r.program);
  doc["programs"] = rank_programs(m, r.program, r.ratios);
  doc["prediction"] = prediction_json(r.prediction);
  doc["predicted_unrounded_ms"] = r.cost * 1e3;
  doc["history"] = hist;
  doc["synthesis_s"] = r.seconds;
  return doc;
}

int spmd_synth(const core::CommonOptions& opts) {
  const Setup s = load(opts);
  const SpmdCostModel m(s.g, s.cluster, s.c.cost);
  const SynthResult hap = run_hap(m, s.c);
  const auto base = run_baselines(m, s.c);
  Json doc = spmd_plan_json(opts, s.c, m, hap);
  Json bj = Json::array();
  for (const auto& b : base) bj.push_back(method_json(b, hap.prediction.iteration_s));
  doc["baselines"] = bj;
  const fs::path out = fs::path(opts.out) / "plan.json";
  core::write_file_atomic(out, doc.dump(1) + "\n");
  core::write_file_atomic(fs::path(opts.out) / "listing.txt", program_listing(m, hap.program, hap.ratios));
  std::vector<std::vector<std::string>> rows{{"method", "iteration ms", "compute ms", "comm ms", "vs HAP", "max mem GB", "fits"}};
  rows.push_back(method_row(hap, hap.prediction.iteration_s));
  for (const auto& b : base) rows.push_back(method_row(b, hap.prediction.iteration_s));
  std::string text = model_line(s.g, s.cluster) + core::format_table(rows);
  text += "HAP ratios: " + ratios_line(hap.ratios) + "\nsynthesis: " + std::to_string(hap.history.size()) +
          " search/LP rounds, " + core::fixed(hap.seconds, 3) + " s, " + std::to_string(hap.expanded) +
          " A* nodes expanded\nwrote " + out.string() + " and listing.txt\n";
  Json summary = {{"plan", out.string()}, {"hap", method_json(hap, hap.prediction.iteration_s)}, {"baselines", bj},
                  {"ratios", hap.ratios}};
  core::emit_result(opts, summary, text);
  return 0;
}

int spmd_explain(const core::CommonOptions& opts) {
  const Setup s = load(opts);
  const SpmdCostModel m(s.g, s.cluster, s.c.cost);
  const SynthResult hap = run_hap(m, s.c);
  const int n = m.devices();
  // The predicted iteration as a timeline: per step one compute slot and one communication
  // slot, every device waiting for the slowest (HAP's cost model), drawn with the pipeline
  // timeline of lib/plan/timeline (one "micro-batch" colour per step).
  PipelineSpec spec;
  spec.devices = n;
  SimResult sim;
  sim.ok = true;
  sim.memory.assign(static_cast<size_t>(n), {});
  sim.peak_mb.assign(static_cast<size_t>(n), 0.0);
  sim.busy_ms.assign(static_cast<size_t>(n), 0.0);
  std::vector<double> mem(static_cast<size_t>(n), 0.0);
  double t = 0;
  for (size_t k = 0; k < hap.program.steps.size(); ++k) {
    std::vector<CostTerm> terms, memt;
    m.step_terms(hap.program.steps[k], terms);
    m.memory_terms(hap.program.steps[k], memt);
    for (int comm = 0; comm < 2; ++comm) {
      double slot = 0;
      std::vector<double> busy(static_cast<size_t>(n), 0.0);
      for (const auto& term : terms) {
        if (term.comm != (comm == 1)) continue;
        slot += m.term_max(term, hap.ratios, true);
        for (int i = 0; i < n; ++i) {
          busy[static_cast<size_t>(i)] += term.at(m.fraction(term, hap.ratios, i, true), s.cluster.devices[static_cast<size_t>(i)].flops);
        }
      }
      if (slot <= 0) continue;
      for (int i = 0; i < n; ++i) {
        OpTiming ot;
        ot.op.mb = static_cast<int>(k);
        ot.device = i;
        ot.comm = comm == 1;
        ot.peer = i;
        ot.start = t * 1e3;
        ot.end = (t + busy[static_cast<size_t>(i)]) * 1e3;
        sim.timeline.push_back(ot);
        if (comm == 0) sim.busy_ms[static_cast<size_t>(i)] += busy[static_cast<size_t>(i)] * 1e3;
      }
      t += slot;
    }
    for (int i = 0; i < n; ++i) {
      for (const auto& mt : memt) mem[static_cast<size_t>(i)] += mt.at(m.fraction(mt, hap.ratios, i, true), 1.0) / 1e6;
      sim.memory[static_cast<size_t>(i)].emplace_back(t * 1e3, mem[static_cast<size_t>(i)]);
      sim.peak_mb[static_cast<size_t>(i)] = mem[static_cast<size_t>(i)];
    }
  }
  sim.makespan_ms = t * 1e3;
  for (const auto& d : s.cluster.devices) spec.memory_limit_mb.push_back(d.memory_bytes * s.c.cost.memory_fraction / 1e6);
  const fs::path svg = core::artifact_path(opts, "explain.svg", s.c.explain.svg);
  core::write_file_atomic(svg, timeline_svg(spec, sim, "spmd-plan: " + s.g.name + " on " + s.cluster.name + " (HAP)"));
  std::string text = model_line(s.g, s.cluster) + "program (forward + backward per instruction, rounded shards):\n" +
                     program_listing(m, hap.program, hap.ratios);
  std::vector<std::vector<std::string>> rows{{"device", "TFLOP/s", "ratio", "compute ms", "comm ms", "memory GB"}};
  for (int i = 0; i < n; ++i) {
    const auto& d = s.cluster.devices[static_cast<size_t>(i)];
    rows.push_back({d.name, core::fixed(d.flops / 1e12, 2), core::fixed(hap.ratios[static_cast<size_t>(i)], 4),
                    ms(hap.prediction.device_compute_s[static_cast<size_t>(i)]), ms(hap.prediction.device_comm_s[static_cast<size_t>(i)]),
                    core::fixed(hap.prediction.device_memory_bytes[static_cast<size_t>(i)] / 1e9, 3)});
  }
  text += core::format_table(rows) + "predicted iteration " + ms(hap.prediction.iteration_s) + " ms (compute " +
          ms(hap.prediction.compute_s) + ", communication " + ms(hap.prediction.comm_s) + ")\n";
  text += timeline_ascii(spec, sim, s.c.explain.width) + "(letters: instruction index mod 26)\nwrote " + svg.string() + "\n";
  Json summary = {{"svg", svg.string()}, {"prediction", prediction_json(hap.prediction)}, {"steps", program_to_json(m, hap.program)},
                  {"ratios", hap.ratios}};
  core::emit_result(opts, summary, text);
  return 0;
}

int spmd_simulate(const core::CommonOptions& opts) {
  const Setup s = load(opts);
  if (s.c.simulate.plan.empty()) throw core::ConfigError("simulate.plan: expected the path of a plan.json written by synth, found \"\"");
  const Json plan = core::read_json_file(s.c.simulate.plan);
  const std::string& src = s.c.simulate.plan;
  if (!plan.is_object() || !plan.contains("model") || !plan.contains("steps") || !plan.contains("ratios")) {
    throw core::InputError(src + ": expected a plan.json with model, steps and ratios, found " + core::describe_json(plan));
  }
  const SpmdGraph g = graph_from_json(plan["model"], src + ": model");
  const Program p = program_from_json(g, plan["steps"], src);
  std::vector<double> ratios;
  if (!plan["ratios"].is_array()) throw core::InputError(src + ": ratios: expected an array, found " + core::describe_json(plan["ratios"]));
  for (const auto& r : plan["ratios"]) {
    if (!r.is_number()) throw core::InputError(src + ": ratios: expected numbers, found " + core::describe_json(r));
    ratios.push_back(r.get<double>());
  }
  // The plan's own cluster, or (simulate.use_plan_cluster=false) the config's: what-if.
  if (s.c.simulate.use_plan_cluster && !plan.contains("cluster")) {
    throw core::InputError(src + ": cluster: expected the plan's cluster (or simulate.use_plan_cluster=false), found nothing");
  }
  const SpmdCluster cluster = s.c.simulate.use_plan_cluster ? cluster_from_json(plan["cluster"], src + ": cluster") : s.cluster;
  if (static_cast<int>(ratios.size()) != cluster.size()) {
    throw core::InputError(src + ": ratios: expected " + std::to_string(cluster.size()) + " (one per device of " + cluster.name +
                           "), found " + std::to_string(ratios.size()));
  }
  const SpmdCostModel m(g, cluster, s.c.cost);
  const Prediction pr = predict(m, p, ratios, true);
  Json doc = core::artifact_header(core::artifact_info(opts, s.c.resolved));
  doc["plan"] = src;
  doc["prediction"] = prediction_json(pr);
  const fs::path out = fs::path(opts.out) / "simulate.json";
  core::write_file_atomic(out, doc.dump(1) + "\n");
  std::string text = model_line(g, cluster) + "plan " + src + ": predicted iteration " + ms(pr.iteration_s) + " ms (compute " +
                     ms(pr.compute_s) + ", communication " + ms(pr.comm_s) + "), memory " +
                     (pr.fits_memory ? "fits" : "EXCEEDS device " + std::to_string(pr.over_memory_device)) + "\nwrote " +
                     out.string() + "\n";
  core::emit_result(opts, doc, text);
  return 0;
}

int spmd_compare(const core::CommonOptions& opts) {
  const Setup s = load(opts);
  const SpmdCostModel m(s.g, s.cluster, s.c.cost);
  const SynthResult hap = run_hap(m, s.c);
  const auto base = run_baselines(m, s.c);
  Json doc = core::artifact_header(core::artifact_info(opts, s.c.resolved));
  Json bj = Json::array();
  std::vector<std::vector<std::string>> rows{{"method", "iteration ms", "compute ms", "comm ms", "vs HAP", "max mem GB", "fits"}};
  rows.push_back(method_row(hap, hap.prediction.iteration_s));
  for (const auto& b : base) {
    bj.push_back(method_json(b, hap.prediction.iteration_s));
    rows.push_back(method_row(b, hap.prediction.iteration_s));
  }
  doc["hap"] = method_json(hap, hap.prediction.iteration_s);
  doc["baselines"] = bj;
  std::string text = model_line(s.g, s.cluster) + core::format_table(rows);
  // A* against uniform-cost search: the same program cost, fewer nodes (one search at the
  // first round's ratios, as the released HAP code searches).
  const SearchOptions a{true, s.c.synth.max_nodes, s.c.synth.policy};
  const auto ra = search_program(m, proportional_ratios(s.cluster), a);
  Json search = {{"astar", {{"cost_ms", ra.cost * 1e3}, {"expanded", ra.expanded}, {"generated", ra.generated}, {"seconds", ra.seconds}}}};
  text += "A* at the initial ratios: " + ms(ra.cost) + " ms, " + std::to_string(ra.expanded) + " nodes expanded, " +
          core::fixed(ra.seconds, 3) + " s\n";
  if (s.c.compare.ucs) {
    const SearchOptions u{false, s.c.synth.max_nodes, s.c.synth.policy};
    const auto ru = search_program(m, proportional_ratios(s.cluster), u);
    search["uniform_cost"] = {{"cost_ms", ru.cost * 1e3}, {"expanded", ru.expanded}, {"generated", ru.generated}, {"seconds", ru.seconds}};
    text += "uniform-cost:             " + ms(ru.cost) + " ms, " + std::to_string(ru.expanded) + " nodes expanded, " +
            core::fixed(ru.seconds, 3) + " s\n";
  }
  doc["search"] = search;
  doc["synthesis_s"] = hap.seconds;
  text += "synthesis (search + LP rounds): " + core::fixed(hap.seconds, 3) + " s\n";
  const fs::path out = fs::path(opts.out) / "compare.json";
  core::write_file_atomic(out, doc.dump(1) + "\n");
  text += "wrote " + out.string() + "\n";
  core::emit_result(opts, doc, text);
  return 0;
}

}  // namespace mlsys::plan
