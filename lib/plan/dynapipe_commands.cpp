// dynapipe-plan subcommands: load the config and data, run the planner, write artifacts
// atomically, print a table (or JSON with --json).
#include "plan/dynapipe_commands.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <numeric>

#include "core/atomic_file.hpp"
#include "core/artifact.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/report.hpp"
#include "core/signals.hpp"
#include "core/timer.hpp"
#include "plan/analytical_profile.hpp"
#include "plan/baselines.hpp"
#include "plan/cost_table.hpp"
#include "plan/dynapipe_config.hpp"
#include "plan/schedules.hpp"
#include "plan/timeline.hpp"
#include "plan/workload.hpp"

namespace mlsys::plan {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

DynapipeConfig load(const core::CommonOptions& opts) {
  return read_dynapipe_config(core::load_config(opts));
}

std::string f2(double v, int prec = 2) { return core::fixed(v, prec); }

}  // namespace

Workload load_workload(const DynapipeConfig& c) {
  Workload w;
  if (c.data.path.empty()) {
    w.samples = generate_flan_like(c.data.generate, c.seed);
    w.source = "generated FLANv2-like mixture (seed " + std::to_string(c.seed) + ")";
  } else {
    w.samples = load_lengths(c.data.path, c.data.format, &w.lines);
    w.source = c.data.path;
  }
  clip_lengths(w.samples, c.data.max_seqlen, c.model.kind == ModelKind::gpt);
  w.batches = split_global_batches(w.samples, c.data.global_batch_tokens);
  if (c.data.batches > 0 && static_cast<int64_t>(w.batches.size()) > c.data.batches) {
    w.batches.resize(static_cast<size_t>(c.data.batches));
  }
  log::info("{}: {} samples, {} global batches of <= {} tokens", w.source, w.samples.size(), w.batches.size(),
            c.data.global_batch_tokens);
  return w;
}

// plan_batch with a sample that fits nowhere named by its file:line (or generated index).
BatchPlan plan_one(const CostModel& cost, const Workload& w, const DynapipeConfig& c, size_t b, const PlannerOptions& po,
                   bool record_timeline) {
  try {
    return plan_batch(cost, w.samples, w.batches[b], po, record_timeline);
  } catch (const SampleTooLarge& e) {
    const size_t i = static_cast<size_t>(e.sample);
    if (const MeasuredProfile* prof = cost.profile()) {
      const SampleLength& sl = w.samples[i];
      const int64_t padded = round_up(sl.input + sl.target, po.round_multiple);
      if (padded > prof->seqlens().back()) {
        const std::string where = i < w.lines.size() ? c.data.path + ":" + std::to_string(w.lines[i]) : w.source + ": sample " + std::to_string(i);
        throw core::InputError(where + ": padded length " + std::to_string(padded) +
                               " exceeds the largest sequence length of the profile " + prof->source() + " (" +
                               std::to_string(prof->seqlens().back()) + "); profile longer sequences or lower data.max_seqlen");
      }
    }
    if (i < w.lines.size()) {
      throw core::InputError(c.data.path + ":" + std::to_string(w.lines[i]) + ": " + e.what() + " (device_memory_mb " +
                             f2(c.cluster.device_memory_mb, 0) + ", max_seqlen " + std::to_string(c.data.max_seqlen) + ")");
    }
    throw core::InputError(w.source + ": " + e.what());
  }
}

