// Reading the spmd-plan config.
#include "plan/spmd_config.hpp"

#include "core/artifact.hpp"
#include "core/error.hpp"

namespace mlsys::plan {

using core::at_least;
using core::ConfigNode;
using core::in_range;
using core::one_of;
using core::positive;

SpmdConfig read_spmd_config(const core::ConfigDoc& doc) {
  SpmdConfig c;
  ConfigNode root(doc);
  root.get("seed", c.seed);
  const ConfigNode m = root.child("model");
  auto& s = c.model.size;
  m.get("file", c.model.file)
      .get("generator", s.generator, one_of({"mlp", "bert", "gpt", "vit", "vgg19", "bert_moe"}))
      .get("batch", s.batch, in_range<int64_t>(1, 1 << 20))
      .get("seq", s.seq, in_range<int64_t>(1, 1 << 20))
      .get("hidden", s.hidden, in_range<int64_t>(1, 1 << 20))
      .get("ffn", s.ffn, in_range<int64_t>(1, 1 << 22))
      .get("heads", s.heads, in_range<int64_t>(1, 4096))
      .get("layers", s.layers, in_range<int64_t>(1, 1024))
      .get("vocab", s.vocab, in_range<int64_t>(1, 1 << 24))
      .get("classes", s.classes, in_range<int64_t>(1, 1 << 24))
      .get("image", s.image, in_range<int64_t>(1, 8192))
      .get("patch", s.patch, in_range<int64_t>(1, 8192))
      .get("experts", s.experts, in_range<int64_t>(2, 4096))
      .get("channels_scale", s.channels_scale, in_range<int64_t>(1, 512))
      .get("dtype", s.dtype, one_of({"float32", "float64", "float16", "bfloat16"}));
  const bool transformer = s.generator == "bert" || s.generator == "gpt" || s.generator == "bert_moe" || s.generator == "vit";
  if (transformer && s.hidden % s.heads != 0) m.fail("heads", "a divisor of model.hidden (" + std::to_string(s.hidden) + ")", std::to_string(s.heads));
  if ((s.generator == "vit" || s.generator == "vgg19") && s.image % (s.generator == "vit" ? s.patch : 32) != 0) {
    m.fail("image", s.generator == "vit" ? "a multiple of model.patch" : "a multiple of 32 (five 2x2 poolings)", std::to_string(s.image));
  }

  const ConfigNode cl = root.child("cluster");
  auto& k = c.cluster;
  cl.get("file", k.file)
      .get("fast", k.fast, in_range(0, 4096))
      .get("slow", k.slow, in_range(0, 4096))
      .get("per_node", k.per_node, in_range(1, 4096))
      .get("fast_tflops", k.fast_tflops, positive<double>())
      .get("slow_tflops", k.slow_tflops, positive<double>())
      .get("fast_memory_gb", k.fast_memory_gb, positive<double>())
      .get("slow_memory_gb", k.slow_memory_gb, positive<double>())
      .get("link_gbits", k.link_gbits, positive<double>())
      .get("link_latency_us", k.link_latency_us, at_least(0.0))
      .get("intra_gbytes_per_s", k.intra_gbytes_per_s, positive<double>())
      .get("intra_latency_us", k.intra_latency_us, at_least(0.0));
  if (k.file.empty() && k.fast + k.slow < 1) cl.fail("fast", "at least one device (fast + slow >= 1)", "0");
  if (k.fast + k.slow > 4096) cl.fail("slow", "at most 4096 devices in all", std::to_string(k.fast + k.slow));

  root.child("cost")
      .get("backward_factor", c.cost.backward_factor, in_range(0.0, 100.0))
      .get("optimizer_bytes_per_param_byte", c.cost.optimizer_bytes_per_param_byte, in_range(0.0, 100.0))
      .get("activation_factor", c.cost.activation_factor, in_range(0.0, 100.0))
      .get("memory_fraction", c.cost.memory_fraction, in_range(1e-3, 1.0));

  const ConfigNode sy = root.child("synth");
  sy.get("astar", c.synth.astar)
      .get("max_iterations", c.synth.max_iterations, in_range(1, 1000))
      .get("ratios", c.synth.fixed_ratios, core::Check<std::vector<double>>([](const std::vector<double>& v) -> std::string {
        double sum = 0;
        for (double x : v) {
          if (!(x >= 0)) return "non-negative ratios summing to 1 (or [] to synthesize them)";
          sum += x;
        }
        if (!v.empty() && std::abs(sum - 1.0) > 1e-6) return "non-negative ratios summing to 1 (or [] to synthesize them)";
        return {};
      }))
      .get("max_nodes", c.synth.max_nodes, in_range<int64_t>(100, int64_t{1} << 40))
      .get("sfb", c.synth.policy.sfb)
      .get("grouped_collectives", c.synth.policy.grouped_collectives)
      .get("check_memory", c.synth.policy.check_memory);
  root.get("baselines", c.baselines, core::Check<std::vector<std::string>>([](const std::vector<std::string>& v) -> std::string {
    for (const auto& b : v) {
      if (b != "dp-even" && b != "dp-proportional" && b != "tp") return "a list of dp-even|dp-proportional|tp";
    }
    return {};
  }));
  root.child("compare").get("ucs", c.compare.ucs);
  root.child("simulate").get("plan", c.simulate.plan).get("use_plan_cluster", c.simulate.use_plan_cluster);
  root.child("explain").get("svg", c.explain.svg, core::artifact_name()).get("width", c.explain.width, in_range(10, 1000));
  const ConfigNode r = root.child("run");
  r.get("plan", c.run.plan)
      .get("ratios", c.run.ratios, core::Check<std::vector<double>>([](const std::vector<double>& v) -> std::string {
        double sum = 0;
        for (double x : v) {
          if (!(x >= 0)) return "non-negative ratios summing to 1, one per process (or [])";
          sum += x;
        }
        if (!v.empty() && (std::abs(sum - 1.0) > 1e-6 || v.size() > 16)) return "non-negative ratios summing to 1, one per process, at most 16 (or [])";
        return {};
      }))
      .get("dtype", c.run.dtype, one_of({"float64", "float32"}))
      .get("lr", c.run.lr, at_least(0.0))
      .get("rtol", c.run.rtol, in_range(0.0, 1.0))
      .get("atol", c.run.atol, in_range(0.0, 1.0))
      .get("iterations", c.run.iterations, in_range(0, 100000))
      .get("timeout_s", c.run.timeout_s, in_range(1, 86400));
  const ConfigNode p = root.child("profile");
  p.get("processes", c.profile.processes, in_range(1, 16))
      .get("sizes_mb", c.profile.sizes_mb, core::Check<std::vector<double>>([](const std::vector<double>& v) -> std::string {
        if (v.empty()) return "a non-empty list of sizes in (0, 4096] MB";
        for (double x : v) {
          if (!(x > 0 && x <= 4096)) return "a non-empty list of sizes in (0, 4096] MB";
        }
        return {};
      }))
      .get("repeats", c.profile.repeats, in_range(1, 1000))
      .get("gemm", c.profile.gemm, in_range<int64_t>(16, 8192))
      .get("file", c.profile.file, core::artifact_name());
  root.finish();
  c.resolved = root.resolved();
  return c;
}

SpmdGraph model_of(const SpmdConfig& c) {
  if (!c.model.file.empty()) return read_graph_file(c.model.file);
  try {
    return generate_graph(c.model.size);
  } catch (const core::InputError& e) {
    throw core::ConfigError(std::string("model (generator ") + c.model.size.generator + "): " + e.what());
  }
}

SpmdCluster cluster_of(const SpmdConfig& c) {
  if (!c.cluster.file.empty()) return read_cluster_file(c.cluster.file);
  const auto& k = c.cluster;
  SpmdCluster out;
  out.name = std::to_string(k.fast) + " fast + " + std::to_string(k.slow) + " slow";
  for (int i = 0; i < k.fast + k.slow; ++i) {
    SpmdDevice d;
    const bool fast = i < k.fast;
    d.name = (fast ? "fast" : "slow") + std::to_string(fast ? i : i - k.fast);
    d.flops = (fast ? k.fast_tflops : k.slow_tflops) * 1e12;
    d.memory_bytes = (fast ? k.fast_memory_gb : k.slow_memory_gb) * 1e9;
    d.node = i / k.per_node;
    out.devices.push_back(d);
  }
  // Alpha-beta tables from the link speeds: a ring all-reduce moves ~2x the tensor over the
  // slowest link (algorithm bandwidth = link / 2); all-gather, reduce-scatter, broadcast,
  // reduce and all-to-all ~1x.
  const double inter = k.link_gbits / 8.0;  // GB/s
  for (int i = 0; i < kCollectiveKinds; ++i) {
    const double f = static_cast<Collective>(i) == Collective::all_reduce ? 0.5 : 1.0;
    out.inter[static_cast<size_t>(i)] = {inter * f, k.link_latency_us};
    out.intra[static_cast<size_t>(i)] = {k.intra_gbytes_per_s * f, k.intra_latency_us};
  }
  return out;
}

}  // namespace mlsys::plan
