// dynapipe-plan profile and run.
#include "plan_exec/exec_commands.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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
#include "plan/workload.hpp"
#include "plan_exec/layer_profiler.hpp"
#include "plan_exec/run_iterations.hpp"
#include "plan_exec/stage_model.hpp"
#include "tensor/device.hpp"
#include "tensor/distributed.hpp"

extern char** environ;

namespace mlsys::plan {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

at::ScalarType dtype_of(const DynapipeConfig& c) { return c.run.dtype == "float64" ? at::kDouble : at::kFloat; }

std::string fmt(double v, int prec = 2) { return core::fixed(v, prec); }

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A TCP port free on loopback now (the OS's choice), for the ranks' rendezvous.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw core::RuntimeFailure("run: cannot open a socket to find a free port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw core::RuntimeFailure("run: cannot bind a loopback port");
  }
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// This process's argv, exactly (from /proc/self/cmdline).
std::vector<std::string> own_argv() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> out;
  std::string cur;
  for (char ch : all) {
    if (ch == '\0') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  if (out.empty()) throw core::RuntimeFailure("run: cannot read this process's command line");
  return out;
}

// The ranks 1..world-1 as child processes of rank 0: this program re-executed with the same
// arguments, --out <out>/ranks/<r>, and RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set.
class RankProcesses {
 public:
  RankProcesses(const core::CommonOptions& opts, int world, int port) {
    std::vector<std::string> base = own_argv();
    std::vector<std::string> args;
    for (size_t i = 0; i < base.size(); ++i) {
      if (base[i] == "--out" && i + 1 < base.size()) {
        ++i;
        continue;
      }
      if (base[i].rfind("--out=", 0) == 0) continue;
      args.push_back(base[i]);
    }
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string kv = *e;
      const std::string key = kv.substr(0, kv.find('='));
      if (key == "RANK" || key == "WORLD_SIZE" || key == "MASTER_ADDR" || key == "MASTER_PORT" ||
          key.rfind("SLURM_", 0) == 0) {
        continue;
      }
      env.push_back(kv);
    }
    for (int r = 1; r < world; ++r) {
      std::vector<std::string> a = args;
      a.insert(a.end(), {"--out", (fs::path(opts.out) / "ranks" / std::to_string(r)).string(), "--quiet"});
      std::vector<std::string> en = env;
      en.insert(en.end(), {"RANK=" + std::to_string(r), "WORLD_SIZE=" + std::to_string(world), "MASTER_ADDR=127.0.0.1",
                           "MASTER_PORT=" + std::to_string(port)});
      std::vector<char*> av, ev;
      for (auto& s : a) av.push_back(s.data());
      av.push_back(nullptr);
      for (auto& s : en) ev.push_back(s.data());
      ev.push_back(nullptr);
      const pid_t pid = ::fork();
      if (pid < 0) throw core::RuntimeFailure("run: cannot start rank " + std::to_string(r));
      if (pid == 0) {
        ::execve("/proc/self/exe", av.data(), ev.data());
        ::_exit(127);
      }
      pids_.push_back(pid);
    }
  }
  RankProcesses(const RankProcesses&) = delete;
  RankProcesses& operator=(const RankProcesses&) = delete;
  // On an error of rank 0 the others are ended (they would wait for it until the timeout).
  ~RankProcesses() {
    for (pid_t p : pids_) {
      if (p > 0) {
        ::kill(p, SIGTERM);
        ::waitpid(p, nullptr, 0);
      }
    }
  }
  // Waits for every rank; core::RuntimeFailure naming the first that failed.
  void join() {
    for (size_t i = 0; i < pids_.size(); ++i) {
      int st = 0;
      ::waitpid(pids_[i], &st, 0);
      pids_[i] = -1;
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        throw core::RuntimeFailure("run: rank " + std::to_string(i + 1) + " failed (wait status " + std::to_string(st) + ")");
      }
    }
  }

 private:
  std::vector<pid_t> pids_;
};

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
  std::optional<RankProcesses> children;
  if (launched) {
    env = tensor::dist_env_from_environment();
    if (env.world_size != world) {
      throw core::ConfigError("cluster.stages: expected the launcher's WORLD_SIZE " + std::to_string(env.world_size) +
                              ", found " + std::to_string(world));
    }
  } else if (world > 1) {
    env.world_size = world;
    env.rank = 0;
    env.master_port = free_port();
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