namespace {

// The slowest replica (never an idle one unless all are).
const ReplicaPlan& busiest(const BatchPlan& p) {
  const ReplicaPlan* best = &p.replicas.front();
  for (const auto& rp : p.replicas) {
    if (rp.sim.makespan_ms > best->sim.makespan_ms) best = &rp;
  }
  return *best;
}

json microbatch_json(const MicroBatch& mb) {
  return {{"samples", mb.samples},
          {"shape", {mb.shape.batch, mb.shape.enc_len, mb.shape.dec_len}},
          {"time_ms", mb.time_ms},
          {"real_tokens", mb.real_tokens},
          {"padded_tokens", mb.shape.padded_tokens()}};
}

json batch_json(const BatchPlan& p, int index, const CostModel& cost, bool with_plans) {
  json mbs = json::array();
  for (const auto& mb : p.microbatches) mbs.push_back(microbatch_json(mb));
  json reps = json::array();
  const int S = cost.stages();
  for (size_t r = 0; r < p.replicas.size(); ++r) {
    const auto& rp = p.replicas[r];
    json ranks = json::array();
    if (with_plans) {
      for (const auto& rank : rp.ranks) {
        // Global ranks, replica-major: rank = replica * stages + stage rank; peers too.
        const int base = static_cast<int>(r) * S;
        json j = to_json(rank);
        j["rank"] = base + rank.rank;
        j["stage_rank"] = rank.rank;
        for (auto& ins : j["instructions"]) {
          if (ins.contains("peer")) ins["peer"] = base + ins["peer"].get<int>();
        }
        ranks.push_back(std::move(j));
      }
    }
    reps.push_back({{"replica", r},
                    {"order", rp.order},
                    {"schedule", rp.schedule},
                    {"makespan_ms", rp.sim.makespan_ms},
                    {"peak_memory_mb", rp.sim.peak_mb},
                    {"ranks", std::move(ranks)}});
  }
  return {{"index", index},
          {"layout", p.layout},
          {"stage_device", p.spec.stage_device},
          {"samples", static_cast<int64_t>(std::accumulate(p.microbatches.begin(), p.microbatches.end(), size_t{0},
                                                           [](size_t a, const MicroBatch& m) { return a + m.samples.size(); }))},
          {"real_tokens", p.real_tokens},
          {"padded_tokens", p.padded_tokens},
          {"padding_efficiency", p.padded_tokens ? static_cast<double>(p.real_tokens) / static_cast<double>(p.padded_tokens) : 0.0},
          {"recompute", to_string(p.recompute)},
          {"memory_limit", p.memory_limit},
          {"dp_objective_ms", p.partition.objective},
          {"tmax_candidates", p.partition.tmax_candidates},
          {"makespan_ms", p.makespan_ms},
          {"peak_memory_mb", p.peak_mb},
          {"planning_ms", p.planning_ms},
          {"microbatches", std::move(mbs)},
          {"replicas", std::move(reps)}};
}


}  // namespace

int dynapipe_generate(const core::CommonOptions& opts) {
  const DynapipeConfig c = load(opts);
  auto samples = generate_flan_like(c.data.generate, c.seed);
  const fs::path out = fs::path(opts.out) / "lengths.jsonl";
  core::write_file_atomic(out, to_jsonl(samples));
  std::vector<int64_t> in, tg;
  for (const auto& s : samples) {
    in.push_back(s.input);
    tg.push_back(s.target);
  }
  auto q = [](std::vector<int64_t> v, double p) {
    std::sort(v.begin(), v.end());
    return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
  };
  auto mean = [](const std::vector<int64_t>& v) {
    return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  };
  json summary = {{"path", out.string()},
                  {"samples", samples.size()},
                  {"seed", c.seed},
                  {"input", {{"mean", mean(in)}, {"p50", q(in, 0.5)}, {"p90", q(in, 0.9)}, {"max", q(in, 1.0)}}},
                  {"target", {{"mean", mean(tg)}, {"p50", q(tg, 0.5)}, {"p90", q(tg, 0.9)}, {"max", q(tg, 1.0)}}}};
  std::string text = "wrote " + out.string() + " (" + std::to_string(samples.size()) +
                     " samples, FLANv2-like mixture: an assumption, see bench/dynapipe/README.md)\n";
  text += core::format_table({{"", "mean", "p50", "p90", "max"},
                 {"input", f2(mean(in), 1), std::to_string(q(in, 0.5)), std::to_string(q(in, 0.9)), std::to_string(q(in, 1.0))},
                 {"target", f2(mean(tg), 1), std::to_string(q(tg, 0.5)), std::to_string(q(tg, 0.9)), std::to_string(q(tg, 1.0))}});
  core::emit_result(opts, summary, text);
  return 0;
}

