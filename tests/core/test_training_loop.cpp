// core::run_training_loop on a torch-free toy task with a known answer: gradient descent
// on f(w) = (w - 3)^2 with a seeded noise term, validation score -|w - target|. Checks
// best-by-validation, early stopping, pauses, stop requests and bit-for-bit --resume.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <sstream>

#include "core/error.hpp"
#include "core/signals.hpp"
#include "core/training_loop.hpp"
#include "tests/support/harness.hpp"

using namespace mlsys::core;

namespace {

// One parameter w, plain SGD with noisy gradients from a seeded generator (the state a
// resume must restore), and a validation optimum at `target`.
struct ToyTask : LoopTask {
  double w = 0, best_w = 0, target = 3.0, lr = 0.1;
  std::mt19937_64 rng{42};
  int64_t steps_seen = 0;
  std::vector<double> score_at;  // forced scores per evaluation (empty: -|w - target|)
  size_t evals = 0;
  int64_t stop_after = -1;       // request a stop after this many steps (SIGINT stand-in)

  StepReport train_step(int64_t step) override {
    const double noise = std::uniform_real_distribution<double>(-0.05, 0.05)(rng);
    const double grad = 2 * (w - 3.0) + noise;
    w -= lr * grad;
    ++steps_seen;
    if (stop_after >= 0 && step + 1 == stop_after) request_stop();
    return {{{"loss", (w - 3.0) * (w - 3.0)}, {"w", w}}, "w " + std::to_string(w)};
  }
  std::optional<EvalReport> evaluate(int64_t) override {
    const double score = evals < score_at.size() ? score_at[evals] : -std::abs(w - target);
    ++evals;
    return EvalReport{score, {{"score", score}}};
  }
  void keep_best() override { best_w = w; }
  void save_state(H5Writer& h) const override {
    h.set_attr("/", "w", w);
    h.set_attr("/", "best_w", best_w);
    std::ostringstream s;
    s << rng;
    h.set_attr("/", "rng", s.str());
  }
  void load_state(const H5Reader& r) override {
    w = r.attr_double("/", "w");
    best_w = r.attr_double("/", "best_w");
    std::istringstream s(r.attr_string("/", "rng"));
    s >> rng;
  }
};

LoopPolicy policy(const std::filesystem::path& dir, int64_t total, int64_t eval_every) {
  LoopPolicy p;
  p.total_steps = total;
  p.eval_every = eval_every;
  p.checkpoint = dir / "checkpoint.h5";
  p.resume_command = "fit --resume";
  p.resume_key = Json{{"lr", 0.1}};
  p.data_key = "toy";
  p.device = "cpu";
  p.threads = 1;
  p.info = {"test", "{}"};
  p.progress = ProgressMode::never;
  p.quiet = true;
  return p;
}

}  // namespace

TEST_CASE("training loop: schedule, evaluations, best step and series", "[loop]") {
  mlsys::test::TempDir tmp{"mlsys-loop"};
  ToyTask t;
  t.score_at = {0.1, 0.5, 0.3, 0.2};  // evaluations at steps 5, 10, 15 and the final one at 20
  const LoopResult r = run_training_loop(t, policy(tmp.path, 20, 5));
  CHECK(r.steps == 20);
  CHECK(t.steps_seen == 20);
  CHECK_FALSE(r.paused);
  CHECK(r.best_step == 10);
  CHECK(r.best_score == 0.5);
  REQUIRE(r.evals.rows() == 4);
  CHECK(r.evals.column("step") == std::vector<double>{5, 10, 15, 20});
  REQUIRE(r.metrics.rows() == 20);
  CHECK(r.metrics.column("step").back() == 20);
  // the eval row's train_loss is the mean step loss since the previous evaluation
  const auto& loss = r.metrics.column("loss");
  CHECK(r.evals.column("train_loss")[1] == Approx((loss[5] + loss[6] + loss[7] + loss[8] + loss[9]) / 5));
  CHECK(std::filesystem::exists(tmp.path / "checkpoint.h5"));  // holds the run until the program removes it
  remove_checkpoint(policy(tmp.path, 20, 5));
  CHECK_FALSE(std::filesystem::exists(tmp.path / "checkpoint.h5"));
  CHECK(std::abs(t.w - 3.0) < 0.05);  // the toy problem converged
}

