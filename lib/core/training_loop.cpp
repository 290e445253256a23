// See training_loop.hpp.
#include "core/training_loop.hpp"

#include <cmath>
#include <limits>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/progress.hpp"
#include "core/signals.hpp"

namespace mlsys::core {

namespace fs = std::filesystem;

void Series::add_row(const std::vector<std::pair<std::string, double>>& row) {
  if (columns_.empty()) {
    for (const auto& [name, v] : row) columns_.emplace_back(name, std::vector<double>{});
  }
  if (row.size() != columns_.size()) {
    throw RuntimeFailure("metric row of " + std::to_string(row.size()) + " values, expected " +
                         std::to_string(columns_.size()));
  }
  // by name: a series read back from a file lists its columns in the file's (sorted) order
  for (const auto& [name, v] : row) {
    if (!has(name)) throw RuntimeFailure("metric row names '" + name + "', which earlier rows did not record");
  }
  for (const auto& [name, v] : row) {
    for (auto& [n, c] : columns_) {
      if (n == name) c.push_back(v);
    }
  }
}

bool Series::has(const std::string& name) const {
  for (const auto& [n, c] : columns_) {
    if (n == name) return true;
  }
  return false;
}

const std::vector<double>& Series::column(const std::string& name) const {
  for (const auto& [n, c] : columns_) {
    if (n == name) return c;
  }
  throw RuntimeFailure("no metric series '" + name + "'");
}

void Series::write(H5Writer& w, const std::string& group) const {
  for (const auto& [name, c] : columns_) w.write(group + "/" + name, std::span<const double>(c));
}

Series Series::read(const H5Reader& r, const std::string& group) {
  Series s;
  if (!r.has(group)) return s;
  for (const auto& name : r.list(group)) {
    s.columns_.emplace_back(name, r.read_f64(group + "/" + name));
    if (s.columns_.back().second.size() != s.columns_.front().second.size()) {
      throw InputError(r.path().string() + ": " + group + "/" + name + " has " +
                       std::to_string(s.columns_.back().second.size()) + " rows, " + group + "/" +
                       s.columns_.front().first + " " + std::to_string(s.columns_.front().second.size()));
    }
  }
  return s;
}

namespace {

// The loop's own position and bookkeeping; the task's state is saved beside it.
struct LoopState {
  int64_t step = 0, best_step = -1, bad_evals = 0, window_n = 0;
  double best_score = -std::numeric_limits<double>::infinity(), window_loss = 0;
  bool early_stopped = false;
  Series metrics, evals;
};

void save(const LoopPolicy& p, const LoopState& st, const LoopTask& task) {
  fs::create_directories(p.checkpoint.parent_path().empty() ? fs::path(".") : p.checkpoint.parent_path());
  H5Writer w(p.checkpoint, p.info);
  w.set_attr("/", "resume_key", p.resume_key.dump());
  w.set_attr("/", "data_key", p.data_key);
  w.set_attr("/", "device", p.device);
  w.set_attr("/", "threads", static_cast<int64_t>(p.threads));
  w.set_attr("/", "step", st.step);
  w.set_attr("/", "best_step", st.best_step);
  w.set_attr("/", "bad_evals", st.bad_evals);
  w.set_attr("/", "window_n", st.window_n);
  w.set_attr("/", "best_score", st.best_score);
  w.set_attr("/", "window_loss", st.window_loss);
  w.set_attr("/", "early_stopped", static_cast<int64_t>(st.early_stopped));
  st.metrics.write(w, "/metrics");
  st.evals.write(w, "/eval");
  task.save_state(w);
  w.commit();
}

void load(const LoopPolicy& p, LoopState& st, LoopTask& task) {
  const std::string src = p.checkpoint.string();
  if (!fs::exists(p.checkpoint)) {
    throw InputError(src + ": no such file (nothing to resume: run " +
                     p.resume_command.substr(0, p.resume_command.find(' ')) + " without --resume first)");
  }
  H5Reader r(p.checkpoint);
  const Json saved = parse_json_input(r.attr_string("/", "resume_key"), src + ": attribute 'resume_key'");
  const std::string diff = first_difference(p.resume_key, saved);
  if (!diff.empty()) {
    throw ConfigError(src + ": written by a run with a different config (first difference at key '" + diff +
                      "'); resume with the same config, or start afresh in another --out");
  }
  if (r.attr_string("/", "data_key") != p.data_key) {
    throw InputError(src + ": written for other training data (the examples or their labels changed since); "
                     "start afresh in another --out");
  }
  if (r.attr_string("/", "device") != p.device) {
    throw ConfigError(src + ": written on device " + r.attr_string("/", "device") + ", resumed with --device " +
                      p.device + "; resume on the same device");
  }
  if (r.attr_int("/", "threads") != p.threads) {
    log::warn("{} was written with {} threads, this run has {}: the result will not be bit-for-bit that of an "
              "uninterrupted run",
              src, r.attr_int("/", "threads"), p.threads);
  }
  st.step = r.attr_int("/", "step");
  st.best_step = r.attr_int("/", "best_step");
  st.bad_evals = r.attr_int("/", "bad_evals");
  st.window_n = r.attr_int("/", "window_n");
  st.best_score = r.attr_double("/", "best_score");
  st.window_loss = r.attr_double("/", "window_loss");
  st.early_stopped = r.attr_int("/", "early_stopped") != 0;
  if (st.step < 0 || st.step > p.total_steps) {
    throw InputError(src + ": attribute 'step': expected a value in [0, " + std::to_string(p.total_steps) +
                     "], found " + std::to_string(st.step));
  }
  st.metrics = Series::read(r, "/metrics");
  st.evals = Series::read(r, "/eval");
  task.load_state(r);
}

}  // namespace

LoopResult run_training_loop(LoopTask& task, const LoopPolicy& p) {
  // A run of no steps (a count that overflowed to a negative number, or 0) would "finish"
  // at once and replace a good artifact with an untrained one.
  if (p.total_steps <= 0) {
    throw ConfigError(p.label + ": expected a positive number of training steps, found " + std::to_string(p.total_steps) +
                      " (check the step and epoch counts of the config)");
  }
  LoopState st;
  if (!p.resume && !p.force) refuse_unfinished_run(p.checkpoint, p.resume_command);
  if (p.resume) {
    load(p, st, task);
    log::info("resuming at step {} of {} from {}", st.step, p.total_steps, p.checkpoint.string());
  }
  const int64_t first_step = st.step;
  Progress progress(p.label, static_cast<uint64_t>(p.total_steps), p.progress, p.quiet);
  int64_t saved_step = p.resume ? first_step : -1;  // the step the checkpoint file holds
  auto checkpoint = [&] {
    save(p, st, task);
    saved_step = st.step;
  };

  auto run_eval = [&](int64_t at_step) {
    std::optional<EvalReport> r;
    try {
      r = task.evaluate(at_step);
    } catch (const Error&) {
      // A stop inside an evaluation (the task polls the stop flag in its long passes)
      // leaves the task's state mid-pass: not checkpointed; the last checkpoint stands.
      if (!stop_requested()) throw;
      throw RuntimeFailure("interrupted in the evaluation after step " + std::to_string(at_step) +
                           (saved_step >= 0 ? "; " + p.checkpoint.string() + " holds the run as of step " +
                                                  std::to_string(saved_step) + ", continue with " + p.resume_command
                                            : "; no artifact written"));
    }
    if (!r) return;
    std::vector<std::pair<std::string, double>> row = {{"step", static_cast<double>(at_step)}};
    row.insert(row.end(), r->values.begin(), r->values.end());
    row.emplace_back("train_loss", st.window_n ? st.window_loss / static_cast<double>(st.window_n) : std::nan(""));
    st.evals.add_row(row);
    st.window_loss = 0;
    st.window_n = 0;
    if (r->score > st.best_score) {
      st.best_score = r->score;
      st.best_step = at_step;
      st.bad_evals = 0;
      task.keep_best();
    } else {
      ++st.bad_evals;
    }
  };

  while (st.step < p.total_steps && !st.early_stopped) {
    if (stop_requested()) {
      if (st.step > first_step) checkpoint();
      throw RuntimeFailure("interrupted at step " + std::to_string(st.step) + " of " + std::to_string(p.total_steps) +
                           (st.step > first_step
                                ? "; wrote " + p.checkpoint.string() + ", continue with " + p.resume_command
                                : "; no artifact written"));
    }
    if (p.run_steps > 0 && st.step - first_step >= p.run_steps) break;
    StepReport r = task.train_step(st.step);
    ++st.step;
    std::vector<std::pair<std::string, double>> row = {{"step", static_cast<double>(st.step)}};
    row.insert(row.end(), r.values.begin(), r.values.end());
    st.metrics.add_row(row);
    for (const auto& [name, v] : r.values) {
      if (name == "loss") {
        st.window_loss += v;
        ++st.window_n;
      }
    }
    progress.update(static_cast<uint64_t>(st.step), r.status);
    bool evaluated = false;
    if (p.eval_every > 0 && st.step % p.eval_every == 0 && st.step < p.total_steps) {
      run_eval(st.step);
      evaluated = true;
      if (p.patience > 0 && st.bad_evals >= p.patience) {
        log::info("early stop at step {}: no improvement in {} evaluations", st.step, st.bad_evals);
        st.early_stopped = true;
        break;
      }
    }
    if (st.step < p.total_steps && (evaluated || (p.checkpoint_every > 0 && st.step % p.checkpoint_every == 0))) {
      checkpoint();
    }
  }
  LoopResult res;
  res.first_step = first_step;
  if (st.step < p.total_steps && !st.early_stopped) {
    progress.finish();
    checkpoint();
    res.paused = true;
  } else {
    // the last phase starts from a checkpoint, so a stop in it loses no training
    if (st.step > first_step) checkpoint();
    if (!st.early_stopped) run_eval(st.step);
    progress.finish();
    if (stop_requested()) {
      throw RuntimeFailure("interrupted in the final evaluation after step " + std::to_string(st.step) + "; " +
                           p.checkpoint.string() + " holds the run, continue with " + p.resume_command);
    }
  }
  res.steps = st.step;
  res.best_step = st.best_step;
  res.best_score = st.best_score;
  res.early_stopped = st.early_stopped;
  res.metrics = std::move(st.metrics);
  res.evals = std::move(st.evals);
  return res;
}

void refuse_unfinished_run(const std::filesystem::path& checkpoint, const std::string& resume_command) {
  if (fs::exists(checkpoint)) {
    throw ConfigError(checkpoint.string() + ": holds an unfinished run; continue it with " + resume_command +
                      ", or start afresh with --force (the new run replaces it) or in another --out");
  }
}

void remove_checkpoint(const LoopPolicy& policy) {
  std::error_code ec;
  fs::remove(policy.checkpoint, ec);
}

}  // namespace mlsys::core
