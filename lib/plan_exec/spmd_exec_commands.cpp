// spmd-plan profile and run.
#include "plan_exec/spmd_exec_commands.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/artifact.hpp"
#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/report.hpp"
#include "plan/spmd_commands.hpp"
#include "plan/spmd_config.hpp"
#include "plan/local_ranks.hpp"
#include "plan_exec/spmd_executor.hpp"
#include "tensor/distributed.hpp"

namespace mlsys::plan {

namespace {

using core::Json;
namespace fs = std::filesystem;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// This process as a rank: under a launcher (WORLD_SIZE set) the one it names; else rank 0
// of `world` local processes, the others started here.
struct RankSetup {
  tensor::DistEnv env;
  std::unique_ptr<LocalRanks> children;
};

RankSetup join_ranks(const core::CommonOptions& opts, int world) {
  RankSetup s;
  if (std::getenv("WORLD_SIZE") != nullptr) {
    s.env = tensor::dist_env_from_environment();
    if (s.env.world_size != world) {
      throw core::UsageError("environment variable WORLD_SIZE: expected " + std::to_string(world) +
                             " (one process per device of the plan), found " + std::to_string(s.env.world_size));
    }
    return s;
  }
  s.env.world_size = world;
  s.env.rank = 0;
  if (world > 1) {
    s.env.master_port = free_loopback_port();
    s.children = std::make_unique<LocalRanks>(opts, world, s.env.master_port);
  }
  return s;
}

}  // namespace

int spmd_run(const core::CommonOptions& opts) {
  const SpmdConfig c = read_spmd_config(core::load_config(opts));
  SpmdGraph g;
  Json programs;
  double predicted_ms = 0, predicted_compute_ms = 0, predicted_comm_ms = 0;
  std::vector<double> ratios;
  std::string source;
  if (!c.run.plan.empty()) {
    const Json plan = core::read_json_file(c.run.plan);
    source = c.run.plan;
    if (!plan.is_object() || !plan.contains("model") || !plan.contains("programs") || !plan.contains("prediction")) {
      throw core::InputError(c.run.plan + ": expected a plan.json with model, programs and prediction, found " + core::describe_json(plan));
    }
    g = graph_from_json(plan["model"], c.run.plan + ": model");
    programs = plan["programs"];
    if (!programs.is_object() || !programs.contains("ranks") || !programs["ranks"].is_array() || programs["ranks"].empty()) {
      throw core::InputError(c.run.plan + ": programs.ranks: expected a non-empty array, found " +
                             (programs.is_object() && programs.contains("ranks") ? core::describe_json(programs["ranks"]) : "nothing"));
    }
    predicted_ms = plan["prediction"].value("iteration_ms", 0.0);
    predicted_compute_ms = plan["prediction"].value("compute_ms", 0.0);
    predicted_comm_ms = plan["prediction"].value("comm_ms", 0.0);
    ratios = plan.value("ratios", std::vector<double>{});
  } else {
    g = model_of(c);
    const SpmdCluster cluster = cluster_of(c);
    SynthOptions so = c.synth;
    if (!c.run.ratios.empty()) so.fixed_ratios = c.run.ratios;
    if (!so.fixed_ratios.empty() && static_cast<int>(so.fixed_ratios.size()) != cluster.size()) {
      throw core::ConfigError("run.ratios: expected one ratio per device of the cluster (" + std::to_string(cluster.size()) +
                              "), found " + std::to_string(so.fixed_ratios.size()));
    }
    if (cluster.size() > 16) {
      throw core::ConfigError("cluster: expected at most 16 devices for a local run (one process each), found " +
                              std::to_string(cluster.size()));
    }
    const SpmdCostModel m(g, cluster, c.cost);
    const SynthResult r = synthesize(m, so);
    if (!r.found) throw core::RuntimeFailure("run: no program fits the cluster's memory");
    programs = rank_programs(m, r.program, r.ratios);
    predicted_ms = r.prediction.iteration_s * 1e3;
    predicted_compute_ms = r.prediction.compute_s * 1e3;
    predicted_comm_ms = r.prediction.comm_s * 1e3;
    ratios = r.ratios;
    source = "synthesized (" + std::string(c.run.ratios.empty() ? "ratios from the LP" : "run.ratios") + ")";
  }
  const int world = static_cast<int>(programs["ranks"].size());
  RankSetup rs = join_ranks(opts, world);
  tensor::ProcessGroup pg = tensor::ProcessGroup::create(rs.env, c10::Device(c10::kCPU), std::chrono::seconds(c.run.timeout_s));
  SpmdExecOptions eo;
  eo.seed = c.seed;
  eo.float64 = c.run.dtype == "float64";
  eo.lr = c.run.lr;
  eo.rtol = c.run.rtol;
  eo.atol = c.run.atol;
  eo.timed_iterations = c.run.iterations;
  const SpmdRankReport rep = execute_spmd_rank(g, programs, pg, eo);
  const at::Tensor mine = at::tensor(std::vector<double>{rep.loss_error, rep.max_grad_error, rep.max_param_error, rep.ok ? 1.0 : 0.0,
                                                         median(rep.iteration_ms), static_cast<double>(rep.instructions),
                                                         static_cast<double>(rep.collectives),
                                                         static_cast<double>(rep.parameters_checked)},
                                     at::TensorOptions().dtype(at::kDouble));
  const std::vector<at::Tensor> all = pg.all_gather(mine);
  if (rs.children) rs.children->join();
  bool ok = true;
  double measured_ms = 0;
  Json ranks = Json::array();
  std::vector<std::vector<std::string>> rows{{"rank", "ratio", "loss rel err", "grad err/tol", "param err/tol", "params", "instructions", "collectives", "ok", "iter ms"}};
  std::string failure;
  for (int r = 0; r < world; ++r) {
    const auto a = all[static_cast<size_t>(r)];
    auto at_ = [&](int i) { return a[i].item<double>(); };
    ok = ok && at_(3) == 1.0;
    if (at_(3) != 1.0 && failure.empty()) {
      failure = "rank " + std::to_string(r) + ": loss rel. error " + core::fixed(at_(0), 12) + ", max gradient error " +
                core::fixed(at_(1), 3) + " x tolerance, parameter error " + core::fixed(at_(2), 3) + " x tolerance";
    }
    measured_ms = std::max(measured_ms, at_(4));
    ranks.push_back({{"rank", r}, {"loss_rel_error", at_(0)}, {"grad_error_over_tolerance", at_(1)},
                     {"param_error_over_tolerance", at_(2)}, {"ok", at_(3) == 1.0}, {"median_iteration_ms", at_(4)},
                     {"instructions", static_cast<int64_t>(at_(5))}, {"collectives", static_cast<int64_t>(at_(6))},
                     {"parameters_checked", static_cast<int64_t>(at_(7))}});
    rows.push_back({std::to_string(r), r < static_cast<int>(ratios.size()) ? core::fixed(ratios[static_cast<size_t>(r)], 4) : "?",
                    core::fixed(at_(0), 14), core::fixed(at_(1), 4), core::fixed(at_(2), 4), std::to_string(static_cast<int64_t>(at_(7))),
                    std::to_string(static_cast<int64_t>(at_(5))), std::to_string(static_cast<int64_t>(at_(6))),
                    at_(3) == 1.0 ? "yes" : "NO", core::fixed(at_(4), 3)});
  }
  if (rs.env.rank == 0) {
    Json doc = core::artifact_header(core::artifact_info(opts, c.resolved));
    doc["plan"] = source;
    doc["model"] = g.name;
    doc["world_size"] = world;
    doc["ratios"] = ratios;
    doc["dtype"] = c.run.dtype;
    doc["loss"] = rep.loss;
    doc["reference_loss"] = rep.reference_loss;
    doc["rtol"] = c.run.rtol;
    doc["atol"] = c.run.atol;
    doc["equivalent"] = ok;
    doc["ranks"] = ranks;
    doc["timed_iterations"] = c.run.iterations;
    doc["measured_iteration_ms"] = measured_ms;
    doc["predicted_iteration_ms"] = predicted_ms;
    doc["predicted_compute_ms"] = predicted_compute_ms;
    doc["predicted_comm_ms"] = predicted_comm_ms;
    const fs::path out = fs::path(opts.out) / "run.json";
    core::write_file_atomic(out, doc.dump(1) + "\n");
    std::string text = "model " + g.name + " on " + std::to_string(world) + " local processes (Gloo), plan " + source + ", " +
                       c.run.dtype + "\nloss " + core::fixed(rep.loss, 12) + " vs one process " + core::fixed(rep.reference_loss, 12) +
                       " (rtol " + core::fixed(c.run.rtol, 12) + ")\n" + core::format_table(rows) +
                       (ok ? "equivalent to one process: loss, every gradient and the SGD step\n" : "NOT equivalent: " + failure + "\n");
    if (c.run.iterations > 0) {
      text += "iteration: measured " + core::fixed(measured_ms, 3) + " ms (median of " + std::to_string(c.run.iterations) +
              ", slowest rank), predicted " + core::fixed(predicted_ms, 3) + " ms (compute " + core::fixed(predicted_compute_ms, 3) +
              ", communication " + core::fixed(predicted_comm_ms, 3) + ") on the plan's cluster\n";
    }
    text += "wrote " + out.string() + "\n";
    core::emit_result(opts, doc, text);
  }
  if (!ok) throw core::RuntimeFailure("run: the distributed run differs from one process: " + failure);
  return 0;
}

int spmd_profile(const core::CommonOptions& opts) {
  const SpmdConfig c = read_spmd_config(core::load_config(opts));
  const int world = c.profile.processes;
  RankSetup rs = join_ranks(opts, world);
  tensor::ProcessGroup pg = tensor::ProcessGroup::create(rs.env, c10::Device(c10::kCPU), std::chrono::seconds(c.run.timeout_s));
  auto timed = [&](const std::function<void()>& f) {
    std::vector<double> t;
    f();  // warm-up
    for (int i = 0; i < c.profile.repeats; ++i) {
      pg.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      f();
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return median(t);
  };
  // FLOP/s of a GEMM in run.dtype (what run executes), every rank at once (as in training).
  const int64_t n = c.profile.gemm;
  const auto dt = at::TensorOptions().dtype(c.run.dtype == "float64" ? at::kDouble : at::kFloat);
  const at::Tensor a = at::randn({n, n}, dt), b = at::randn({n, n}, dt);
  const double gemm_s = timed([&] { (void)at::mm(a, b); });
  at::Tensor flops = at::tensor(std::vector<double>{2.0 * static_cast<double>(n * n * n) / gemm_s}, at::TensorOptions().dtype(at::kDouble));
  const auto all_flops = pg.all_gather(flops);
  // Collectives over sizes: alpha-beta fits (least squares of seconds on bytes).
  const std::vector<std::string> kinds = {"all_gather", "reduce_scatter", "all_reduce", "broadcast", "reduce", "all_to_all"};
  Json measured = Json::object(), table = Json::object();
  for (size_t k = 0; k < kinds.size(); ++k) {
    std::vector<double> xs, ys;
    Json points = Json::array();
    for (double mb : c.profile.sizes_mb) {
      const int64_t elems = std::max<int64_t>(world, static_cast<int64_t>(mb * 1e6 / 4) / world * world);
      const double bytes = static_cast<double>(elems) * 4;
      at::Tensor full = at::randn({elems});
      const at::Tensor part = full.narrow(0, 0, elems / world).contiguous();
      double s = 0;
      if (kinds[k] == "all_gather") {
        s = timed([&] { (void)pg.all_gather(part); });
      } else if (kinds[k] == "reduce_scatter" || kinds[k] == "all_reduce") {
        // Gloo has no reduce_scatter: the executor's padded reduce-scatter is an all-reduce.
        s = timed([&] { pg.all_reduce_sum(full); });
      } else if (kinds[k] == "broadcast") {
        s = timed([&] { pg.broadcast(full, 0); });
      } else if (kinds[k] == "reduce") {
        s = timed([&] { pg.reduce_sum(full, 0); });
      } else {
        // All-to-all: each rank sends 1/world of its shard to every peer (point to point).
        const int64_t piece = elems / world / world;
        s = timed([&] {
          std::vector<tensor::PendingTransfer> p;
          std::vector<at::Tensor> bufs;
          for (int peer = 0; peer < world; ++peer) {
            if (peer == rs.env.rank || piece == 0) continue;
            bufs.push_back(part.narrow(0, 0, piece).contiguous());
            p.push_back(pg.send(bufs.back(), peer, 7));
            bufs.push_back(at::empty({piece}));
            p.push_back(pg.recv(bufs.back(), peer, 7));
          }
          for (auto& t : p) t.wait();
        });
      }
      // The slowest rank's time counts.
      at::Tensor st = at::tensor(std::vector<double>{s}, at::TensorOptions().dtype(at::kDouble));
      const auto sts = pg.all_gather(st);
      double mx = 0;
      for (const auto& v : sts) mx = std::max(mx, v.item<double>());
      xs.push_back(bytes);
      ys.push_back(mx);
      points.push_back({{"bytes", bytes}, {"seconds", mx}});
    }
    // t = alpha + bytes / bw
    double mx = 0, my = 0;
    for (size_t i = 0; i < xs.size(); ++i) mx += xs[i], my += ys[i];
    mx /= static_cast<double>(xs.size());
    my /= static_cast<double>(xs.size());
    double sxy = 0, sxx = 0;
    for (size_t i = 0; i < xs.size(); ++i) sxy += (xs[i] - mx) * (ys[i] - my), sxx += (xs[i] - mx) * (xs[i] - mx);
    double slope = sxx > 0 ? sxy / sxx : ys[0] / xs[0];
    if (!(slope > 0)) slope = ys.back() / xs.back();
    const double alpha = std::max(0.0, my - slope * mx);
    table[kinds[k]] = {{"gbytes_per_s", 1.0 / slope / 1e9}, {"latency_us", alpha * 1e6}};
    measured[kinds[k]] = points;
  }
  if (rs.children) rs.children->join();
  if (rs.env.rank != 0) return 0;
  double mem_gb = 8;
  {
    std::ifstream mi("/proc/meminfo");
    std::string key;
    double kb = 0;
    while (mi >> key >> kb) {
      if (key == "MemTotal:") {
        mem_gb = kb / 1e6 / world;
        break;
      }
      mi.ignore(256, '\n');
    }
  }
  Json devs = Json::array();
  std::vector<std::vector<std::string>> rows{{"rank", "GFLOP/s (" + c.run.dtype + " GEMM " + std::to_string(n) + ")"}};
  for (int r = 0; r < world; ++r) {
    const double f = all_flops[static_cast<size_t>(r)].item<double>();
    devs.push_back({{"name", "local" + std::to_string(r)}, {"flops", f}, {"memory_gb", mem_gb}, {"node", 0}});
    rows.push_back({std::to_string(r), core::fixed(f / 1e9, 2)});
  }
  Json doc = core::artifact_header(core::artifact_info(opts, c.resolved));
  doc["name"] = "local " + std::to_string(world) + " processes (measured)";
  doc["devices"] = devs;
  doc["collectives"] = {{"intra_node", table}};
  doc["measured"] = measured;
  const fs::path out = core::artifact_path(opts, "profile.file", c.profile.file);
  core::write_file_atomic(out, doc.dump(1) + "\n");
  std::vector<std::vector<std::string>> crow{{"collective", "GB/s", "latency us"}};
  for (const auto& k : kinds) {
    crow.push_back({k, core::fixed(table[k]["gbytes_per_s"].get<double>(), 3), core::fixed(table[k]["latency_us"].get<double>(), 1)});
  }
  core::emit_result(opts, doc, core::format_table(rows) + core::format_table(crow) + "wrote " + out.string() + "\n");
  return 0;
}

}  // namespace mlsys::plan