TEST_CASE("training loop: patience stops early and no final evaluation follows", "[loop]") {
  mlsys::test::TempDir tmp{"mlsys-loop"};
  ToyTask t;
  t.score_at = {0.9, 0.1, 0.2, 0.3};
  LoopPolicy p = policy(tmp.path, 100, 5);
  p.patience = 2;
  const LoopResult r = run_training_loop(t, p);
  CHECK(r.early_stopped);
  CHECK(r.steps == 15);
  CHECK(r.best_step == 5);
  CHECK(r.evals.rows() == 3);
}

TEST_CASE("training loop: a stop request checkpoints; --resume equals an uninterrupted run", "[loop]") {
  mlsys::test::TempDir tmp{"mlsys-loop"};
  ToyTask whole;
  const LoopResult a = run_training_loop(whole, policy(tmp.path / "a", 23, 5));

  ToyTask first;
  first.stop_after = 12;
  REQUIRE_THROWS_WITH(run_training_loop(first, policy(tmp.path / "b", 23, 5)),
                      Catch::Contains("interrupted at step 12") && Catch::Contains("fit --resume"));
  clear_stop_request();
  REQUIRE(std::filesystem::exists(tmp.path / "b" / "checkpoint.h5"));

  ToyTask second;  // a fresh process: state only from the checkpoint
  LoopPolicy p = policy(tmp.path / "b", 23, 5);
  p.resume = true;
  const LoopResult b = run_training_loop(second, p);
  CHECK(b.first_step == 12);
  CHECK(second.steps_seen == 11);
  CHECK(second.w == whole.w);  // bit for bit: the generator state came back
  CHECK(second.best_w == whole.best_w);
  CHECK(b.best_step == a.best_step);
  CHECK(b.metrics.column("loss") == a.metrics.column("loss"));
  CHECK(b.evals.column("score") == a.evals.column("score"));
  CHECK(b.evals.column("train_loss") == a.evals.column("train_loss"));
}

TEST_CASE("training loop: pauses after run_steps; resume refuses another config, data or device", "[loop]") {
  mlsys::test::TempDir tmp{"mlsys-loop"};
  ToyTask t;
  LoopPolicy p = policy(tmp.path, 20, 5);
  p.run_steps = 7;
  const LoopResult r = run_training_loop(t, p);
  CHECK(r.paused);
  CHECK(r.steps == 7);

  ToyTask u;
  LoopPolicy q = policy(tmp.path, 20, 5);
  q.resume = true;
  q.resume_key = Json{{"lr", 0.2}};
  CHECK_THROWS_AS(run_training_loop(u, q), ConfigError);
  CHECK_THROWS_WITH(run_training_loop(u, q), Catch::Contains("first difference at key 'lr'"));
  q.resume_key = p.resume_key;
  q.data_key = "other";
  CHECK_THROWS_AS(run_training_loop(u, q), InputError);
  q.data_key = p.data_key;
  q.device = "cuda:0";
  CHECK_THROWS_AS(run_training_loop(u, q), ConfigError);
  q.device = "cpu";
  const LoopResult done = run_training_loop(u, q);
  CHECK(done.steps == 20);
  CHECK(u.steps_seen == 13);

  LoopPolicy missing = policy(tmp.path / "none", 20, 5);
  missing.resume = true;
  CHECK_THROWS_WITH(run_training_loop(u, missing), Catch::Contains("nothing to resume: run fit without --resume"));
}

TEST_CASE("training loop: a fresh run refuses to replace an unfinished one unless forced", "[loop]") {
  mlsys::test::TempDir tmp{"mlsys-loop"};
  ToyTask t;
  LoopPolicy p = policy(tmp.path, 20, 5);
  p.run_steps = 7;
  REQUIRE(run_training_loop(t, p).paused);
  ToyTask fresh;
  LoopPolicy again = policy(tmp.path, 20, 5);
  CHECK_THROWS_AS(run_training_loop(fresh, again), ConfigError);
  CHECK_THROWS_WITH(run_training_loop(fresh, again), Catch::Contains("fit --resume") && Catch::Contains("--force"));
  CHECK(fresh.steps_seen == 0);
  again.force = true;
  CHECK(run_training_loop(fresh, again).steps == 20);
  CHECK(fresh.steps_seen == 20);
}
