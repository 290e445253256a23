// Reading the gnnflow-stream config.
#include "stream/gnnflow_config.hpp"

#include "core/error.hpp"

namespace mlsys::stream {

using core::at_least;
using core::ConfigNode;
using core::in_range;
using core::one_of;
using core::positive;

GnnflowConfig read_gnnflow_config(const core::ConfigDoc& doc) {
  GnnflowConfig c;
  ConfigNode root(doc);
  root.get("seed", c.seed);

  root.child("data").get("path", c.data.path).get("format", c.data.format, one_of({"auto", "binary", "csv"}));

  const ConfigNode gen = root.child("generate");
  gen.get("preset", c.generate.preset, one_of({"tiny", "S", "M", "L", "gdelt", "mag"}));
  auto& g = c.generate.gen;
  g = graph::stream_preset(c.generate.preset);
  gen.get("nodes", g.nodes, in_range<int64_t>(2, graph::kMaxNodeId))
      .get("edges", g.edges, in_range<int64_t>(1, int64_t{1} << 34))
      .get("bipartite", g.bipartite)
      .get("source_fraction", g.source_fraction, in_range(1e-9, 1 - 1e-9))
      .get("zipf_src", g.zipf_src, in_range(0.0, 4.0))
      .get("zipf_dst", g.zipf_dst, in_range(0.0, 4.0))
      .get("repeat_prob", g.repeat_prob, in_range(0.0, 1.0))
      .get("new_node_fraction", g.new_node_fraction, in_range(0.0, 0.5))
      .get("span", g.span, positive<double>())
      .get("diurnal_amplitude", g.diurnal_amplitude, in_range(0.0, 0.999))
      .get("period", g.period, positive<double>())
      .get("resolution", g.resolution, at_least(0.0))
      .get("time_offset", g.time_offset, in_range(-1e15, 1e15))
      .get("late_fraction", g.late_fraction, in_range(0.0, 1.0))
      .get("late_max", g.late_max, at_least(0.0))
      .get("csv", c.generate.csv);
  try {
    graph::validate(g);  // the checks across fields (nodes against edges, bipartite sides)
  } catch (const core::ConfigError& e) {
    throw core::ConfigError((doc.file.empty() ? std::string("the built-in config") : doc.file) + ": " + e.what());
  }

  const ConfigNode st = root.child("store");
  std::string late = "insert";
  st.get("min_block", c.store.min_block, in_range<int64_t>(1, int64_t{1} << 20))
      .get("big_block", c.store.big_block, in_range<int64_t>(1, int64_t{1} << 24))
      .get("max_block", c.store.max_block, in_range<int64_t>(1, int64_t{1} << 30))
      .get("undirected", c.store.undirected)
      .get("late_policy", late, one_of({"insert", "reject"}))
      .get("huge_pages", c.store.huge_pages)
      .get("pool_chunk_bytes", c.store.pool_chunk_bytes, in_range<int64_t>(4096, int64_t{1} << 34));
  c.store.late = late == "insert" ? graph::LatePolicy::insert : graph::LatePolicy::reject;
  if (c.store.big_block < c.store.min_block) st.fail("big_block", "a value >= min_block " + std::to_string(c.store.min_block), std::to_string(c.store.big_block));
  if (c.store.max_block < c.store.big_block) st.fail("max_block", "a value >= big_block " + std::to_string(c.store.big_block), std::to_string(c.store.max_block));

  root.child("ingest")
      .get("batch_size", c.ingest.batch_size, in_range<int64_t>(1, int64_t{1} << 30))
      .get("expire_window", c.ingest.expire_window, at_least(0.0));

  const ConfigNode sa = root.child("sample");
  sa.get("strategy", c.sample.strategy, one_of({"recent", "uniform", "both"}))
      .get("fanouts", c.sample.layers.fanouts, core::Check<std::vector<int64_t>>([](const std::vector<int64_t>& v) -> std::string {
        if (v.empty() || v.size() > 8) return "a list of 1 to 8 fanouts";
        for (int64_t f : v) {
          if (f < 1 || f > 4096) return "fanouts in [1, 4096]";
        }
        return {};
      }))
      .get("snapshots", c.sample.layers.snapshots, in_range<int64_t>(1, 64))
      .get("window", c.sample.layers.window, at_least(0.0))
      .get("prop_time", c.sample.layers.prop_time)
      .get("batch_size", c.sample.batch_size, in_range<int64_t>(1, int64_t{1} << 24))
      .get("max_events", c.sample.max_events, at_least<int64_t>(0))
      .get("prefetch", c.sample.prefetch);
  if (c.sample.layers.snapshots > 1 && c.sample.layers.window == 0) {
    sa.fail("window", "a value > 0 when snapshots > 1", "0");
  }

  root.child("bench")
      .get("initial_fraction", c.bench.initial_fraction, in_range(0.0, 0.99))
      .get("increments", c.bench.increments, in_range<int64_t>(1, 100000))
      .get("repeats", c.bench.repeats, in_range<int64_t>(1, 1000))
      .get("fanout", c.bench.fanout, in_range<int64_t>(1, 4096))
      .get("roots_per_increment", c.bench.roots_per_increment, at_least<int64_t>(0));

  root.child("cache")
      .get("policies", c.cache.policies, core::Check<std::vector<std::string>>([](const std::vector<std::string>& v) -> std::string {
        if (v.empty()) return "a non-empty list of lru|lfu|fifo";
        for (const auto& p : v) {
          if (p != "lru" && p != "lfu" && p != "fifo") return "a list of lru|lfu|fifo";
        }
        return {};
      }))
      .get("ratios", c.cache.ratios, core::Check<std::vector<double>>([](const std::vector<double>& v) -> std::string {
        if (v.empty()) return "a non-empty list of ratios in (0, 1]";
        for (double r : v) {
          if (!(r > 0 && r <= 1)) return "ratios in (0, 1]";
        }
        return {};
      }))
      .get("restoration", c.cache.restoration)
      .get("dim", c.cache.dim, in_range<int64_t>(1, 4096))
      .get("batch_size", c.cache.batch_size, in_range<int64_t>(1, int64_t{1} << 24))
      .get("fanout", c.cache.fanout, in_range<int64_t>(1, 4096));

  root.finish();
  c.resolved = root.resolved();
  return c;
}

}  // namespace mlsys::stream
