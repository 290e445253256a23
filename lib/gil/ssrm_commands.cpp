// ssrm-incremental subcommands: load the config and the graph, run the incremental
// sequence(s), write the HDF5 artifacts with the one artifact header, print the tables.
#include "gil/ssrm_commands.hpp"

#include <algorithm>
#include <map>

#include "core/artifact.hpp"
#include "core/atomic_file.hpp"
#include "core/cli.hpp"
#include "core/device_spec.hpp"
#include "core/error.hpp"
#include "core/h5.hpp"
#include "core/log.hpp"
#include "core/report.hpp"
#include "core/signals.hpp"
#include "core/timer.hpp"
#include "gil/incremental.hpp"
#include "gil/ssrm_config.hpp"
#include "graph/attributed_graph.hpp"
#include "graph/evolving_graph.hpp"
#include "graph/incremental_tasks.hpp"

namespace mlsys::gil {
namespace fs = std::filesystem;
using core::Json;

namespace {

SsrmIncrementalConfig load(const core::CommonOptions& opts) {
  if (core::parse_device_spec(opts.device).cuda) {
    throw core::UsageError("--device " + opts.device + ": ssrm-incremental trains on the CPU only (use --device cpu)");
  }
  return read_ssrm_config(core::load_config(opts));
}

struct Data {
  graph::AttributedGraph g;
  graph::IncrementalTasks tasks;
};

Data load_data(const SsrmIncrementalConfig& c) {
  Data d;
  d.g = c.data.path.empty() ? graph::generate_evolving_graph(c.generate, c.generate_seed)
                            : graph::load_attributed_graph(c.data.path);
  d.tasks = graph::make_incremental_tasks(d.g, c.data.classes_per_task, c.data.split, c.data.split_seed);
  if (d.tasks.num_tasks < 1) throw core::ConfigError(d.g.source + ": no task can be formed");
  log::info("{}: {} nodes, {} edges, {} classes, {} tasks", d.g.source, d.g.num_nodes, d.g.num_edges(),
                  d.g.num_classes, d.tasks.num_tasks);
  return d;
}

std::string pct(double v) { return core::fixed(v, 2); }

// The accuracy matrix as a table: one row per learned task, one column per task.
std::string matrix_table(const AccuracyMatrix& m) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head = {"after task"};
  for (int64_t j = 0; j < m.tasks; ++j) head.push_back("task " + std::to_string(j));
  rows.push_back(head);
  for (int64_t t = 0; t < m.tasks; ++t) {
    std::vector<std::string> row = {std::to_string(t)};
    for (int64_t j = 0; j < m.tasks; ++j) row.push_back(j <= t ? pct(m.at(t, j)) : "");
    rows.push_back(row);
  }
  return core::format_table(rows);
}

std::string per_task_table(const IncrementalResult& r) {
  std::vector<std::vector<std::string>> rows = {
      {"task", "shift gap (pp)", "shift MMD", "SSRM term", "stored nodes", "final loss"}};
  for (size_t i = 0; i < r.shift_gap.size(); ++i) {
    rows.push_back({std::to_string(i), pct(r.shift_gap[i]), core::fixed(r.shift_mmd[i], 5), core::fixed(r.ssrm_term[i], 5),
                    std::to_string(r.stored_nodes[i]), core::fixed(r.train_loss[i], 4)});
  }
  return core::format_table(rows);
}

Json result_json(const IncrementalResult& r) {
  std::vector<std::vector<double>> matrix;
  for (int64_t t = 0; t < r.acc.tasks; ++t) {
    matrix.emplace_back(r.acc.acc.begin() + t * r.acc.tasks, r.acc.acc.begin() + (t + 1) * r.acc.tasks);
  }
  return Json{{"acc_matrix", matrix},     {"ap", r.ap},
              {"af", r.af},               {"shift_gap", r.shift_gap},
              {"shift_mmd", r.shift_mmd}, {"ssrm_term", r.ssrm_term},
              {"stored_nodes", r.stored_nodes}, {"train_loss", r.train_loss},
              {"seconds", r.seconds}};
}

void write_result(core::H5Writer& w, const IncrementalResult& r) {
  const auto T = static_cast<uint64_t>(r.acc.tasks);
  w.write("/metrics/acc_matrix", std::span<const double>(r.acc.acc), {T, T});
  const std::vector<double> ap = {r.ap}, af = {r.af};
  w.write("/metrics/ap", std::span<const double>(ap));
  w.write("/metrics/af", std::span<const double>(af));
  w.write("/metrics/shift_gap", std::span<const double>(r.shift_gap));
  w.write("/metrics/shift_mmd", std::span<const double>(r.shift_mmd));
  w.write("/metrics/ssrm_term", std::span<const double>(r.ssrm_term));
  w.write("/metrics/train_loss", std::span<const double>(r.train_loss));
  w.write("/metrics/stored_nodes", std::span<const int64_t>(r.stored_nodes));
  w.set_attr("/metrics/acc_matrix", "about",
             std::string("acc_matrix[t][j]: class-balanced test accuracy (percent) on task j after learning task t; "
                         "ap = mean of the last row, af = mean_{j<T-1}(acc[T-1][j] - acc[j][j]) (negative = forgetting)"));
  for (const auto& p : r.params) {
    std::vector<uint64_t> shape(p.shape.begin(), p.shape.end());
    w.write("/params/" + p.name, std::span<const float>(p.data), shape);
  }
}

std::string run_label(const IncrementalConfig& c) {
  return c.framework.name + (c.ssrm.weight > 0 ? " + SSRM (" + c.ssrm.distance + ", weight " + core::fixed(c.ssrm.weight, 3) + ")" : "");
}

}  // namespace

