// dynapipe-plan profile and run.
#include "plan_exec/exec_commands.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "core/artifact.hpp"
#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/log_text.hpp"
#include "core/progress.hpp"
#include "core/report.hpp"
#include "core/signals.hpp"
#include "nn/optim.hpp"
#include "plan/dynapipe_config.hpp"
#include "plan/local_ranks.hpp"
#include "plan/workload.hpp"
#include "plan_exec/layer_profiler.hpp"
#include "plan_exec/run_iterations.hpp"
#include "plan_exec/stage_model.hpp"
#include "tensor/device.hpp"
#include "tensor/distributed.hpp"

namespace mlsys::plan {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

at::ScalarType dtype_of(const DynapipeConfig& c) { return c.run.dtype == "float64" ? at::kDouble : at::kFloat; }

std::string fmt(double v, int prec = 2) { return core::fixed(v, prec); }

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct MethodRun {
  std::string name;
  int64_t knob = 0;
  nn::LlamaForCausalLM model;
  nn::AdamW optim;
  json iterations = json::array();
  double measured_ms = 0, predicted_ms = 0;
  int64_t real_tokens = 0;
};

MethodRun make_method(const std::string& name, int64_t knob, const DynapipeConfig& c, const c10::Device& dev) {
  nn::LlamaForCausalLM model = make_stage_model(c.model, c.data.max_seqlen, c.seed, dtype_of(c), dev);
  std::vector<at::Tensor> params;
  for (auto& [n, t] : model.params()) params.push_back(t);
  nn::AdamW optim(params, nn::AdamWConfig{});
  return MethodRun{name, knob, std::move(model), std::move(optim)};
}

}  // namespace

int dynapipe_profile(const core::CommonOptions& opts) {
  const DynapipeConfig c = read_dynapipe_config(core::load_config(opts));
  if (c.model.kind != ModelKind::gpt) {
    throw core::ConfigError("model.kind: profile measures decoder-only (gpt) layers; expected gpt, found t5");
  }
  const c10::Device dev = tensor::parse_device(opts.device);
  LayerProfileOptions po;
  po.microbatch_sizes = c.profile.microbatch_sizes;
  po.seqlens = c.profile.seqlens;
  po.repeats = c.profile.repeats;
  po.warmup = c.profile.warmup;
  po.seed = c.seed;
  po.dtype = dtype_of(c);
  const size_t total = po.microbatch_sizes.size() * po.seqlens.size();
  core::Progress progress("profile", total, opts.progress_mode(), opts.quiet);
  const std::vector<ProfileRecord> recs = profile_layers(c.model, po, dev, [&](size_t done, size_t) {
    core::throw_if_stop_requested();
    progress.update(done);
  });
  progress.finish();
  const ProfileMetadata meta{1, c.model.hidden, c.model.heads, c.model.kv_channels, c.model.ffn};
  const fs::path folder = fs::path(opts.out) / c.profile.folder;
  json points = json::array();
  std::vector<std::vector<std::string>> rows = {
      {"mbs", "seqlen", "fw ms", "bw ms", "head fw ms", "head bw ms", "stored MB", "peak MB"}};
  for (const auto& r : recs) {
    rows.push_back({std::to_string(r.mbs), std::to_string(r.seqlen), fmt(r.forward_encoder_ms, 3),
                    fmt(r.backward_encoder_ms, 3), fmt(r.forward_postprocess_ms, 3), fmt(r.backward_postprocess_ms, 3),
                    fmt(r.encoder_activation_mb, 3), fmt(r.peak_encoder_activation_mb, 3)});
    points.push_back({{"mbs", r.mbs}, {"seqlen", r.seqlen}, {"file", profile_file_name(meta, r.seqlen, r.mbs)}});
  }
  core::replace_folder_atomic(folder, [&](const fs::path& tmp) {
    for (const auto& r : recs) core::write_file_atomic(tmp / profile_file_name(meta, r.seqlen, r.mbs), profile_file_text(r));
    core::write_json_artifact(
        tmp / "profile.json", core::artifact_info(opts, c.resolved),
        json{{"device", dev.str()},
             {"threads", at::get_num_threads()},
             {"dtype", c.run.dtype},
             {"measured",
              "wall time per pass, median of profile.repeats after profile.warmup; memory: bytes of c10 CPU "
              "allocations (stored = still allocated after the layer's forward, peak = high-water during it, "
              "both above the allocations before it)"},
             {"points", points}});
  });
  core::emit_result(opts, json{{"folder", folder.string()}, {"points", points}},
                    core::format_table(rows) + "wrote " + folder.string() + "\n");
  return 0;
}

