// See fit.hpp.
#include "tgnn/fit.hpp"

#include <algorithm>
#include <bit>
#include <ctime>

#include "core/artifact.hpp"
#include "core/error.hpp"
#include "core/fingerprint.hpp"
#include "core/log.hpp"
#include "core/report.hpp"
#include "core/timer.hpp"
#include "core/training_loop.hpp"
#include "tensor/threads.hpp"
#include "tgnn/link_prediction.hpp"

namespace mlsys::tgnn {

namespace {

using core::Json;

class FitTask : public core::LoopTask {
 public:
  FitTask(TemporalModel& m, const FitData& d, std::string label)
      : m_(m), d_(d), label_(std::move(label)), bs_(static_cast<size_t>(d.c.train.batch_size)),
        pool_(destination_pool(d.s, d.sp.train, d.c.train.negatives)) {}

  [[nodiscard]] int64_t steps_per_epoch() const {
    return static_cast<int64_t>((d_.sp.train.size() + bs_ - 1) / bs_);
  }

  core::StepReport train_step(int64_t step) override {
    const int64_t epoch = step / steps_per_epoch() + 1;  // 1-based, as logged
    const auto b = static_cast<size_t>(step % steps_per_epoch());
    if (b == 0) {
      m_.reset_memory();
      ep_loss_ = 0;
      ep_batches_ = 0;
      ep_seconds_ = 0;
      ep_cpu_ = 0;
    }
    if (neg_epoch_ != epoch) {  // drawn afresh after a resume too: a pure function of the epoch
      neg_ = sample_negatives(pool_, d_.sp.train.size(), 1, d_.c.seed * 1000003 + static_cast<uint64_t>(epoch));
      neg_epoch_ = epoch;
    }
    core::Timer t;
    const std::clock_t c0 = std::clock();
    const size_t b0 = b * bs_, b1 = std::min(d_.sp.train.size(), b0 + bs_);
    const std::vector<size_t> batch(d_.sp.train.begin() + static_cast<long>(b0),
                                    d_.sp.train.begin() + static_cast<long>(b1));
    const std::vector<int64_t> batch_neg(neg_.begin() + static_cast<long>(b0), neg_.begin() + static_cast<long>(b1));
    const PassOutput o = m_.run(batch, batch_neg, 1, d_.g_train, true, bs_, r_.times);
    ep_seconds_ += t.seconds();
    ep_cpu_ += static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    ep_loss_ += o.loss_sum;
    ep_batches_ += static_cast<int64_t>(o.batches);
    const double loss = o.loss_sum / static_cast<double>(std::max<size_t>(o.batches, 1));
    return {{{"loss", loss}}, "epoch " + std::to_string(epoch) + " | loss " + core::fixed(loss, 4)};
  }

  std::optional<core::EvalReport> evaluate(int64_t step) override {
    epoch_ = step / steps_per_epoch();
    const auto ebs = static_cast<size_t>(d_.c.eval.batch_size);
    StageTimes vt;
    const PassOutput v = m_.run(d_.sp.val, d_.val_neg, 1, d_.g_full, false, ebs, vt);
    const SplitMetrics vm = score_split(d_.s, d_.sp, d_.sp.val, v.pos, v.neg, 1, ebs);
    const double loss = ep_loss_ / static_cast<double>(std::max<int64_t>(ep_batches_, 1));
    const double eps = static_cast<double>(d_.sp.train.size()) / std::max(ep_seconds_, 1e-9);
    r_.epochs.push_back({{"epoch", epoch_}, {"loss", loss}, {"val_ap_batch", vm.all.ap_batch},
                         {"val_auc_batch", vm.all.auc_batch}, {"train_seconds", ep_seconds_},
                         {"train_cpu_seconds", ep_cpu_}, {"events_per_s", eps}});
    train_s_ += ep_seconds_;
    train_cpu_s_ += ep_cpu_;
    ++r_.epochs_run;
    log::info("{} epoch {}: loss {:.4f}, val AP {:.4f}, {:.1f} s ({:.0f} events/s)", label_, epoch_, loss,
              vm.all.ap_batch, ep_seconds_, eps);
    return core::EvalReport{vm.all.ap_batch, {{"val_ap_batch", vm.all.ap_batch}, {"val_auc_batch", vm.all.auc_batch}}};
  }

  void keep_best() override {
    m_.snapshot_params();
    r_.best_epoch = epoch_;
  }

  void save_state(core::H5Writer& w) const override {
    m_.save_state(w, "/model");
    w.set_attr("/", "epoch_loss", ep_loss_);
    w.set_attr("/", "epoch_batches", ep_batches_);
    w.set_attr("/", "epoch_seconds", ep_seconds_);
    w.set_attr("/", "epoch_cpu_seconds", ep_cpu_);
    w.set_attr("/", "train_seconds", train_s_);
    w.set_attr("/", "train_cpu_seconds", train_cpu_s_);
    w.set_attr("/", "best_epoch", r_.best_epoch);
    w.set_attr("/", "epochs_run", r_.epochs_run);
    w.set_attr("/", "epochs", r_.epochs.dump());
    const StageTimes& t = r_.times;
    w.write("/stage_seconds", std::span<const double>(std::vector<double>{t.sample, t.fetch, t.train, t.update}));
  }