int dynapipe_plan(const core::CommonOptions& opts) {
  const DynapipeConfig c = load(opts);
  const CostModel cost = cost_model_of(c);
  const Workload w = load_workload(c);
  json doc = core::artifact_header(core::artifact_info(opts, c.resolved));
  json batches = json::array();
  std::vector<std::vector<std::string>> rows{
      {"batch", "samples", "tokens", "micro-batches", "pad eff", "recompute", "layout", "schedule", "iter ms", "peak MB", "plan ms"}};
  core::Progress progress("plan", w.batches.size(), opts.progress_mode(), opts.quiet);
  double total_ms = 0, plan_ms = 0;
  int64_t total_tokens = 0;
  for (size_t b = 0; b < w.batches.size(); ++b) {
    core::throw_if_stop_requested();
    const BatchPlan p = plan_one(cost, w, c, b, c.planner);
    batches.push_back(batch_json(p, static_cast<int>(b), cost, true));
    total_ms += p.makespan_ms;
    plan_ms += p.planning_ms;
    total_tokens += p.real_tokens;
    rows.push_back({std::to_string(b), std::to_string(w.batches[b].size()), std::to_string(p.real_tokens),
                    std::to_string(p.microbatches.size()),
                    f2(static_cast<double>(p.real_tokens) / static_cast<double>(p.padded_tokens), 3), to_string(p.recompute),
                    p.layout, busiest(p).schedule, f2(p.makespan_ms), f2(p.peak_mb, 0), f2(p.planning_ms)});
    progress.update(b + 1);
  }
  progress.finish();
  doc["data"] = {{"source", w.source}, {"samples", w.samples.size()}};
  doc["batches"] = std::move(batches);
  const double tput = total_ms > 0 ? static_cast<double>(total_tokens) / (total_ms / 1e3) : 0.0;
  doc["summary"] = {{"batches", w.batches.size()}, {"real_tokens", total_tokens}, {"iteration_ms_total", total_ms},
                    {"throughput_tokens_per_s", tput}, {"planning_ms_mean", w.batches.empty() ? 0.0 : plan_ms / static_cast<double>(w.batches.size())}};
  const fs::path out = fs::path(opts.out) / "plan.json";
  core::write_file_atomic(out, doc.dump(1) + "\n");
  json summary = doc["summary"];
  summary["path"] = out.string();
  core::emit_result(opts, summary, core::format_table(rows) + "throughput " + f2(tput, 0) + " tokens/s (simulated); wrote " + out.string() + "\n");
  return 0;
}