int dynapipe_run(const core::CommonOptions& opts) {
  const DynapipeConfig c = read_dynapipe_config(core::load_config(opts));
  if (c.model_profile.empty()) {
    throw core::ConfigError("model.profile: run compares measured times with the simulator's prediction from a measured "
                            "profile; expected a profile folder (dynapipe-plan profile), found none");
  }
  if (c.cluster.data_parallel != 1) {
    throw core::ConfigError("cluster.data_parallel: run executes one pipeline; expected 1, found " +
                            std::to_string(c.cluster.data_parallel));
  }
  const c10::Device dev = tensor::parse_device(opts.device);
  if (!dev.is_cpu()) throw core::UsageError("run: --device " + dev.str() + ": only cpu (Gloo) runs are supported");
  const CostModel cost = cost_model_of(c);
  const Workload w = load_workload(c);
  const int world = c.cluster.stages;
  const size_t n_iter = std::min(static_cast<size_t>(c.run.iterations), w.batches.size());
  const std::vector<std::vector<int64_t>> batches(w.batches.begin(), w.batches.begin() + static_cast<std::ptrdiff_t>(n_iter));

  // Rank 0 (this process, unless a launcher set RANK) starts the others.
  const bool launched = std::getenv("WORLD_SIZE") != nullptr;  // NOLINT(concurrency-mt-unsafe)
  tensor::DistEnv env;
  std::optional<LocalRanks> children;
  if (launched) {
    env = tensor::dist_env_from_environment();
    if (env.world_size != world) {
      throw core::ConfigError("cluster.stages: expected the launcher's WORLD_SIZE " + std::to_string(env.world_size) +
                              ", found " + std::to_string(world));
    }
  } else if (world > 1) {
    env.world_size = world;
    env.rank = 0;
    env.master_port = free_loopback_port();
    children.emplace(opts, world, env.master_port);
  }
  std::optional<tensor::ProcessGroup> pg;
  if (world > 1) pg.emplace(tensor::ProcessGroup::create(env, dev, std::chrono::seconds(c.run.timeout_s)));
  const int rank = env.rank;

  // The methods: DynaPipe, then each baseline at the setting the simulator finds fastest.
  std::vector<MethodRun> methods;
  methods.push_back(make_method("dynapipe", 0, c, dev));
  for (const auto& b : c.run.baselines) {
    const BaselineMethod m = parse_baseline(b);
    const BaselineResult br = run_baseline(m, cost, w.samples, batches, c.baselines);
    if (!br.feasible) {
      throw core::ConfigError("run.baselines: " + b + " has no setting that fits in cluster.device_memory_mb with the profile");
    }
    methods.push_back(make_method(b, br.knob, c, dev));
  }

  core::Progress progress("run", n_iter * methods.size(), opts.progress_mode(), opts.quiet || rank != 0);
  size_t done = 0;
  // Methods alternate within each global batch, so load changes on a shared machine hit
  // them alike.
  for (size_t k = 0; k < n_iter; ++k) {
    for (MethodRun& mr : methods) {
      core::throw_if_stop_requested();
      PlannedIteration it;
      if (mr.name == "dynapipe") {
        const BatchPlan p = plan_one(cost, w, c, k, c.planner, true);
        it = dynapipe_iteration(cost, p, w.samples, c.seed);
      } else {
        it = baseline_iteration(cost, parse_baseline(mr.name), mr.knob, w.samples, batches[k], c.baselines, c.seed);
      }
      const RankPlan& mine = it.ranks.at(static_cast<size_t>(rank));
      if (pg) pg->barrier();
      const double t0 = now_ms();
      const RankRun rr = execute_rank_plan(mr.model, it.exec, mine, pg ? &*pg : nullptr);
      const double t1 = now_ms();
      // Per-rank times and loss to every rank: the iteration is the slowest rank's.
      at::Tensor stats = at::zeros({world + 2}, at::kDouble);
      stats[rank] = t1 - t0;
      stats[world] = rr.loss;
      stats[world + 1] = rr.executed == static_cast<int64_t>(mine.instructions.size()) ? 1.0 : 0.0;
      if (pg) pg->all_reduce_sum(stats);
      mr.optim.step(c.run.lr);
      mr.optim.zero_grad();
      const double measured = stats.narrow(0, 0, world).max().item<double>();
      int64_t planned = 0;
      for (const auto& r : it.ranks) planned += static_cast<int64_t>(r.instructions.size());
      const bool complete = stats[world + 1].item<double>() == static_cast<double>(world);
      if (!complete) throw core::RuntimeFailure("run: " + mr.name + ", batch " + std::to_string(k) + ": a rank did not complete its plan");
      mr.measured_ms += measured;
      mr.predicted_ms += it.predicted_ms;
      mr.real_tokens += it.real_tokens;
      json ranks_ms = json::array();
      for (int r = 0; r < world; ++r) ranks_ms.push_back(stats[r].item<double>());
      mr.iterations.push_back({{"batch", k},
                               {"measured_ms", measured},
                               {"predicted_ms", it.predicted_ms},
                               {"rank_ms", ranks_ms},
                               {"loss", stats[world].item<double>()},
                               {"microbatches", it.microbatches},
                               {"real_tokens", it.real_tokens},
                               {"padded_tokens", it.padded_tokens},
                               {"layout", it.layout},
                               {"schedule", it.schedule},
                               {"instructions", planned},
                               {"instructions_completed", true}});
      progress.update(++done, mr.name + " " + fmt(measured, 1) + " ms (sim " + fmt(it.predicted_ms, 1) + ")");
    }
  }
  progress.finish();
  if (children) children->join();
  if (rank != 0) return 0;

  // Throughputs and ratios, measured and simulated.
  auto tput = [](double tokens, double ms) { return ms > 0 ? tokens / (ms / 1e3) : 0.0; };
  const MethodRun& dyn = methods.front();
  const MethodRun* best = nullptr;
  const MethodRun* packing = nullptr;
  for (size_t i = 1; i < methods.size(); ++i) {
    if (methods[i].name == "packing") packing = &methods[i];
    if (best == nullptr || methods[i].measured_ms < best->measured_ms) best = &methods[i];
  }
  json out_methods = json::array();
  std::vector<std::vector<std::string>> rows = {
      {"method", "knob", "measured ms/iter", "simulated ms/iter", "measured/simulated", "tokens/s measured",
       "tokens/s simulated"}};
  for (const MethodRun& m : methods) {
    const double n = static_cast<double>(n_iter);
    out_methods.push_back({{"method", m.name},
                           {"knob", m.knob},
                           {"measured_ms", m.measured_ms},
                           {"predicted_ms", m.predicted_ms},
                           {"tokens_per_s_measured", tput(static_cast<double>(m.real_tokens), m.measured_ms)},
                           {"tokens_per_s_simulated", tput(static_cast<double>(m.real_tokens), m.predicted_ms)},
                           {"iterations", m.iterations}});
    rows.push_back({m.name, m.name == "dynapipe" ? "-" : std::to_string(m.knob), fmt(m.measured_ms / n, 1),
                    fmt(m.predicted_ms / n, 1), fmt(m.measured_ms / m.predicted_ms, 3),
                    fmt(tput(static_cast<double>(m.real_tokens), m.measured_ms), 0),
                    fmt(tput(static_cast<double>(m.real_tokens), m.predicted_ms), 0)});
  }
  json summary = {{"iterations", n_iter}, {"processes", world}, {"methods", out_methods}};
  std::string text = core::format_table(rows);
  auto ratio_line = [&](const char* label, const MethodRun* other) {
    if (other == nullptr) return;
    const double measured = other->measured_ms / dyn.measured_ms, simulated = other->predicted_ms / dyn.predicted_ms;
    summary[std::string("speedup_vs_") + label] = {{"method", other->name}, {"measured", measured}, {"simulated", simulated}};
    text += std::string("DynaPipe vs ") + label + " (" + other->name + "): measured " + fmt(measured, 3) + "x, simulated " +
            fmt(simulated, 3) + "x\n";
  };
  ratio_line("packing", packing);
  ratio_line("best_baseline", best);
  const fs::path path = fs::path(opts.out) / "run.json";
  core::write_json_artifact(path, core::artifact_info(opts, c.resolved), summary);
  core::emit_result(opts, summary, text + "wrote " + path.string() + "\n");
  return 0;
}

}  // namespace mlsys::plan