int ssrm_generate(const core::CommonOptions& opts) {
  const SsrmIncrementalConfig c = load(opts);
  core::Timer timer;
  const graph::AttributedGraph g = graph::generate_evolving_graph(c.generate, c.generate_seed);
  const graph::IncrementalTasks tasks = graph::make_incremental_tasks(g, c.data.classes_per_task, c.data.split, c.data.split_seed);
  const std::vector<double> later = graph::later_neighbour_share(g, tasks);
  const double homophily = graph::edge_homophily(g);
  std::vector<int64_t> nodes, edges;
  for (int64_t t = 0; t < tasks.num_tasks; ++t) {
    const graph::Subgraph s = graph::task_graph(g, tasks, t);
    nodes.push_back(s.graph.num_nodes);
    edges.push_back(s.graph.num_edges());
  }
  Json meta = core::artifact_header(core::artifact_info(opts, c.resolved));
  meta.update({{"nodes", g.num_nodes}, {"edges", g.num_edges()}, {"classes", g.num_classes},
               {"feature_dim", g.feature_dim}, {"tasks", tasks.num_tasks}, {"shift", c.generate.shift},
               {"edge_homophily", homophily}, {"task_graph_nodes", nodes}, {"task_graph_edges", edges},
               {"later_neighbour_share", later}});
  core::throw_if_stop_requested();
  // One set: a reader never finds new edges beside old labels.
  core::ArtifactSet set(opts.out);
  const fs::path labels = set.stage("labels.csv");
  (void)set.stage("edges.csv");
  (void)set.stage("features.npy");
  graph::write_attributed_graph(labels.parent_path(), g);  // the staged names, in the staging folder
  core::write_file_atomic(set.stage("meta.json"), meta.dump(2) + "\n");
  set.commit();
  meta["seconds"] = timer.seconds();
  meta["out"] = opts.out;
  std::vector<std::vector<std::string>> rows = {{"task", "classes", "nodes in G_t", "edges in G_t", "later-neighbour share"}};
  for (int64_t t = 0; t < tasks.num_tasks; ++t) {
    const auto& cl = tasks.classes[static_cast<size_t>(t)];
    rows.push_back({std::to_string(t), std::to_string(cl.front()) + "-" + std::to_string(cl.back()),
                    std::to_string(nodes[static_cast<size_t>(t)]), std::to_string(edges[static_cast<size_t>(t)]),
                    core::fixed(later[static_cast<size_t>(t)], 3)});
  }
  std::string text = "wrote " + opts.out + ": evolving graph, shift lambda_x = " + core::fixed(c.generate.shift, 2) +
                     " (seed " + std::to_string(c.generate_seed) + "), edge homophily " + core::fixed(homophily, 3) + "\n";
  text += core::format_table(rows);
  text += "later-neighbour share: of task i's nodes' neighbours in the final graph, the share from later tasks\n";
  core::emit_result(opts, meta, text);
  return 0;
}