int dynapipe_simulate(const core::CommonOptions& opts) {
  const DynapipeConfig c = load(opts);
  json doc = core::artifact_header(core::artifact_info(opts, c.resolved));
  json runs = json::array();
  std::vector<std::vector<std::string>> rows;
  // One cost table simulated: the row of the table and the JSON run.
  auto run_table = [&](const CostTable& table, const std::string& source) {
    const StagedPipeline p = merge_layers(table);
    const Schedule s = table_schedule(table, p, source);
    const SimResult r = simulate(p.spec, p.work, s);
    if (!r.ok) throw core::RuntimeFailure(source + ": " + table.schedule + ": " + r.error);
    std::string asg, stages;
    for (size_t l = 0; l < table.device_assignment.size(); ++l) asg += (l ? "," : "") + std::to_string(table.device_assignment[l]);
    json stage_json = json::array();
    for (size_t v = 0; v < p.stage_layers.size(); ++v) {
      stage_json.push_back({{"device", p.spec.stage_device[v]}, {"layers", p.stage_layers[v]}});
    }
    rows.push_back({asg, std::to_string(p.stage_layers.size()), to_string(classify_layout(p.spec)), table.schedule,
                    f2(r.makespan_ms, 3), f2(r.max_peak_mb(), 0)});
    runs.push_back({{"assignment", table.device_assignment}, {"stages", std::move(stage_json)},
                    {"layout", to_string(classify_layout(p.spec))}, {"schedule", table.schedule},
                    {"microbatches", table.microbatches.size()}, {"makespan_ms", r.makespan_ms},
                    {"peak_memory_mb", r.peak_mb}});
  };
  if (c.simulate.workload == "uniform" || c.simulate.workload == "cost_table") {
    rows.push_back({"assignment", "stages", "layout", "schedule", "makespan ms", "peak MB"});
    if (c.simulate.workload == "cost_table") {
      if (c.simulate.cost_table.empty()) {
        throw core::ConfigError("simulate.cost_table: expected the path of a cost table (simulate.workload is cost_table), found \"\"");
      }
      run_table(read_cost_table(c.simulate.cost_table), c.simulate.cost_table);
    } else {
      // The reference simulator's uniform case (planners.md §2.6), the five rows of its table.
      const std::vector<std::pair<std::vector<int>, std::string>> cases = {{{0, 0, 1, 1, 2, 2, 3, 3}, "1f1b"},
                                                                          {{0, 0, 1, 1, 2, 2, 3, 3}, "wait-free-cyclic"},
                                                                          {{0, 1, 2, 3, 0, 1, 2, 3}, "interleaved-1f1b"},
                                                                          {{0, 1, 2, 3, 0, 1, 2, 3}, "wait-free-cyclic"},
                                                                          {{0, 1, 2, 3, 3, 2, 1, 0}, "wait-free-cyclic"}};
      for (const auto& [asg, sched] : cases) run_table(uniform_cost_table(asg, sched), "uniform case");
    }
  } else {
    const CostModel cost = cost_model_of(c);
    const Workload w = load_workload(c);
    const PipelineSpec spec = pipeline_spec(cost);
    rows.push_back({"batch", "replica", "micro-batches", "recompute", "1f1b ms", "1f1b peak MB", "cyclic ms",
                    "cyclic peak MB"});
    PlannerOptions po = c.planner;
    po.permutation_search = false;
    po.layouts = {"linear"};  // 1F1B against wait-free-cyclic on the linear layout
    for (size_t b = 0; b < w.batches.size(); ++b) {
      core::throw_if_stop_requested();
      const BatchPlan p = plan_one(cost, w, c, b, po);
      // Every data-parallel replica (an idle one has no micro-batches to simulate).
      for (size_t r = 0; r < p.replicas.size(); ++r) {
        std::vector<MicroBatchWork> work;
        for (int m : p.replicas[r].order) work.push_back(work_of(cost, p.microbatches[static_cast<size_t>(m)].shape, p.recompute));
        if (work.empty()) {
          rows.push_back({std::to_string(b), std::to_string(r), "0", "-", "idle", "-", "idle", "-"});
          runs.push_back({{"batch", b}, {"replica", r}, {"microbatches", 0}, {"idle", true}});
          continue;
        }
        const SimResult a = simulate(spec, work, one_f_one_b(spec, static_cast<int>(work.size())));
        const SimResult z = simulate(spec, work, cyclic(spec, work, CyclicOptions{c.planner.max_in_flight, true}));
        for (const auto* res : {&a, &z}) {
          if (!res->ok) {
            throw core::RuntimeFailure("batch " + std::to_string(b) + " replica " + std::to_string(r) + ": " +
                                       (res == &a ? "1f1b" : "wait-free-cyclic") + ": " + res->error);
          }
        }
        rows.push_back({std::to_string(b), std::to_string(r), std::to_string(work.size()), to_string(p.recompute),
                        f2(a.makespan_ms), f2(a.max_peak_mb(), 0), f2(z.makespan_ms), f2(z.max_peak_mb(), 0)});
        runs.push_back({{"batch", b},
                        {"replica", r},
                        {"microbatches", work.size()},
                        {"recompute", to_string(p.recompute)},
                        {"1f1b", {{"makespan_ms", a.makespan_ms}, {"peak_memory_mb", a.peak_mb}}},
                        {"wait-free-cyclic", {{"makespan_ms", z.makespan_ms}, {"peak_memory_mb", z.peak_mb}}}});
      }
    }
  }
  doc["workload"] = c.simulate.workload;
  doc["runs"] = runs;
  const fs::path out = fs::path(opts.out) / "simulate.json";
  core::write_file_atomic(out, doc.dump(1) + "\n");
  core::emit_result(opts, json{{"workload", c.simulate.workload}, {"runs", runs}, {"path", out.string()}},
       core::format_table(rows) + "wrote " + out.string() + "\n");
  return 0;
}

