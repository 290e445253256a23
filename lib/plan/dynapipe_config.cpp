// Reading the dynapipe-plan config.
#include "plan/dynapipe_config.hpp"

#include <memory>

#include "core/artifact.hpp"
#include "core/error.hpp"

namespace mlsys::plan {

using core::at_least;
using core::ConfigNode;
using core::in_range;
using core::one_of;
using core::positive;

DynapipeConfig read_dynapipe_config(const core::ConfigDoc& doc) {
  DynapipeConfig c;
  ConfigNode root(doc);
  root.get("seed", c.seed);

  const ConfigNode data = root.child("data");
  data.get("path", c.data.path)
      .get("format", c.data.format, one_of({"auto", "jsonl", "csv"}))
      .get("max_seqlen", c.data.max_seqlen, in_range<int64_t>(8, 1 << 20))
      .get("global_batch_tokens", c.data.global_batch_tokens, in_range<int64_t>(1, int64_t{1} << 32))
      .get("batches", c.data.batches, at_least<int64_t>(0));
  const ConfigNode gen = data.child("generate");
  auto& g = c.data.generate;
  gen.get("samples", g.samples, in_range<int64_t>(1, 100000000))
      .get("zero_shot_fraction", g.zero_shot_fraction, in_range(0.0, 1.0))
      .get("zero_shot_median", g.zero_shot_median, positive<double>())
      .get("zero_shot_sigma", g.zero_shot_sigma, in_range(0.0, 5.0))
      .get("few_shot_median", g.few_shot_median, positive<double>())
      .get("few_shot_sigma", g.few_shot_sigma, in_range(0.0, 5.0))
      .get("input_min", g.input_min, at_least<int64_t>(0))
      .get("input_max", g.input_max, at_least<int64_t>(1))
      .get("short_label_fraction", g.short_label_fraction, in_range(0.0, 1.0))
      .get("short_label_max", g.short_label_max, at_least<int64_t>(1))
      .get("target_median", g.target_median, positive<double>())
      .get("target_sigma", g.target_sigma, in_range(0.0, 5.0))
      .get("target_max", g.target_max, at_least<int64_t>(1));
  if (g.input_min > g.input_max) gen.fail("input_min", "a value <= input_max", std::to_string(g.input_min));

  const ConfigNode model = root.child("model");
  std::string kind = "gpt";
  model.get("kind", kind, one_of({"gpt", "t5"}));
  c.model.kind = parse_model_kind(kind);
  model.get("encoder_layers", c.model.encoder_layers, in_range(1, 4096))
      .get("decoder_layers", c.model.decoder_layers, in_range(0, 4096))
      .get("hidden", c.model.hidden, in_range<int64_t>(1, 1 << 20))
      .get("heads", c.model.heads, in_range<int64_t>(1, 4096))
      .get("kv_channels", c.model.kv_channels, in_range<int64_t>(1, 1 << 16))
      .get("ffn", c.model.ffn, in_range<int64_t>(1, 1 << 22))
      .get("vocab", c.model.vocab, in_range<int64_t>(1, 1 << 24))
      .get("bytes_per_value", c.model.bytes_per_value, in_range(1, 8))
      .get("profile", c.model_profile);
  if (c.model.kind == ModelKind::gpt && c.model.decoder_layers != 0) {
    model.fail("decoder_layers", "0 for a gpt (decoder-only) model; its layers are encoder_layers",
               std::to_string(c.model.decoder_layers));
  }
  if (c.model.kind == ModelKind::t5 && c.model.decoder_layers == 0) {
    model.fail("decoder_layers", "at least 1 for a t5 (encoder-decoder) model", "0");
  }

  const ConfigNode cl = root.child("cluster");
  cl.get("stages", c.cluster.stages, in_range(1, 1024))
      .get("data_parallel", c.cluster.data_parallel, in_range(1, 65536))
      .get("device_memory_mb", c.cluster.device_memory_mb, positive<double>())
      .get("peak_tflops", c.cluster.peak_tflops, positive<double>())
      .get("efficiency", c.cluster.efficiency, in_range(1e-6, 1.0))
      .get("half_saturation_tokens", c.cluster.half_saturation_tokens, at_least(0.0))
      .get("kernel_overhead_us", c.cluster.kernel_overhead_us, at_least(0.0))
      .get("link_gbps", c.cluster.link_gbps, positive<double>())
      .get("link_latency_us", c.cluster.link_latency_us, at_least(0.0))
      .get("zero_stage", c.cluster.zero_stage, in_range(0, 3));
  if (c.model.total_layers() < c.cluster.stages) {
    cl.fail("stages", "at most the model's " + std::to_string(c.model.total_layers()) + " layers",
            std::to_string(c.cluster.stages));
  }

  const ConfigNode pl = root.child("planner");
  std::vector<std::string> rc = {"none", "selective", "full"};
  pl.get("recompute", rc, core::Check<std::vector<std::string>>([](const std::vector<std::string>& v) -> std::string {
    if (v.empty()) return "a non-empty list of none|selective|full";
    for (const auto& s : v) {
      if (s != "none" && s != "selective" && s != "full") return "a list of none|selective|full";
    }
    return {};
  }));
  c.planner.recompute.clear();
  for (const auto& s : rc) c.planner.recompute.push_back(parse_recompute(s));
  pl.get("round_multiple", c.planner.round_multiple, in_range(1, 4096))
      .get("decoder_offset", c.planner.decoder_offset, in_range(0, 64))
      .get("tmax_interval_ms", c.planner.tmax_interval_ms, at_least(0.0))
      .get("cluster_threshold", c.planner.cluster_threshold, at_least(0.0))
      .get("use_tsp", c.planner.use_tsp)
      .get("schedules", c.planner.schedules, core::Check<std::vector<std::string>>([](const std::vector<std::string>& v) -> std::string {
        if (v.empty()) return "a non-empty list of 1f1b|interleaved-1f1b|wait-free-cyclic";
        for (const auto& s : v) {
          if (s != "1f1b" && s != "interleaved-1f1b" && s != "wait-free-cyclic") {
            return "a list of 1f1b|interleaved-1f1b|wait-free-cyclic";
          }
        }
        return {};
      }))
      .get("layouts", c.planner.layouts, core::Check<std::vector<std::string>>([](const std::vector<std::string>& v) -> std::string {
        if (v.empty()) return "a non-empty list of linear|interleaved|zigzag";
        for (const auto& s : v) {
          if (s != "linear" && s != "interleaved" && s != "zigzag") return "a list of linear|interleaved|zigzag";
        }
        return {};
      }))
      .get("permutation_search", c.planner.permutation_search)
      .get("max_in_flight", c.planner.max_in_flight, at_least(0));
  c.planner.seed = c.seed;
  if (!c.model_profile.empty()) {
    if (c.model.kind != ModelKind::gpt) model.fail("kind", "gpt with model.profile (profiles hold decoder-only layers)", kind);
    if (c.planner.recompute != std::vector<Recompute>{Recompute::none}) {
      pl.fail("recompute", "[\"none\"] with model.profile (a measured profile holds no recomputation)",
              core::excerpt(nlohmann::json(rc).dump()));
    }
  }

  const ConfigNode bl = root.child("baselines");
  bl.get("methods", c.methods, core::Check<std::vector<std::string>>([](const std::vector<std::string>& v) -> std::string {
    for (const auto& s : v) {
      if (s != "padding" && s != "packing" && s != "fixed_mbs" && s != "fixed_tokens") {
        return "a list of padding|packing|fixed_mbs|fixed_tokens";
      }
    }
    return {};
  }));
  const core::Check<std::vector<int64_t>> positive_list = [](const std::vector<int64_t>& v) -> std::string {
    if (v.empty()) return "a non-empty list of positive integers";
    for (auto x : v) {
      if (x <= 0) return "a non-empty list of positive integers";
    }
    return {};
  };
  bl.get("microbatch_sizes", c.baselines.microbatch_sizes, positive_list)
      .get("token_budgets", c.baselines.token_budgets, positive_list);
  c.baselines.max_seqlen = c.data.max_seqlen;
  c.baselines.round_multiple = c.planner.round_multiple;
  c.baselines.decoder_offset = c.planner.decoder_offset;
  c.baselines.recompute = c.planner.recompute;

  root.child("simulate")
      .get("workload", c.simulate.workload, one_of({"data", "uniform", "cost_table"}))
      .get("cost_table", c.simulate.cost_table);
  const core::Check<std::vector<int64_t>> grid = [](const std::vector<int64_t>& v) -> std::string {
    if (v.empty()) return "a non-empty, strictly increasing list of positive integers";
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] <= 0 || (i > 0 && v[i] <= v[i - 1])) return "a non-empty, strictly increasing list of positive integers";
    }
    return {};
  };
  root.child("profile")
      .get("microbatch_sizes", c.profile.microbatch_sizes, grid)
      .get("seqlens", c.profile.seqlens, grid)
      .get("repeats", c.profile.repeats, in_range(1, 1000))
      .get("warmup", c.profile.warmup, in_range(0, 1000))
      .get("folder", c.profile.folder, core::artifact_name());
  root.child("run")
      .get("iterations", c.run.iterations, in_range<int64_t>(1, 1000000))
      .get("baselines", c.run.baselines, core::Check<std::vector<std::string>>([](const std::vector<std::string>& v) -> std::string {
        for (const auto& s : v) {
          if (s != "padding" && s != "packing" && s != "fixed_mbs" && s != "fixed_tokens") {
            return "a list of padding|packing|fixed_mbs|fixed_tokens";
          }
        }
        return {};
      }))
      .get("lr", c.run.lr, at_least(0.0))
      .get("timeout_s", c.run.timeout_s, in_range(1, 86400))
      .get("dtype", c.run.dtype, one_of({"float32", "float64"}));
  root.child("explain")
      .get("batch", c.explain.batch, at_least<int64_t>(0))
      .get("svg", c.explain.svg, core::artifact_name())  // relative to --out, inside it
      .get("width", c.explain.width, in_range(10, 1000));

  root.finish();
  c.resolved = root.resolved();
  return c;
}

CostModel cost_model_of(const DynapipeConfig& c) {
  if (c.model_profile.empty()) return CostModel(c.model, c.cluster);
  auto profile = std::make_shared<const MeasuredProfile>(MeasuredProfile::read(c.model_profile));
  return CostModel(c.model, c.cluster, std::move(profile));
}

}  // namespace mlsys::plan
