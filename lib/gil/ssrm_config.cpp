// Reads SsrmIncrementalConfig from the merged JSON document, checking every field.
#include "gil/ssrm_config.hpp"

namespace mlsys::gil {

SsrmIncrementalConfig read_ssrm_config(const core::ConfigDoc& doc) {
  using core::at_least;
  using core::in_range;
  using core::one_of;
  using core::positive;
  SsrmIncrementalConfig c;
  core::ConfigNode root(doc);
  root.get("seed", c.seed);

  const auto data = root.child("data");
  data.get("path", c.data.path)
      .get("classes_per_task", c.data.classes_per_task, in_range<int64_t>(1, 1000))
      .get("train_fraction", c.data.split.train, in_range(0.05, 0.9))
      .get("val_fraction", c.data.split.val, in_range(0.0, 0.5))
      .get("split_seed", c.data.split_seed);
  if (c.data.split.train + c.data.split.val > 0.95) {
    data.fail("val_fraction", "train_fraction + val_fraction <= 0.95 (the test split needs nodes)",
              std::to_string(c.data.split.train + c.data.split.val));
  }

  auto& g = c.generate;
  const auto gen = root.child("generate");
  gen.get("seed", c.generate_seed)
      .get("classes", g.classes, in_range<int64_t>(1, 10000))
      .get("nodes_per_class", g.nodes_per_class, in_range<int64_t>(3, 100000))
      .get("feature_dim", g.feature_dim, in_range<int64_t>(1, 4096))
      .get("mean_scale", g.mean_scale, in_range(0.0, 100.0))
      .get("feature_noise", g.feature_noise, in_range(0.0, 100.0))
      .get("same_class_degree", g.same_class_degree, in_range(0.0, 1000.0))
      .get("cross_class_degree", g.cross_class_degree, in_range(0.0, 1000.0))
      .get("shift", g.shift, in_range(0.0, 1000.0))
      .get("related_affinity", g.related_affinity, in_range(0.0, 1.0));
  g.classes_per_task = c.data.classes_per_task;
  if (c.data.path.empty() && g.classes < g.classes_per_task) {
    gen.fail("classes", "at least data.classes_per_task = " + std::to_string(g.classes_per_task) + " classes",
             std::to_string(g.classes));
  }

  auto& m = c.run.model;
  root.child("model")
      .get("name", m.name, one_of({"gcn", "sage", "gat"}))
      .get("hidden", m.hidden, in_range<int64_t>(1, 65536))
      .get("gat_heads", m.gat_heads, in_range<int64_t>(1, 256))
      .get("dropout", m.dropout, in_range(0.0, 0.9));
  if (m.name == "gat" && m.hidden % m.gat_heads != 0) {
    root.child("model").fail("hidden", "a multiple of model.gat_heads = " + std::to_string(m.gat_heads), std::to_string(m.hidden));
  }

  auto& t = c.run.train;
  std::vector<int64_t> fanout = {t.fanout.first, t.fanout.last};
  root.child("train")
      .get("epochs", t.epochs, in_range<int64_t>(1, 100000))
      .get("batch_size", t.batch_size, in_range<int64_t>(0, 100000000))
      .get("fanout", fanout, core::Check<std::vector<int64_t>>([](const std::vector<int64_t>& v) -> std::string {
        if (v.size() != 2) return "two fan-outs [first layer, last layer], each >= 1 or -1 (every neighbour)";
        for (int64_t f : v) {
          if (f == 0 || f < -1 || f > 1000000) return "two fan-outs [first layer, last layer], each >= 1 or -1 (every neighbour)";
        }
        return "";
      }))
      .get("lr", t.lr, in_range(1e-8, 10.0))
      .get("weight_decay", t.weight_decay, in_range(0.0, 1.0))
      .get("setting", t.setting, one_of({"task", "class"}))
      .get("class_balanced", t.class_balanced);
  t.fanout = {fanout[0], fanout[1]};

  auto& f = c.run.framework;
  const auto fw = root.child("framework");
  fw.get("name", f.name, one_of({"finetune", "joint", "ergnn", "ewc", "mas", "twp", "gem", "lwf"}));
  fw.child("ergnn")
      .get("budget", f.ergnn_budget, in_range<int64_t>(1, 1000000))
      .get("sampler", f.ergnn_sampler.sampler, one_of({"cm", "mf", "random"}))
      .get("radius", f.ergnn_sampler.radius, in_range(0.0, 10.0));
  fw.child("ewc").get("strength", f.ewc_strength, in_range(0.0, 1e12));
  fw.child("mas").get("strength", f.mas_strength, in_range(0.0, 1e12));
  fw.child("twp")
      .get("lambda_l", f.twp_lambda_l, in_range(0.0, 1e12))
      .get("lambda_t", f.twp_lambda_t, in_range(0.0, 1e12));
  fw.child("gem")
      .get("margin", f.gem_margin, in_range(0.0, 100.0))
      .get("memories", f.gem_memories, in_range<int64_t>(1, 1000000));
  fw.child("lwf")
      .get("lambda", f.lwf_lambda, in_range(0.0, 1e6))
      .get("temperature", f.lwf_temperature, in_range(0.01, 100.0));

  auto& s = c.run.ssrm;
  root.child("ssrm")
      .get("weight", s.weight, in_range(0.0, 1e6))
      .get("distance", s.distance, one_of({"mmd", "cmd"}))
      .get("nodes_per_task", s.nodes_per_task, in_range<int64_t>(1, 1000000))
      .get("target", s.target, one_of({"recomputed", "stored"}));

  root.child("eval").get("results", c.eval_results, core::Check<std::string>([](const std::string& v) -> std::string {
    return v.empty() ? "a path to a run's results.h5" : "";
  }));

  const auto sw = root.child("sweep");
  sw.get("frameworks", c.sweep.frameworks, core::Check<std::vector<std::string>>([](const std::vector<std::string>& v) -> std::string {
       for (const auto& n : v) {
         if (n != "finetune" && n != "joint" && n != "ergnn" && n != "ewc" && n != "mas" && n != "twp" && n != "gem" && n != "lwf") {
           return "a list of finetune, joint, ergnn, ewc, mas, twp, gem, lwf";
         }
       }
       return v.empty() ? "at least one framework" : "";
     }))
      .get("ssrm_weights", c.sweep.ssrm_weights, core::Check<std::vector<double>>([](const std::vector<double>& v) -> std::string {
        for (double w : v) {
          if (!(w >= 0 && w <= 1e6)) return "a list of weights in [0, 1e6]";
        }
        return v.empty() ? "at least one weight (0 = without SSRM)" : "";
      }))
      .get("seeds", c.sweep.seeds, core::Check<std::vector<uint64_t>>([](const std::vector<uint64_t>& v) -> std::string {
        return v.empty() ? "at least one seed" : "";
      }));

  root.finish();
  c.run.seed = c.seed;
  c.resolved = root.resolved();
  return c;
}

}  // namespace mlsys::gil