int dynapipe_compare(const core::CommonOptions& opts) {
  const DynapipeConfig c = load(opts);
  const CostModel cost = cost_model_of(c);
  const Workload w = load_workload(c);
  // DynaPipe.
  double dyn_ms = 0, plan_ms = 0, plan_max = 0, dyn_peak = 0;
  int64_t dyn_real = 0, dyn_padded = 0, dyn_mbs = 0;
  core::Progress progress("compare", w.batches.size() + c.methods.size(), opts.progress_mode(), opts.quiet);
  for (size_t b = 0; b < w.batches.size(); ++b) {
    core::throw_if_stop_requested();
    const BatchPlan p = plan_one(cost, w, c, b, c.planner);
    dyn_ms += p.makespan_ms;
    plan_ms += p.planning_ms;
    plan_max = std::max(plan_max, p.planning_ms);
    dyn_peak = std::max(dyn_peak, p.peak_mb);
    dyn_real += p.real_tokens;
    dyn_padded += p.padded_tokens;
    dyn_mbs += static_cast<int64_t>(p.microbatches.size());
    progress.update(b + 1);
  }
  const double dyn_tput = static_cast<double>(dyn_real) / (dyn_ms / 1e3);
  json methods = json::array();
  methods.push_back({{"method", "dynapipe"},
                     {"knob", "dp"},
                     {"microbatches", dyn_mbs},
                     {"padding_efficiency", static_cast<double>(dyn_real) / static_cast<double>(dyn_padded)},
                     {"iteration_ms_total", dyn_ms},
                     {"throughput_tokens_per_s", dyn_tput},
                     {"peak_memory_mb", dyn_peak},
                     {"planning_ms_mean", plan_ms / static_cast<double>(w.batches.size())},
                     {"planning_ms_max", plan_max}});
  std::vector<std::vector<std::string>> rows{{"method", "knob", "recompute", "micro-batches", "pad eff", "iter ms (mean)",
                                              "tokens/s", "peak MB", "dynapipe speed-up"}};
  const double nb = static_cast<double>(w.batches.size());
  rows.push_back({"dynapipe", "dp", "per batch", std::to_string(dyn_mbs),
                  f2(static_cast<double>(dyn_real) / static_cast<double>(dyn_padded), 3), f2(dyn_ms / nb), f2(dyn_tput, 0),
                  f2(dyn_peak, 0), "1.00"});
  double best_packing = 0, best_any = 0;
  size_t done = w.batches.size();
  for (const auto& name : c.methods) {
    core::throw_if_stop_requested();
    const BaselineMethod m = parse_baseline(name);
    const BaselineResult r = run_baseline(m, cost, w.samples, w.batches, c.baselines);
    progress.update(++done);
    if (!r.feasible) {
      rows.push_back({name, "-", "-", "-", "-", "-", "does not fit", "-", "-"});
      methods.push_back({{"method", name}, {"feasible", false}});
      continue;
    }
    const double tput = static_cast<double>(r.real_tokens) / (r.time_ms / 1e3);
    const double eff = static_cast<double>(r.real_tokens) / static_cast<double>(r.padded_tokens);
    if (m == BaselineMethod::packing) best_packing = std::max(best_packing, tput);
    best_any = std::max(best_any, tput);
    const std::string knob = (m == BaselineMethod::fixed_tokens ? "tokens=" : "mbs=") + std::to_string(r.knob);
    rows.push_back({name, knob, to_string(r.recompute), std::to_string(r.microbatches), f2(eff, 3), f2(r.time_ms / nb),
                    f2(tput, 0), f2(r.peak_mb, 0), f2(dyn_tput / tput)});
    methods.push_back({{"method", name},
                       {"feasible", true},
                       {"knob", r.knob},
                       {"recompute", to_string(r.recompute)},
                       {"microbatches", r.microbatches},
                       {"padding_efficiency", eff},
                       {"iteration_ms_total", r.time_ms},
                       {"estimate_ms_total", r.estimate_ms},
                       {"throughput_tokens_per_s", tput},
                       {"peak_memory_mb", r.peak_mb},
                       {"dynapipe_speedup", dyn_tput / tput}});
  }
  progress.finish();
  json doc = core::artifact_header(core::artifact_info(opts, c.resolved));
  doc["data"] = {{"source", w.source}, {"samples", w.samples.size()}, {"batches", w.batches.size()}};
  doc["methods"] = methods;
  doc["summary"] = {{"dynapipe_throughput_tokens_per_s", dyn_tput},
                    {"speedup_vs_packing", best_packing > 0 ? json(dyn_tput / best_packing) : json(nullptr)},
                    {"speedup_vs_best_baseline", best_any > 0 ? json(dyn_tput / best_any) : json(nullptr)},
                    {"planning_ms_mean", plan_ms / nb},
                    {"planning_ms_max", plan_max}};
  const fs::path out = fs::path(opts.out) / "compare.json";
  core::write_file_atomic(out, doc.dump(1) + "\n");
  json summary = doc["summary"];
  summary["methods"] = methods;
  summary["path"] = out.string();
  std::string text = "model " + to_string(c.model.kind) + ", " + std::to_string(c.cluster.stages) + " stages x " +
                     std::to_string(c.cluster.data_parallel) + " replicas, max_seqlen " + std::to_string(c.data.max_seqlen) +
                     ", " + std::to_string(w.batches.size()) + " global batches of <= " +
                     std::to_string(c.data.global_batch_tokens) + " tokens (simulated times)\n";
  text += core::format_table(rows);
  text += "dynapipe planning time per global batch: mean " + f2(plan_ms / nb) + " ms, max " + f2(plan_max) + " ms\n";
  text += "wrote " + out.string() + "\n";
  core::emit_result(opts, summary, text);
  return 0;
}

