// tgnn-train subcommands: load the config and the data, split, train and evaluate the
// temporal model and its baselines on the same negatives, write artifacts atomically,
// print a table (or JSON with --json). No LibTorch here: the model sits behind model.hpp.
#include "tgnn/commands.hpp"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <vector>

#include "core/artifact.hpp"
#include "core/atomic_file.hpp"
#include "core/device_spec.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "core/log.hpp"
#include "core/progress.hpp"
#include "core/report.hpp"
#include "core/signals.hpp"
#include "core/timer.hpp"
#include "core/training_loop.hpp"
#include "graph/block_store.hpp"
#include "graph/generator.hpp"
#include "graph/sampler.hpp"
#include "graph/split.hpp"
#include "tgnn/edgebank.hpp"
#include "tgnn/fit.hpp"
#include "tgnn/link_prediction.hpp"
#include "tgnn/metrics.hpp"
#include "tgnn/model.hpp"
#include "tgnn/tgnn_config.hpp"

namespace mlsys::tgnn {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;
// TGN's fixed evaluation seeds: validation negatives 0, test negatives 2 (one AP/AUC
// negative per event, whatever eval.mrr_negatives is). The q-1 extra MRR negatives of the
// test split come from their own stream, so changing q never changes AP/AUC.
constexpr uint64_t kValNegSeed = 0, kTestNegSeed = 2, kTestMrrNegSeed = 1002;

TgnnConfig load(const core::CommonOptions& opts) {
  if (core::parse_device_spec(opts.device).cuda) {
    throw core::UsageError("--device " + opts.device + ": tgnn-train trains on the CPU only for now (use --device cpu)");
  }
  return read_tgnn_config(core::load_config(opts));
}

struct Dataset {
  graph::EventStream s;
  graph::Oracle oracle;
  std::string desc;
};

Dataset load_data(const TgnnConfig& c) {
  Dataset d;
  if (c.data.path.empty()) {
    graph::SyntheticData g = graph::generate_synthetic(c.generate.synthetic, c.seed);
    d.s = std::move(g.events);
    d.oracle.p_pos = std::move(g.oracle_pos);
    d.oracle.p_neg = std::move(g.oracle_neg_p);
    d.oracle.neg = std::move(g.oracle_neg);
    d.desc = "synthetic '" + c.generate.preset + "' (seed " + std::to_string(c.seed) + ", generated in memory)";
  } else {
    d.s = graph::load_events(c.data.path, c.data.format);
    d.oracle = graph::load_oracle(c.data.path, d.s.size());
    d.desc = d.s.source;
  }
  log::info("{}: {} events, {} nodes, edge features {}, node features {}", d.desc, d.s.size(), d.s.num_nodes, d.s.edge_dim,
            d.s.node_dim);
  return d;
}

// Validation is scored with one negative per event, so its MRR would be MRR@1: left out
// (with_mrr = false) rather than reported next to the test MRR@q.
json to_json(const LinkMetrics& m, bool with_mrr = true) {
  json j = {{"events", m.events}, {"ap", m.ap}, {"auc", m.auc}, {"ap_batch", m.ap_batch}, {"auc_batch", m.auc_batch}};
  if (with_mrr) {
    j["mrr"] = m.mrr;
    j["mrr_negatives"] = m.mrr_negatives;
  }
  return j;
}

// GNNFlow's block store over the events `idx` (chronological), inserted as one batch with
// eid = event index, both directions: each node's edges in the T-CSR's (time, event) order,
// so the samplers give the T-CSR's samples.
std::unique_ptr<graph::TemporalAdjacency> block_store_of(const graph::EventStream& s, const std::vector<size_t>& idx) {
  std::vector<int64_t> src, dst, eid;
  std::vector<double> ts;
  src.reserve(idx.size()), dst.reserve(idx.size()), eid.reserve(idx.size()), ts.reserve(idx.size());
  for (size_t i : idx) {
    src.push_back(s.src[i]);
    dst.push_back(s.dst[i]);
    ts.push_back(s.t[i]);
    eid.push_back(static_cast<int64_t>(i));
  }
  auto store = std::make_unique<graph::TimeIndexedBlockStore>();
  store->insert(src, dst, ts, eid);
  return store;
}

// The setting shared by fit/eval/embed: data, split, graphs and fixed negatives.
struct Setup {
  TgnnConfig c;
  Dataset d;
  graph::Split sp;
  // The graphs the samplers read (data.graph): T-CSRs behind the interface, or block stores.
  std::unique_ptr<graph::TemporalGraph> tcsr_train, tcsr_full;
  std::unique_ptr<graph::TemporalAdjacency> g_train, g_full;
  std::vector<int64_t> val_neg, test_neg;
  size_t q = 1;
};

Setup make_setup(const core::CommonOptions& opts) {
  Setup st;
  st.c = load(opts);
  // where the split goes, checked before any work (relative names are under --out)
  const fs::path negatives_out =
      st.c.eval.negatives_out.empty() ? fs::path() : core::export_path(opts, "eval.negatives_out", st.c.eval.negatives_out);
  st.d = load_data(st.c);
  st.sp = graph::chronological_split(st.d.s, st.c.data.split);
  // Training sees only training events (without the hidden nodes); evaluation the full
  // stream, each query still strictly before its own time.
  if (st.c.data.graph == "block_store") {
    st.g_train = block_store_of(st.d.s, st.sp.train);
    std::vector<size_t> every(st.d.s.size());
    for (size_t i = 0; i < every.size(); ++i) every[i] = i;
    st.g_full = block_store_of(st.d.s, every);
  } else {
    st.tcsr_train = std::make_unique<graph::TemporalGraph>(st.d.s, &st.sp.train);
    st.tcsr_full = std::make_unique<graph::TemporalGraph>(st.d.s);
    st.g_train = std::make_unique<graph::TcsrAdjacency>(*st.tcsr_train);
    st.g_full = std::make_unique<graph::TcsrAdjacency>(*st.tcsr_full);
  }
  std::vector<size_t> all(st.d.s.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const auto pool = destination_pool(st.d.s, all, st.c.train.negatives);
  st.q = static_cast<size_t>(st.c.eval.mrr_negatives);
  st.val_neg = sample_negatives(pool, st.sp.val.size(), 1, kValNegSeed);
  st.test_neg = eval_negatives(pool, st.sp.test.size(), st.q, kTestNegSeed, kTestMrrNegSeed);
  if (!negatives_out.empty()) {
    write_split_negatives(negatives_out, st.d.s, st.sp, st.val_neg, st.test_neg, st.q);
  }
  log::info("split: train {} (of {}; {} hidden nodes), val {}, test {} events; val_time {:.1f}, test_time {:.1f}",
            st.sp.train.size(), st.sp.train_all.size(),
            std::count(st.sp.hidden.begin(), st.sp.hidden.end(), uint8_t{1}), st.sp.val.size(), st.sp.test.size(),
            st.sp.val_time, st.sp.test_time);
  return st;
}

// Replays train (memory only), then val and test with the fixed negatives: TGL's final
// evaluation (memory carried train -> val -> test, updated by the positive test events).
Eval replay_eval(TemporalModel& m, const Setup& st, StageTimes& times) {
  const auto bs = static_cast<size_t>(st.c.eval.batch_size);
  m.reset_memory();
  m.run(st.sp.train, {}, 0, *st.g_train, false, bs, times);
  core::throw_if_stop_requested();  // between passes too (each also polls between batches)
  Eval e;
  const PassOutput v = m.run(st.sp.val, st.val_neg, 1, *st.g_full, false, bs, times);
  e.val = score_split(st.d.s, st.sp, st.sp.val, v.pos, v.neg, 1, bs);
  core::throw_if_stop_requested();
  const PassOutput t = m.run(st.sp.test, st.test_neg, static_cast<int64_t>(st.q), *st.g_full, false, bs, times);
  e.test = score_split(st.d.s, st.sp, st.sp.test, t.pos, t.neg, st.q, bs);
  return e;
}

// Trains `m` on the shared loop (tgnn/fit.hpp), then evaluates the best parameters.
struct Fitted {
  FitResult fit;
  Eval eval;
};

Fitted fit_and_evaluate(TemporalModel& m, const Setup& st, const FitRun& run, const core::CommonOptions& opts) {
  Fitted f;
  f.fit = fit_model(m, {st.c, st.d.s, st.sp, *st.g_train, *st.g_full, st.val_neg}, run, opts);
  StageTimes et;
  f.eval = replay_eval(m, st, et);
  return f;
}

std::vector<std::string> row(const std::string& name, const LinkMetrics& m, bool with_mrr = true) {
  return {name,
          std::to_string(m.events),
          core::fixed(m.ap_batch, 4),
          core::fixed(m.auc_batch, 4),
          core::fixed(m.ap, 4),
          core::fixed(m.auc, 4),
          with_mrr && m.mrr_negatives ? core::fixed(m.mrr, 4) : "-"};
}

// Printed under any table with an oracle row or column.
constexpr const char* kOracleNote =
    "oracle: the generator's true probabilities against the generator's own negatives (one uniform item per event), "
    "not the evaluation negatives of the model rows\n";

std::string checkpoint_path(const TgnnConfig& c, const core::CommonOptions& opts) {
  return c.eval.checkpoint.empty() ? (fs::path(opts.out) / "model.h5").string() : c.eval.checkpoint;
}

// The model of the config with the parameters of a model.h5 written by fit.
std::unique_ptr<TemporalModel> load_trained(const Setup& st, const std::string& file) {
  auto m = std::make_unique<TemporalModel>(st.c.model, st.d.s, st.c.seed);
  m->load(core::H5Reader(file));
  return m;
}

json times_json(const StageTimes& t) {
  return {{"sample_s", t.sample}, {"fetch_s", t.fetch}, {"train_s", t.train}, {"update_s", t.update}};
}

}  // namespace

int tgnn_generate(const core::CommonOptions& opts) {
  const TgnnConfig c = load(opts);
  core::Timer t;
  const graph::SyntheticData g = graph::generate_synthetic(c.generate.synthetic, c.seed);
  const graph::EventStream& s = g.events;
  const graph::Split sp = graph::chronological_split(s, c.data.split);
  // Surprise index: share of test pairs never seen in training.
  EdgeBank bank;
  for (size_t e : sp.train_all) bank.add(s.src[e], s.dst[e]);
  double unseen = 0;
  for (size_t e : sp.test) unseen += 1.0 - bank.score(s.src[e], s.dst[e]);
  const double surprise = unseen / static_cast<double>(sp.test.size());
  graph::Oracle truth;
  truth.p_pos = g.oracle_pos;
  truth.p_neg = g.oracle_neg_p;
  double oracle_batch = 0;
  const double oracle = oracle_ap(truth, sp, static_cast<size_t>(c.eval.batch_size), &oracle_batch);
  const bool tgl = std::find(c.generate.formats.begin(), c.generate.formats.end(), "tgl") != c.generate.formats.end();
  const bool jodie = std::find(c.generate.formats.begin(), c.generate.formats.end(), "jodie") != c.generate.formats.end();
  json meta = core::artifact_header(core::artifact_info(opts, c.resolved));
  meta.update({{"seed", c.seed}, {"preset", c.generate.preset}, {"events", s.size()},
               {"users", s.num_sources}, {"items", s.num_nodes - s.num_sources}, {"edge_dim", s.edge_dim},
               {"surprise_index", surprise}, {"oracle_test_ap", oracle}, {"oracle_test_ap_batch", oracle_batch}});
  core::throw_if_stop_requested();
  graph::write_synthetic(opts.out, g, tgl, jodie, meta.dump(2));
  meta["seconds"] = t.seconds();
  meta["out"] = opts.out;
  std::string text = "wrote " + opts.out + ": synthetic '" + c.generate.preset + "' stream (seed " + std::to_string(c.seed) + ")\n";
  text += core::format_table({{"events", "users", "items", "edge dim", "surprise", "oracle AP (test, batch)", "oracle AP (test, global)"},
                 {std::to_string(s.size()), std::to_string(s.num_sources), std::to_string(s.num_nodes - s.num_sources),
                  std::to_string(s.edge_dim), core::fixed(surprise, 4), core::fixed(oracle_batch, 4), core::fixed(oracle, 4)}});
  text += kOracleNote;
  core::emit_result(opts, meta, text);
  return 0;
}

int tgnn_fit(const core::CommonOptions& opts) {
  Setup st = make_setup(opts);
  const TgnnConfig& c = st.c;
  TemporalModel model(c.model, st.d.s, c.seed);
  log::info("{} ({} updater, {} embedding): {} parameters", c.model.name, c.model.updater, c.model.embedding,
            model.num_parameters());
  // One checkpoint per model trained: the baseline's run continues from its own.
  const fs::path out(opts.out);
  const std::string data_key = stream_key(st.d.s);  // one pass over the stream for both runs
  const FitRun main_run{c.model.name, out / "checkpoint.h5", opts.flag("resume"), data_key};
  const FitRun zeroed_run{c.model.name + "-memory-zeroed", out / "checkpoint-memory-zeroed.h5",
                          opts.flag("resume") && fs::exists(out / "checkpoint-memory-zeroed.h5"), data_key};
  const bool with_zeroed = c.baselines.memory_zeroed && c.model.use_memory;
  if (!opts.flag("resume") && !opts.flag("force") && with_zeroed) {
    core::refuse_unfinished_run(zeroed_run.checkpoint, "fit --resume");
  }
  const Fitted fitted = fit_and_evaluate(model, st, main_run, opts);
  const FitResult& main = fitted.fit;
  json summary = core::artifact_header(core::artifact_info(opts, c.resolved));
  summary["data"] = st.d.desc;
  summary["model"] = {{"name", c.model.name},
                      {"parameters", main.parameters},
                      {"best_epoch", main.best_epoch},
                      {"epochs", main.epochs},
                      {"epoch_seconds", main.epoch_seconds},
                      {"events_per_s", main.events_per_s},
                      {"epoch_cpu_seconds", main.epoch_cpu_seconds},
                      {"events_per_cpu_s", main.events_per_cpu_s},
                      {"train_events", st.sp.train.size()},
                      {"resumed_at_step", main.resumed_at_step},
                      {"stage_times", times_json(main.times)},
                      {"val", to_json(fitted.eval.val.all, false)},
                      {"test", to_json(fitted.eval.test.all)},
                      {"test_inductive", to_json(fitted.eval.test.inductive)}};
  const std::string hdr_q = "MRR@" + std::to_string(st.q);
  std::vector<std::vector<std::string>> rows{{"test", "events", "AP(batch)", "AUC(batch)", "AP", "AUC", hdr_q}};
  rows.push_back(row(c.model.name, fitted.eval.test.all));
  rows.push_back(row(c.model.name + " inductive", fitted.eval.test.inductive));
  if (with_zeroed) {
    ModelConfig mz = c.model;
    mz.use_memory = false;
    TemporalModel zeroed(mz, st.d.s, c.seed);
    const Fitted zf = fit_and_evaluate(zeroed, st, zeroed_run, opts);
    const FitResult& z = zf.fit;
    summary["memory_zeroed"] = {{"best_epoch", z.best_epoch}, {"epoch_seconds", z.epoch_seconds},
                                {"epoch_cpu_seconds", z.epoch_cpu_seconds},
                                {"test", to_json(zf.eval.test.all)}, {"test_inductive", to_json(zf.eval.test.inductive)}};
    rows.push_back(row(c.model.name + " memory zeroed", zf.eval.test.all));
  }
  if (c.baselines.edgebank) {
    const Eval eb = edgebank_eval(st.d.s, st.sp, st.val_neg, st.test_neg, st.q, static_cast<size_t>(c.eval.batch_size));
    summary["edgebank"] = {{"test", to_json(eb.test.all)}, {"test_inductive", to_json(eb.test.inductive)}};
    rows.push_back(row("edgebank", eb.test.all));
  }
  double oracle_batch = 0;
  const double oracle = oracle_ap(st.d.oracle, st.sp, static_cast<size_t>(c.eval.batch_size), &oracle_batch);
  if (oracle >= 0) {
    summary["oracle"] = {{"test_ap", oracle}, {"test_ap_batch", oracle_batch},
                         {"note", "true generator probabilities against the generator's own uniform item negatives"}};
    rows.push_back({"oracle (generator)", std::to_string(st.sp.test.size()), core::fixed(oracle_batch, 4), "-", core::fixed(oracle, 4), "-", "-"});
  }
  core::throw_if_stop_requested();
  // Artifacts last and as one set (core::ArtifactSet): a failure above leaves nothing
  // half-written, and a new model.h5 never sits beside an old metrics.json. Always
  // OUT/model.h5: eval.checkpoint is what eval and embed read, never where fit writes.
  core::ArtifactSet artifacts(opts.out);
  {
    core::H5Writer w(artifacts.stage("model.h5"), core::artifact_info(opts, c.resolved));
    model.save(w);
    w.set_attr("/", "model", c.model.name);
    w.set_attr("/", "best_epoch", main.best_epoch);
    w.set_attr("/", "metrics", summary.dump());
    w.commit();
  }
  core::write_file_atomic(artifacts.stage("metrics.json"), summary.dump(2) + "\n");
  artifacts.commit();
  const fs::path ckpt = artifacts.destination("model.h5");
  remove_fit_checkpoint(main_run);  // the run is complete: nothing left to resume
  remove_fit_checkpoint(zeroed_run);
  std::string text = c.model.name + " on " + st.d.desc + ": best epoch " + std::to_string(main.best_epoch) + ", " +
                     core::fixed(main.epoch_seconds, 1) + " s/epoch, " + core::fixed(main.events_per_s, 1) + " events/s (sample " +
                     core::fixed(main.times.sample, 1) + " s, fetch " + core::fixed(main.times.fetch, 1) + " s, train " + core::fixed(main.times.train, 1) +
                     " s, update " + core::fixed(main.times.update, 1) + " s in total)\n";
  text += core::format_table(rows);
  if (oracle >= 0) text += kOracleNote;
  text += "wrote " + ckpt.string() + " and " + (fs::path(opts.out) / "metrics.json").string() + "\n";
  core::emit_result(opts, summary, text);
  return 0;
}

int tgnn_eval(const core::CommonOptions& opts) {
  Setup st = make_setup(opts);
  const TgnnConfig& c = st.c;
  const std::string ckpt = checkpoint_path(c, opts);
  auto model_ptr = load_trained(st, ckpt);
  TemporalModel& model = *model_ptr;
  StageTimes times;
  core::Timer t;
  const Eval e = replay_eval(model, st, times);
  json summary = core::artifact_header(core::artifact_info(opts, c.resolved));
  summary.update({{"checkpoint", ckpt}, {"val", to_json(e.val.all, false)}, {"test", to_json(e.test.all)}, {"test_inductive", to_json(e.test.inductive)},
                  {"seconds", t.seconds()}, {"stage_times", times_json(times)}});
  std::vector<std::vector<std::string>> rows{{"split", "events", "AP(batch)", "AUC(batch)", "AP", "AUC", "MRR"}};
  rows.push_back(row("val", e.val.all, false));
  rows.push_back(row("test", e.test.all));
  rows.push_back(row("test inductive", e.test.inductive));
  if (c.baselines.edgebank) {
    const Eval eb = edgebank_eval(st.d.s, st.sp, st.val_neg, st.test_neg, st.q, static_cast<size_t>(c.eval.batch_size));
    summary["edgebank"] = {{"test", to_json(eb.test.all)}};
    rows.push_back(row("test edgebank", eb.test.all));
  }
  core::write_file_atomic(fs::path(opts.out) / "eval.json", summary.dump(2) + "\n");
  core::emit_result(opts, summary, c.model.name + " from " + ckpt + " (MRR with " + std::to_string(st.q) + " negatives)\n" + core::format_table(rows));
  return 0;
}

int tgnn_embed(const core::CommonOptions& opts) {
  Setup st = make_setup(opts);
  const TgnnConfig& c = st.c;
  const std::string ckpt = checkpoint_path(c, opts);
  auto model_ptr = load_trained(st, ckpt);
  TemporalModel& model = *model_ptr;
  std::vector<size_t> all(st.d.s.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  StageTimes times;
  model.reset_memory();
  model.run(all, {}, 0, *st.g_full, false, static_cast<size_t>(c.eval.batch_size), times);
  const double t_end = st.d.s.t.back() + 1.0;
  const NodeStates ns = model.node_states(*st.g_full, t_end);
  core::throw_if_stop_requested();
  const fs::path out = fs::path(opts.out) / "embeddings.h5";
  core::H5Writer w(out, core::artifact_info(opts, c.resolved));
  w.write("/memory", ns.memory, {static_cast<uint64_t>(ns.nodes), static_cast<uint64_t>(ns.memory_dim)});
  w.write("/memory_ts", ns.memory_ts);
  w.write("/embeddings", ns.embeddings, {static_cast<uint64_t>(ns.nodes), static_cast<uint64_t>(ns.embed_dim)});
  w.set_attr("/", "time", t_end);
  w.set_attr("/", "checkpoint", ckpt);
  w.commit();
  json summary = {{"path", out.string()}, {"nodes", ns.nodes}, {"memory_dim", ns.memory_dim}, {"embed_dim", ns.embed_dim},
                  {"time", t_end}};
  core::emit_result(opts, summary,
       "wrote " + out.string() + ": /memory [" + std::to_string(ns.nodes) + " x " + std::to_string(ns.memory_dim) +
           "], /embeddings [" + std::to_string(ns.nodes) + " x " + std::to_string(ns.embed_dim) + "] at t = " + core::fixed(t_end, 1) + "\n");
  return 0;
}

}  // namespace mlsys::tgnn