int ssrm_run(const core::CommonOptions& opts) {
  const SsrmIncrementalConfig c = load(opts);
  const Data d = load_data(c);
  const IncrementalResult r = run_incremental(d.g, d.tasks, c.run);
  core::throw_if_stop_requested();
  const fs::path out = fs::path(opts.out) / "results.h5";
  core::H5Writer w(out, core::artifact_info(opts, c.resolved));
  write_result(w, r);
  w.commit();
  Json summary = result_json(r);
  summary["framework"] = c.run.framework.name;
  summary["ssrm_weight"] = c.run.ssrm.weight;
  summary["out"] = out.string();
  std::string text = run_label(c.run) + ", " + c.run.model.name + ", " + c.run.train.setting + "-IL, " +
                     std::to_string(r.acc.tasks) + " tasks (" + core::fixed(r.seconds, 1) + " s)\n";
  text += matrix_table(r.acc);
  text += "AP " + pct(r.ap) + "  AF " + pct(r.af) + "  (percent; AF < 0 is forgetting)\n";
  text += per_task_table(r);
  text += "wrote " + out.string() + "\n";
  core::emit_result(opts, summary, text);
  return 0;
}

int ssrm_eval(const core::CommonOptions& opts) {
  const SsrmIncrementalConfig c = load(opts);
  // The model's shape and setting come from the run that wrote it.
  const core::H5Reader in(c.eval_results);
  const std::string source = in.path().string();
  core::Json run_cfg;
  try {
    run_cfg = core::Json::parse(in.attr_string("/", "config"));
  } catch (const core::Json::exception&) {
    throw core::InputError(source + ": root attribute 'config' is not JSON (not an ssrm-incremental artifact)");
  }
  core::ConfigDoc doc;
  doc.root = run_cfg;
  doc.file = source;
  const SsrmIncrementalConfig rc = read_ssrm_config(doc);
  std::vector<NamedArray> params;
  for (const std::string& name : in.list("/params")) {
    NamedArray a;
    a.name = name;
    for (uint64_t s : in.shape("/params/" + name)) a.shape.push_back(static_cast<int64_t>(s));
    a.data = in.read_f32("/params/" + name);
    params.push_back(std::move(a));
  }
  const Data d = load_data(c);
  const SavedModelEval e = evaluate_saved_model(d.g, d.tasks, rc.run.model, rc.run.train.setting, params, source);
  core::throw_if_stop_requested();
  const fs::path out = fs::path(opts.out) / "eval.h5";
  core::H5Writer w(out, core::artifact_info(opts, c.resolved));
  w.write("/metrics/acc_last_graph", std::span<const double>(e.on_last_graph));
  w.write("/metrics/acc_own_graph", std::span<const double>(e.on_own_graph));
  const std::vector<double> ap = {e.ap};
  w.write("/metrics/ap", std::span<const double>(ap));
  w.commit();
  std::vector<std::vector<std::string>> rows = {{"task", "acc on G_{T-1}", "acc on own G_i", "difference (pp)"}};
  for (size_t i = 0; i < e.on_last_graph.size(); ++i) {
    rows.push_back({std::to_string(i), pct(e.on_last_graph[i]), pct(e.on_own_graph[i]), pct(e.on_own_graph[i] - e.on_last_graph[i])});
  }
  std::string text = "model of " + source + " (" + rc.run.model.name + ", " + rc.run.train.setting + "-IL) on " + d.g.source + "\n";
  text += core::format_table(rows);
  text += "AP on the last graph " + pct(e.ap) + "\nwrote " + out.string() + "\n";
  core::emit_result(opts, Json{{"acc_last_graph", e.on_last_graph}, {"acc_own_graph", e.on_own_graph}, {"ap", e.ap}, {"out", out.string()}}, text);
  return 0;
}