int dynapipe_explain(const core::CommonOptions& opts) {
  const DynapipeConfig c = load(opts);
  // where the figure goes, checked before any work: a name under --out, never outside it
  const fs::path out = core::artifact_path(opts, "explain.svg", c.explain.svg);
  const CostModel cost = cost_model_of(c);
  const Workload w = load_workload(c);
  if (c.explain.batch >= static_cast<int64_t>(w.batches.size())) {
    throw core::ConfigError("explain.batch: expected a value < " + std::to_string(w.batches.size()) +
                            " (the global batches planned), found " + std::to_string(c.explain.batch));
  }
  const BatchPlan p = plan_one(cost, w, c, static_cast<size_t>(c.explain.batch), c.planner, true);
  const PipelineSpec& spec = p.spec;
  const auto& rp = busiest(p);
  const size_t rep = static_cast<size_t>(&rp - p.replicas.data());
  const std::string title = "dynapipe-plan: batch " + std::to_string(c.explain.batch) +
                            (p.replicas.size() > 1 ? ", replica " + std::to_string(rep) + " (the slowest) of " +
                                                         std::to_string(p.replicas.size())
                                                   : std::string()) +
                            ", " + std::to_string(rp.order.size()) + " micro-batches, " + p.layout + " layout, " + rp.schedule +
                            ", recompute " + to_string(p.recompute);
  core::write_file_atomic(out, timeline_svg(spec, rp.sim, title));
  json mbs = json::array();
  for (int m : rp.order) {
    const auto& mb = p.microbatches[static_cast<size_t>(m)];
    mbs.push_back({{"id", m}, {"shape", {mb.shape.batch, mb.shape.enc_len, mb.shape.dec_len}}, {"time_ms", mb.time_ms}});
  }
  json summary = {{"batch", c.explain.batch}, {"schedule", rp.schedule}, {"recompute", to_string(p.recompute)},
                  {"makespan_ms", rp.sim.makespan_ms}, {"peak_memory_mb", rp.sim.peak_mb},
                  {"order", mbs}, {"svg", out.string()}};
  std::string text = title + "\n" + timeline_ascii(spec, rp.sim, c.explain.width);
  text += "micro-batches in execution order (letter=micro-batch id: batch x enc [x dec], ms):";
  for (size_t i = 0; i < rp.order.size(); ++i) {
    const auto& mb = p.microbatches[static_cast<size_t>(rp.order[i])];
    text += std::string(i % 4 == 0 ? "\n  " : "  ") + static_cast<char>('A' + i % 26) + "=" +
            std::to_string(rp.order[i]) + ": " + std::to_string(mb.shape.batch) + "x" + std::to_string(mb.shape.enc_len) +
            (mb.shape.dec_len ? "x" + std::to_string(mb.shape.dec_len) : "") + " " + f2(mb.time_ms, 1);
  }
  text += "\nwrote " + out.string() + "\n";
  core::emit_result(opts, summary, text);
  return 0;
}

int dynapipe_export_profile(const core::CommonOptions& opts) {
  const DynapipeConfig c = load(opts);
  const CostModel cost = cost_model_of(c);
  const std::vector<ProfileRecord> recs = analytical_profile_records(cost, c.profile.microbatch_sizes, c.profile.seqlens);
  const ProfileMetadata meta{1, c.model.hidden, c.model.heads, c.model.kv_channels, c.model.ffn};
  const fs::path folder = fs::path(opts.out) / c.profile.folder;
  json points = json::array();
  for (const auto& r : recs) {
    points.push_back({{"mbs", r.mbs}, {"seqlen", r.seqlen}, {"file", profile_file_name(meta, r.seqlen, r.mbs)}});
  }
  core::replace_folder_atomic(folder, [&](const fs::path& tmp) {
    for (const auto& r : recs) core::write_file_atomic(tmp / profile_file_name(meta, r.seqlen, r.mbs), profile_file_text(r));
    core::write_json_artifact(tmp / "profile.json", core::artifact_info(opts, c.resolved),
                              json{{"device", "analytical cost model (lib/plan/cost_model.cpp), not measured"},
                                   {"points", points}});
  });
  core::emit_result(opts, json{{"folder", folder.string()}, {"points", points}},
                    "wrote " + folder.string() + " (" + std::to_string(recs.size()) +
                        " points of the analytical cost model)\n");
  return 0;
}

}  // namespace mlsys::plan
