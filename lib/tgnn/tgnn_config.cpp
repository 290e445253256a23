// Reads TgnnConfig from the merged JSON document (defaults + file + --set).
#include "tgnn/tgnn_config.hpp"

#include "core/artifact.hpp"

namespace mlsys::tgnn {

TgnnConfig read_tgnn_config(const core::ConfigDoc& doc) {
  using core::at_least;
  using core::in_range;
  using core::one_of;
  using core::positive;
  TgnnConfig c;
  core::ConfigNode root(doc);
  root.get("seed", c.seed);

  const auto data = root.child("data");
  data.get("path", c.data.path)
      .get("format", c.data.format, one_of({"auto", "tgl", "jodie"}))
      .get("graph", c.data.graph, one_of({"tcsr", "block_store"}));
  const auto split = data.child("split");
  split.get("method", c.data.split.method, one_of({"time", "ext_roll"}))
      .get("val_fraction", c.data.split.val_fraction, in_range(0.01, 0.5))
      .get("test_fraction", c.data.split.test_fraction, in_range(0.01, 0.5))
      .get("hidden_fraction", c.data.split.hidden_fraction, in_range(0.0, 0.9))
      .get("seed", c.data.split.seed);

  const auto gen = root.child("generate");
  gen.get("preset", c.generate.preset, one_of({"tiny", "small", "wiki", "reddit"}));
  auto& s = c.generate.synthetic;
  s = graph::synthetic_preset(c.generate.preset);
  gen.get("users", s.users, at_least<int64_t>(2))
      .get("items", s.items, at_least<int64_t>(2))
      .get("events", s.events, at_least<int64_t>(100))
      .get("span_days", s.span_days, positive<double>())
      .get("edge_dim", s.edge_dim, in_range<int64_t>(0, 4096))
      .get("latent_dim", s.latent_dim, in_range<int64_t>(1, 256))
      .get("clusters", s.clusters, at_least<int64_t>(1))
      .get("repeat_prob", s.repeat_prob, in_range(0.0, 1.0))
      .get("beta", s.beta, in_range(0.0, 100.0))
      .get("zipf", s.zipf, in_range(0.0, 5.0))
      .get("activity_sigma", s.activity_sigma, in_range(0.0, 5.0))
      .get("burst_prob", s.burst_prob, in_range(0.0, 1.0))
      .get("burst_window_s", s.burst_window_s, positive<double>())
      .get("drift_days", s.drift_days, positive<double>())
      .get("drift_sigma", s.drift_sigma, in_range(0.0, 10.0))
      .get("switch_days", s.switch_days, positive<double>())
      .get("feature_noise", s.feature_noise, in_range(0.0, 10.0));
  gen.get("formats", c.generate.formats, core::Check<std::vector<std::string>>([](const std::vector<std::string>& v) -> std::string {
    for (const auto& f : v) {
      if (f != "tgl" && f != "jodie") return "a list of \"tgl\" and \"jodie\"";
    }
    return v.empty() ? "at least one format" : "";
  }));

  auto& m = c.model;
  const auto model = root.child("model");
  model.get("name", m.name, one_of({"tgn", "jodie", "apan", "dyrep"}))
      .get("updater", m.updater, one_of({"", "gru", "rnn", "attention"}))
      .get("embedding", m.embedding, one_of({"", "attention", "identity", "time"}))
      .get("deliver_to", m.deliver_to, one_of({"", "self", "neighbors"}))
      .get("message", m.message, one_of({"", "memory", "attention"}))
      .get("mailbox_size", m.mailbox_size, in_range<int64_t>(1, 1000))
      .get("use_memory", m.use_memory)
      .get("memory_time", m.memory_time, one_of({"query", "message"}))
      .get("precision", m.precision, one_of({"fp32", "bf16"}))
      .get("memory_dim", m.memory_dim, in_range<int64_t>(1, 4096))
      .get("time_dim", m.time_dim, in_range<int64_t>(2, 4096))
      .get("embed_dim", m.embed_dim, in_range<int64_t>(1, 4096))
      .get("heads", m.heads, in_range<int64_t>(1, 64))
      .get("neighbors", m.neighbors, in_range<int64_t>(1, 1000))
      .get("sampler", m.sampler, one_of({"recent", "uniform"}))
      .get("dropout", m.dropout, in_range(0.0, 0.9))
      .get("att_dropout", m.att_dropout, in_range(0.0, 0.9))
      .get("lr", m.lr, in_range(1e-7, 1.0));
  m.resolve();
  // Temporal attention (TGN's embedding, DyRep's message) splits embed_dim over the heads.
  if ((m.embedding == "attention" || m.message == "attention") && m.embed_dim % m.heads != 0) {
    model.fail("embed_dim", "a multiple of model.heads (" + std::to_string(m.heads) + ")", std::to_string(m.embed_dim));
  }
  if (m.updater == "attention" && m.memory_dim % m.heads != 0) {
    model.fail("memory_dim", "a multiple of model.heads (" + std::to_string(m.heads) + ") for the attention updater",
               std::to_string(m.memory_dim));
  }

  const auto train = root.child("train");
  train.get("epochs", c.train.epochs, in_range<int64_t>(1, 10000))
      .get("batch_size", c.train.batch_size, in_range<int64_t>(1, 1000000))
      .get("patience", c.train.patience, in_range<int64_t>(1, 10000))
      .get("negatives", c.train.negatives, one_of({"destinations", "nodes"}))
      .get("checkpoint_every", c.train.checkpoint_every, in_range<int64_t>(0, int64_t{1} << 40));
  const auto ev = root.child("eval");
  ev.get("batch_size", c.eval.batch_size, in_range<int64_t>(1, 1000000))
      .get("mrr_negatives", c.eval.mrr_negatives, in_range<int64_t>(1, 10000))
      .get("checkpoint", c.eval.checkpoint)
      .get("negatives_out", c.eval.negatives_out, core::Check<std::string>([](const std::string& v) -> std::string {
        // "" = off; an absolute file path, or a file name under --out (core::export_path)
        const std::string p = v.empty() ? "" : core::export_name_problem(v);
        return p.empty() ? p : "\"\" (off), " + p;
      }));
  const auto base = root.child("baselines");
  base.get("edgebank", c.baselines.edgebank).get("memory_zeroed", c.baselines.memory_zeroed);

  root.finish();
  c.resolved = root.resolved();
  // the values the model name filled in ("" in the file), so artifacts record what ran
  auto& rm = c.resolved["model"];
  rm["updater"] = m.updater;
  rm["embedding"] = m.embedding;
  rm["deliver_to"] = m.deliver_to;
  rm["message"] = m.message;
  return c;
}

}  // namespace mlsys::tgnn