  void load_state(const core::H5Reader& r) override {
    m_.load_state(r, "/model");
    ep_loss_ = r.attr_double("/", "epoch_loss");
    ep_batches_ = r.attr_int("/", "epoch_batches");
    ep_seconds_ = r.attr_double("/", "epoch_seconds");
    ep_cpu_ = r.attr_double("/", "epoch_cpu_seconds");
    train_s_ = r.attr_double("/", "train_seconds");
    train_cpu_s_ = r.attr_double("/", "train_cpu_seconds");
    r_.best_epoch = r.attr_int("/", "best_epoch");
    r_.epochs_run = r.attr_int("/", "epochs_run");
    r_.epochs = core::parse_json_input(r.attr_string("/", "epochs"), r.path().string() + ": attribute 'epochs'");
    if (!r_.epochs.is_array()) {
      throw core::InputError(r.path().string() + ": attribute 'epochs': expected the JSON list of epochs so far");
    }
    const std::vector<double> t = r.read_f64("/stage_seconds");
    if (t.size() != 4) throw core::InputError(r.path().string() + ": /stage_seconds: expected 4 values");
    r_.times = {t[0], t[1], t[2], t[3]};
  }

  FitResult result() {
    FitResult r = r_;
    r.parameters = m_.num_parameters();
    const double n = static_cast<double>(std::max<int64_t>(r.epochs_run, 1));
    r.epoch_seconds = train_s_ / n;
    r.events_per_s = static_cast<double>(d_.sp.train.size()) / std::max(r.epoch_seconds, 1e-9);
    r.epoch_cpu_seconds = train_cpu_s_ / n;
    r.events_per_cpu_s = static_cast<double>(d_.sp.train.size()) / std::max(r.epoch_cpu_seconds, 1e-9);
    return r;
  }

 private:
  TemporalModel& m_;
  const FitData& d_;
  std::string label_;
  size_t bs_;
  std::vector<int64_t> pool_, neg_;
  int64_t neg_epoch_ = -1, epoch_ = 0;
  double ep_loss_ = 0, ep_seconds_ = 0, ep_cpu_ = 0, train_s_ = 0, train_cpu_s_ = 0;
  int64_t ep_batches_ = 0;
  FitResult r_;
};

// The config keys training reads: not where artifacts go, how often checkpoints are
// written, nor the baselines trained after.
Json resume_key(const TgnnConfig& c) {
  Json k = c.resolved;
  k.erase("baselines");
  if (k.contains("train") && k["train"].is_object()) k["train"].erase("checkpoint_every");
  if (k.contains("eval") && k["eval"].is_object()) {
    k["eval"].erase("checkpoint");
    k["eval"].erase("negatives_out");
    k["eval"].erase("mrr_negatives");
  }
  return k;
}

core::LoopPolicy policy_of(const FitData& d, const FitRun& run, const core::CommonOptions& opts, int64_t spe) {
  core::LoopPolicy p;
  p.total_steps = d.c.train.epochs * spe;
  p.eval_every = spe;
  p.patience = d.c.train.patience;
  p.checkpoint_every = d.c.train.checkpoint_every;
  p.checkpoint = run.checkpoint;
  p.resume = run.resume;
  p.force = opts.flag("force");
  p.resume_command = "fit --resume";
  p.resume_key = resume_key(d.c);
  p.data_key = run.data_key;
  p.device = "cpu";
  p.threads = tensor::threads();
  p.info = core::artifact_info(opts, d.c.resolved);
  p.label = run.label;
  p.progress = opts.progress_mode();
  p.quiet = opts.quiet;
  return p;
}

}  // namespace

std::string stream_key(const graph::EventStream& s) {
  core::Fingerprint fp;
  fp.add_all(s.src);
  fp.add_all(s.dst);
  for (double t : s.t) fp.add(std::bit_cast<int64_t>(t));
  for (float x : s.edge_feat) fp.add(std::bit_cast<int32_t>(x));
  for (float x : s.node_feat) fp.add(std::bit_cast<int32_t>(x));
  return std::to_string(fp.h);
}

FitResult fit_model(TemporalModel& m, const FitData& d, const FitRun& run, const core::CommonOptions& opts) {
  FitTask task(m, d, run.label);
  const core::LoopPolicy p = policy_of(d, run, opts, task.steps_per_epoch());
  const core::LoopResult res = core::run_training_loop(task, p);
  if (res.paused) throw core::RuntimeFailure("fit: a paused training loop (tgnn-train has no run_steps)");
  m.restore_params();
  FitResult r = task.result();
  r.resumed_at_step = run.resume ? res.first_step : -1;
  return r;
}

void remove_fit_checkpoint(const FitRun& run) {
  std::error_code ec;
  std::filesystem::remove(run.checkpoint, ec);
}

}  // namespace mlsys::tgnn