int ssrm_sweep(const core::CommonOptions& opts) {
  const SsrmIncrementalConfig c = load(opts);
  const Data d = load_data(c);
  std::vector<std::string> fw_col;
  std::vector<double> weight_col, ap_col, af_col, gap_col, term_col;
  std::vector<int64_t> seed_col;
  Json runs = Json::array();
  struct Cell {
    std::vector<double> ap, af, gap, term;
  };
  std::map<std::pair<std::string, double>, Cell> cells;
  for (const auto& fw : c.sweep.frameworks) {
    for (double weight : c.sweep.ssrm_weights) {
      for (uint64_t seed : c.sweep.seeds) {
        IncrementalConfig rc = c.run;
        rc.framework.name = fw;
        rc.ssrm.weight = weight;
        rc.seed = seed;
        const IncrementalResult r = run_incremental(d.g, d.tasks, rc);
        const double gap = mean_std(r.shift_gap).mean, term = r.ssrm_term.back();
        log::info("{} seed {}: AP {:.2f} AF {:.2f}", run_label(rc), seed, r.ap, r.af);
        fw_col.push_back(fw);
        weight_col.push_back(weight);
        seed_col.push_back(static_cast<int64_t>(seed));
        ap_col.push_back(r.ap);
        af_col.push_back(r.af);
        gap_col.push_back(gap);
        term_col.push_back(term);
        auto& cell = cells[{fw, weight}];
        cell.ap.push_back(r.ap);
        cell.af.push_back(r.af);
        cell.gap.push_back(gap);
        cell.term.push_back(term);
        runs.push_back({{"framework", fw}, {"ssrm_weight", weight}, {"seed", seed}, {"ap", r.ap}, {"af", r.af},
                        {"shift_gap", gap}, {"ssrm_term", term}});
      }
    }
  }
  core::throw_if_stop_requested();
  const fs::path out = fs::path(opts.out) / "sweep.h5";
  core::H5Writer w(out, core::artifact_info(opts, c.resolved));
  w.write_strings("/runs/framework", fw_col);
  w.write("/runs/ssrm_weight", std::span<const double>(weight_col));
  w.write("/runs/seed", std::span<const int64_t>(seed_col));
  w.write("/runs/ap", std::span<const double>(ap_col));
  w.write("/runs/af", std::span<const double>(af_col));
  w.write("/runs/shift_gap", std::span<const double>(gap_col));
  w.write("/runs/ssrm_term", std::span<const double>(term_col));
  w.commit();
  auto ms = [](const std::vector<double>& v, int p) {
    const MeanStd m = mean_std(v);
    return core::fixed(m.mean, p) + " +- " + core::fixed(m.std, p);
  };
  std::vector<std::vector<std::string>> rows = {{"framework", "SSRM weight", "AP (%)", "AF (pp)", "shift gap (pp)", "SSRM term (last task)"}};
  Json table = Json::array();
  for (const auto& fw : c.sweep.frameworks) {
    for (double weight : c.sweep.ssrm_weights) {
      const Cell& cell = cells[{fw, weight}];
      rows.push_back({fw, weight > 0 ? core::fixed(weight, 3) : "off", ms(cell.ap, 2), ms(cell.af, 2), ms(cell.gap, 2), ms(cell.term, 5)});
      table.push_back({{"framework", fw}, {"ssrm_weight", weight}, {"ap_mean", mean_std(cell.ap).mean}, {"ap_std", mean_std(cell.ap).std},
                       {"af_mean", mean_std(cell.af).mean}, {"af_std", mean_std(cell.af).std},
                       {"shift_gap_mean", mean_std(cell.gap).mean}, {"ssrm_term_mean", mean_std(cell.term).mean}});
    }
  }
  std::string text = d.g.source + ", " + c.run.model.name + ", " + c.run.train.setting + "-IL, " +
                     std::to_string(d.tasks.num_tasks) + " tasks, " + std::to_string(c.sweep.seeds.size()) + " seeds (mean +- std)\n";
  text += core::format_table(rows);
  text += "wrote " + out.string() + "\n";
  core::emit_result(opts, Json{{"table", table}, {"runs", runs}, {"out", out.string()}}, text);
  return 0;
}

}  // namespace mlsys::gil
