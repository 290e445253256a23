// The TGN batch order does not leak: on a stream with no structure, a model that could see
// an event's own edge would reach AP ~1.0; ours must stay near chance. The same model with
// the sampler switched to "at or before t" (the leak) must find it, or the test proves
// nothing. (Learning itself is tested by the CLI test on `tiny`: TGN and APAN must beat
// EdgeBank.) APAN's attention updater is also checked on a hand-made mailbox. Resume: a
// pass split into per-batch run() calls equals one call, and a model restored by
// load_state continues exactly as the model that saved it (bit for bit).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/h5.hpp"
#include "graph/events.hpp"
#include "graph/sampler.hpp"
#include "tgnn/metrics.hpp"
#include "tgnn/model.hpp"
#include "tests/support/harness.hpp"
#include "tests/support/expect_error.hpp"

using namespace mlsys;
using namespace mlsys::tgnn;

namespace {

// Users 0..99 pick items 100..199 uniformly at random, one event per second: no model can
// predict the item, so the honest AP is ~0.5.
graph::EventStream random_bipartite(size_t events, uint64_t seed) {
  std::mt19937_64 rng(seed);
  graph::EventStream s;
  for (size_t e = 0; e < events; ++e) {
    s.src.push_back(static_cast<int64_t>(rng() % 100));
    s.dst.push_back(100 + static_cast<int64_t>(rng() % 100));
    s.t.push_back(static_cast<double>(e + 1));
  }
  s.num_nodes = 200;
  s.num_sources = 100;
  s.edge_dim = 4;
  s.edge_feat.resize(events * 4);
  for (auto& f : s.edge_feat) f = static_cast<float>(rng() % 1000) / 1000.0F;
  return s;
}

ModelConfig small_model(const std::string& name) {
  ModelConfig m;
  m.name = name;
  m.memory_dim = m.time_dim = m.embed_dim = 16;
  m.neighbors = 5;
  m.lr = 3e-3;
  m.dropout = m.att_dropout = 0.0;
  m.resolve();
  return m;
}

// Trains on the first 80% for `epochs`, then scores the rest with memory carried over.
double held_out_ap(const graph::EventStream& s, const ModelConfig& cfg, int epochs) {
  std::vector<size_t> train, test;
  for (size_t e = 0; e < s.size(); ++e) (e < s.size() * 8 / 10 ? train : test).push_back(e);
  const graph::TemporalGraph g(s);
  std::mt19937_64 rng(9);
  auto negs = [&](size_t n) {
    std::vector<int64_t> v(n);
    for (auto& x : v) x = 100 + static_cast<int64_t>(rng() % 100);
    return v;
  };
  TemporalModel m(cfg, s, 1);
  StageTimes t;
  for (int ep = 0; ep < epochs; ++ep) {
    m.reset_memory();
    m.run(train, negs(train.size()), 1, g, true, 100, t);
  }
  const PassOutput out = m.run(test, negs(test.size()), 1, g, false, 100, t);
  return average_precision(out.pos, out.neg);
}

// Two formulations of one model compared on a random stream: each model is built (which
// reseeds the global generator, so dropout draws match) right before it runs; it scores
// the last 300 events untrained, then a fresh one trains on the first 600 (6 batches) and
// scores the last 300 with the trained parameters and memory.
struct TwinRuns {
  struct Result {
    PassOutput untrained, trained_loss, trained;
  };
  graph::EventStream s;
  graph::TemporalGraph g;
  std::vector<size_t> train, rest;
  std::vector<int64_t> negs, rest_negs;
  uint64_t seed;
  TwinRuns(graph::EventStream stream, size_t neg_stride, uint64_t model_seed)
      : s(std::move(stream)), g(s), train(600), rest(300), negs(s.size()), seed(model_seed) {
    for (size_t e = 0; e < 600; ++e) train[e] = e;
    for (size_t e = 0; e < 300; ++e) rest[e] = 600 + e;
    for (size_t e = 0; e < negs.size(); ++e) negs[e] = 100 + static_cast<int64_t>((e * neg_stride) % 100);
    rest_negs.assign(negs.begin() + 600, negs.end());
  }
  [[nodiscard]] Result run(const ModelConfig& cfg) const {
    Result r;
    StageTimes t;
    {
      TemporalModel m(cfg, s, seed);
      r.untrained = m.run(rest, rest_negs, 1, g, false, 100, t);
    }
    TemporalModel m(cfg, s, seed);
    r.trained_loss = m.run(train, negs, 1, g, true, 100, t);
    r.trained = m.run(rest, rest_negs, 1, g, false, 100, t);
    return r;
  }
  // a and b agree: within 1e-5 untrained, equal losses through training (1e-4 relative),
  // trained scores within trained_tol.
  static void check_same(const Result& a, const Result& b, double trained_tol) {
    CHECK(worst(a.untrained, b.untrained) < 1e-5);
    CHECK(std::abs(a.trained_loss.loss_sum - b.trained_loss.loss_sum) < 1e-4 * std::abs(b.trained_loss.loss_sum));
    CHECK(worst(a.trained, b.trained) < trained_tol);
  }
  // The largest difference between two passes' probabilities.
  static double worst(const PassOutput& a, const PassOutput& b) {
    double w = 0;
    for (size_t i = 0; i < a.pos.size(); ++i) w = std::max({w, std::abs(a.pos[i] - b.pos[i]), std::abs(a.neg[i] - b.neg[i])});
    return w;
  }
};

// A slice [b0, b1) of events and the matching q negatives per event.
std::vector<size_t> slice(const std::vector<size_t>& v, size_t b0, size_t b1) {
  return {v.begin() + static_cast<long>(b0), v.begin() + static_cast<long>(b1)};
}
std::vector<int64_t> slice(const std::vector<int64_t>& v, size_t b0, size_t b1, size_t q) {
  return {v.begin() + static_cast<long>(b0 * q), v.begin() + static_cast<long>(b1 * q)};
}

// run() over `events`, one call per batch of `batch` events (what a trainer that can stop
// between batches does); the outputs concatenated as one call returns them.
PassOutput run_per_batch(TemporalModel& m, const std::vector<size_t>& events, const std::vector<int64_t>& negs, int64_t q,
                         const graph::TemporalGraph& g, bool train, size_t batch) {
  PassOutput all;
  StageTimes t;
  for (size_t b0 = 0; b0 < events.size(); b0 += batch) {
    const size_t b1 = std::min(events.size(), b0 + batch);
    const PassOutput o = m.run(slice(events, b0, b1), slice(negs, b0, b1, static_cast<size_t>(q)), q, g, train, batch, t);
    all.pos.insert(all.pos.end(), o.pos.begin(), o.pos.end());
    all.neg.insert(all.neg.end(), o.neg.begin(), o.neg.end());
    all.loss_sum += o.loss_sum;
    all.batches += o.batches;
  }
  return all;
}

// The parameters as TemporalModel::save writes them (/params/<name>), by name.
std::map<std::string, std::vector<float>> saved_params(const TemporalModel& m, const std::filesystem::path& file) {
  {
    core::H5Writer w(file, {"test_tgnn", "{}"});
    m.save(w);
    w.commit();
  }
  const core::H5Reader r(file);
  std::map<std::string, std::vector<float>> out;
  for (const std::string& n : r.list("/params")) out[n] = r.read_f32("/params/" + n);
  return out;
}

// Models whose state has every part resume must carry: TGN with the uniform sampler (the
// sampler's rng) and dropout (the dropout rng); APAN (the mailbox ring, neighbour mails);
// JODIE with message time (mail_dt).
ModelConfig resume_model(const std::string& name) {
  ModelConfig cfg = small_model(name);
  cfg.dropout = cfg.att_dropout = 0.1;
  if (name == "tgn") cfg.sampler = "uniform";
  if (name == "jodie") cfg.memory_time = "message";
  return cfg;
}

void check_same_pass(const PassOutput& a, const PassOutput& b) {
  CHECK(a.pos == b.pos);
  CHECK(a.neg == b.neg);
  CHECK(a.loss_sum == b.loss_sum);
  CHECK(a.batches == b.batches);
}

void check_same_memory(TemporalModel& a, TemporalModel& b, const graph::TemporalGraph& g, double t) {
  const NodeStates sa = a.node_states(g, t), sb = b.node_states(g, t);
  CHECK(sa.memory == sb.memory);
  CHECK(sa.memory_ts == sb.memory_ts);
  CHECK(sa.embeddings == sb.embeddings);
}

}  // namespace

TEST_CASE("no leakage: an event's own edge is invisible while it is predicted", "[model][leakage]") {
  const graph::EventStream s = random_bipartite(2000, 4);
  const double honest = held_out_ap(s, small_model("tgn"), 3);
  ModelConfig leaky = small_model("tgn");
  leaky.leak_own_edge = true;
  const double leaked = held_out_ap(s, leaky, 3);
  INFO("TGN AP " << honest << ", with the own edge visible " << leaked);
  CHECK(honest < 0.6);
  CHECK(leaked > 0.9);  // the control: the test can see a leak when there is one
  // JODIE/DyRep/APAN embed without sampling: memory alone must not leak either, nor
  // APAN's mails delivered to neighbours, nor DyRep's attention inside the mail.
  CHECK(held_out_ap(s, small_model("jodie"), 3) < 0.6);
  CHECK(held_out_ap(s, small_model("dyrep"), 3) < 0.6);
  CHECK(held_out_ap(s, small_model("apan"), 3) < 0.6);
}

TEST_CASE("dropout scales drop a p share of units and scale the rest by 1/(1-p)", "[model][dropout]") {
  for (double p : {0.1, 0.5}) {
    std::mt19937_64 rng(5);
    std::vector<float> k(1000001);  // odd: the last unit takes half a draw
    dropout_scales(rng, p, k.data(), static_cast<int64_t>(k.size()));
    const auto kept = static_cast<double>(std::count(k.begin(), k.end(), static_cast<float>(1.0 / (1.0 - p))));
    const auto dropped = static_cast<double>(std::count(k.begin(), k.end(), 0.0F));
    CHECK(kept + dropped == static_cast<double>(k.size()));
    // binomial: sd sqrt(p (1 - p) / n) <= 5e-4; allow 6 sd
    CHECK(std::abs(dropped / static_cast<double>(k.size()) - p) < 3e-3);
    // the two halves of a draw are independent: P(both dropped) = p^2
    double both = 0;
    for (size_t i = 0; i + 1 < k.size(); i += 2) both += (k[i] == 0.0F && k[i + 1] == 0.0F) ? 1 : 0;
    CHECK(std::abs(both / 500000.0 - p * p) < 4e-3);
  }
  // p = 0 keeps everything at scale 1
  std::mt19937_64 rng(5);
  std::vector<float> k(9);
  dropout_scales(rng, 0.0, k.data(), 9);
  CHECK(std::all_of(k.begin(), k.end(), [](float v) { return v == 1.0F; }));
}

TEST_CASE("APAN's attention updater on a hand-made mailbox", "[model][apan]") {
  const graph::EventStream s = random_bipartite(100, 5);
  ModelConfig cfg = small_model("apan");  // memory 16, time 16, 2 heads, mailbox 10
  const TemporalModel m(cfg, s, 3);
  const int64_t S = cfg.mailbox_size, dm = cfg.memory_dim, H = cfg.heads, md = m.mail_dim();
  REQUIRE(S == 10);
  REQUIRE(md == 2 * dm + 4);
  const int64_t n = 5;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> memory(static_cast<size_t>(n * dm)), mails(static_cast<size_t>(n * S * md));
  for (auto& x : memory) x = u(rng);
  for (auto& x : mails) x = u(rng);  // empty slots hold garbage: the mask must hide it
  std::vector<double> mail_ts(static_cast<size_t>(n * S));
  for (auto& x : mail_ts) x = 10.0 * u(rng) + 50.0;
  std::vector<uint8_t> valid(static_cast<size_t>(n * S), 0);
  auto slot = [&](int64_t node, int64_t sl) { return static_cast<size_t>(node * S + sl); };
  auto mail_of = [&](int64_t node, int64_t sl) { return mails.begin() + static_cast<long>(slot(node, sl) * static_cast<size_t>(md)); };
  valid[slot(0, 3)] = 1;  // node 0: one mail
  // node 1: no mail
  valid[slot(2, 0)] = valid[slot(2, 5)] = 1;  // node 2: the same mail twice
  std::copy(mail_of(2, 0), mail_of(2, 0) + md, mail_of(2, 5));
  mail_ts[slot(2, 5)] = mail_ts[slot(2, 0)];
  for (int64_t sl : {1, 4, 9}) valid[slot(3, sl)] = 1;  // node 3: three mails
  for (int64_t sl : {1, 4, 9}) valid[slot(4, sl)] = 1;  // node 4: node 3 with other garbage
  std::copy(memory.begin() + 3 * dm, memory.begin() + 4 * dm, memory.begin() + 4 * dm);
  for (int64_t sl : {1, 4, 9}) {
    std::copy(mail_of(3, sl), mail_of(3, sl) + md, mail_of(4, sl));
    mail_ts[slot(4, sl)] = mail_ts[slot(3, sl)];
  }
  const auto r = m.mailbox_attention(memory, mails, mail_ts, valid, 100.0);
  REQUIRE(r.readout.size() == static_cast<size_t>(n * dm));
  REQUIRE(r.weights.size() == static_cast<size_t>(n * S * H));
  REQUIRE(r.values.size() == static_cast<size_t>(n * S * dm));
  auto w = [&](int64_t node, int64_t sl, int64_t h) { return r.weights[static_cast<size_t>((node * S + sl) * H + h)]; };
  auto val = [&](int64_t node, int64_t sl, int64_t d) { return r.values[static_cast<size_t>((node * S + sl) * dm + d)]; };
  auto out = [&](int64_t node, int64_t d) { return r.readout[static_cast<size_t>(node * dm + d)]; };
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t sl = 0; sl < S; ++sl) {
      CHECK(w(0, sl, h) == Approx(sl == 3 ? 1.0 : 0.0).margin(1e-6));  // a single mail takes all the weight
      CHECK(w(1, sl, h) == 0.0F);                                      // an empty mailbox none
      CHECK(w(2, sl, h) == Approx(sl == 0 || sl == 5 ? 0.5 : 0.0).margin(1e-6));
      CHECK(w(3, sl, h) == Approx(w(4, sl, h)).margin(1e-6));         // garbage in empty slots is invisible
    }
    CHECK(w(3, 1, h) + w(3, 4, h) + w(3, 9, h) == Approx(1.0).margin(1e-6));
  }
  const int64_t dh = dm / H;
  for (int64_t d = 0; d < dm; ++d) {
    CHECK(out(0, d) == Approx(val(0, 3, d)).margin(1e-5));  // ... and reads out its value projection
    CHECK(out(1, d) == 0.0F);
    CHECK(out(2, d) == Approx(val(2, 0, d)).margin(1e-5));
    CHECK(out(3, d) == Approx(out(4, d)).margin(1e-5));
    double expect = 0;  // head h = d / dh mixes the values with its own weights
    for (int64_t sl : {1, 4, 9}) expect += w(3, sl, d / dh) * val(3, sl, d);
    CHECK(out(3, d) == Approx(expect).margin(1e-5));
  }
}

TEST_CASE("bf16 GEMMs score like fp32 within bfloat16 rounding", "[model][precision]") {
  const graph::EventStream s = random_bipartite(600, 17);
  const graph::TemporalGraph g(s);
  std::vector<size_t> events(s.size());
  for (size_t e = 0; e < events.size(); ++e) events[e] = e;
  std::vector<int64_t> negs(events.size());
  for (size_t e = 0; e < negs.size(); ++e) negs[e] = 100 + static_cast<int64_t>((e * 37) % 100);
  for (const char* name : {"tgn", "apan"}) {
    DYNAMIC_SECTION(name) {
      ModelConfig cfg = small_model(name);
      // Same seed, same initial parameters; no training, so only the GEMM precision differs.
      TemporalModel f32(cfg, s, 5);
      cfg.precision = "bf16";
      TemporalModel b16(cfg, s, 5);
      StageTimes t;
      const PassOutput a = f32.run(events, negs, 1, g, false, 100, t);
      const PassOutput b = b16.run(events, negs, 1, g, false, 100, t);
      REQUIRE(a.pos.size() == b.pos.size());
      double worst = 0;
      for (size_t i = 0; i < a.pos.size(); ++i) {
        worst = std::max({worst, std::abs(a.pos[i] - b.pos[i]), std::abs(a.neg[i] - b.neg[i])});
      }
      CHECK(worst > 0.0);    // bf16 really ran
      CHECK(worst < 0.01);   // probabilities agree to bfloat16 rounding over 6 batches of memory
    }
  }
}

TEST_CASE("the OpenBLAS GEMMs and their backward train like ATen's", "[model][precision]") {
  const TwinRuns twin(random_bipartite(900, 23), 53, 7);
  for (const char* name : {"tgn", "apan", "jodie"}) {
    DYNAMIC_SECTION(name) {
      const ModelConfig cfg = small_model(name);
      ModelConfig aten = cfg;
      aten.aten_gemm = true;
      // Six training steps (forward, backward, Adam) each, then scoring with the trained
      // parameters and memory: a wrong gradient anywhere would separate the two.
      TwinRuns::check_same(twin.run(cfg), twin.run(aten), 1e-4);
    }
  }
}

TEST_CASE("folding the mail's memory block into the hidden-state GEMM trains like the unfolded updater", "[model][updater]") {
  const TwinRuns twin(random_bipartite(900, 37), 43, 13);
  // GRU (TGN), RNN (JODIE) and RNN with attention mails (DyRep), in the message-time form
  // where the mail starts with the node's memory.
  for (const char* name : {"tgn", "jodie", "dyrep"}) {
    DYNAMIC_SECTION(name) {
      ModelConfig cfg = small_model(name);
      cfg.memory_time = "message";
      ModelConfig unfolded = cfg;
      unfolded.unfolded_self_mail = true;
      const TwinRuns::Result folded = twin.run(cfg), reference = twin.run(unfolded);
      TwinRuns::check_same(folded, reference, 5e-3);
      // ...and the folded path did run: its sums round differently, so the scores are not
      // all bit-identical (they would be if both runs took the unfolded path).
      CHECK(TwinRuns::worst(folded.untrained, reference.untrained) + TwinRuns::worst(folded.trained, reference.trained) > 0.0);
    }
  }
}

TEST_CASE("the factored temporal attention trains like the K/V form", "[model][attention]") {
  const TwinRuns twin(random_bipartite(900, 29), 31, 11);
  // TGN (attention embedding) and DyRep (attention in the mail).
  for (const char* name : {"tgn", "dyrep"}) {
    for (double dropout : {0.0, 0.1}) {
      DYNAMIC_SECTION(name << ", dropout " << dropout) {
        ModelConfig cfg = small_model(name);
        cfg.dropout = cfg.att_dropout = dropout;
        cfg.heads = 2;
        ModelConfig kv = cfg;
        kv.kv_attention = true;
        // The same function: equal up to float rounding before training and through six
        // Adam steps (same losses; Adam's per-parameter normalisation turns rounding
        // differences in near-zero gradients into steps of up to lr, so the trained scores
        // agree to ~1e-3, not to rounding).
        TwinRuns::check_same(twin.run(cfg), twin.run(kv), 5e-3);
      }
    }
  }
}

TEST_CASE("a one-event batch leaves the parameters alone", "[model][precision]") {
  // A batch of one row once made the fp32 GEMM write into a bias (the expanded bias row was
  // the bias itself): scoring one event changed every later score.
  const graph::EventStream s = random_bipartite(400, 41);
  const graph::TemporalGraph g(s);
  std::vector<size_t> one{0}, rest(300);
  for (size_t e = 0; e < 300; ++e) rest[e] = 100 + e;
  const std::vector<int64_t> negs(400, 150);
  for (const char* name : {"tgn", "apan", "jodie"}) {
    DYNAMIC_SECTION(name) {
      const ModelConfig cfg = small_model(name);
      StageTimes t;
      TemporalModel fresh(cfg, s, 3);
      const PassOutput want = fresh.run(rest, negs, 1, g, false, 100, t);
      TemporalModel m(cfg, s, 3);
      (void)m.run(one, negs, 1, g, false, 100, t);  // a batch of one event, no training
      m.reset_memory();
      const PassOutput got = m.run(rest, negs, 1, g, false, 100, t);
      CHECK(got.pos == want.pos);
      CHECK(got.neg == want.neg);
    }
  }
}

TEST_CASE("run split into per-batch calls equals one call over all events", "[model][resume]") {
  const graph::EventStream s = random_bipartite(900, 43);
  const graph::TemporalGraph g(s);
  std::vector<size_t> train(650), rest(250);  // 650: the last training batch is a short one
  for (size_t e = 0; e < 650; ++e) train[e] = e;
  for (size_t e = 0; e < 250; ++e) rest[e] = 650 + e;
  std::vector<int64_t> negs(650), rest_negs(500);
  for (size_t e = 0; e < negs.size(); ++e) negs[e] = 100 + static_cast<int64_t>((e * 37) % 100);
  for (size_t e = 0; e < rest_negs.size(); ++e) rest_negs[e] = 100 + static_cast<int64_t>((e * 53) % 100);
  const test::TempDir tmp("mlsys-tgnn-resume");
  for (const char* name : {"tgn", "apan", "jodie"}) {
    DYNAMIC_SECTION(name) {
      const ModelConfig cfg = resume_model(name);
      TemporalModel whole(cfg, s, 5), split(cfg, s, 5);
      StageTimes t;
      const PassOutput a = whole.run(train, negs, 1, g, true, 100, t);
      const PassOutput b = run_per_batch(split, train, negs, 1, g, true, 100);
      CHECK(a.batches == 7);
      check_same_pass(a, b);
      // then an evaluation pass with two negatives per event, the same way
      check_same_pass(whole.run(rest, rest_negs, 2, g, false, 100, t), run_per_batch(split, rest, rest_negs, 2, g, false, 100));
      CHECK(saved_params(whole, tmp.path / "a.h5") == saved_params(split, tmp.path / "b.h5"));
      check_same_memory(whole, split, g, 1000.0);
    }
  }
}

TEST_CASE("save_state then load_state continues training bit for bit", "[model][resume]") {
  const graph::EventStream s = random_bipartite(900, 47);
  const graph::TemporalGraph g(s);
  std::vector<size_t> events(900);
  for (size_t e = 0; e < events.size(); ++e) events[e] = e;
  std::vector<int64_t> negs(900);
  for (size_t e = 0; e < negs.size(); ++e) negs[e] = 100 + static_cast<int64_t>((e * 41) % 100);
  const test::TempDir tmp("mlsys-tgnn-resume");
  for (const char* name : {"tgn", "apan", "jodie"}) {
    DYNAMIC_SECTION(name) {
      const ModelConfig cfg = resume_model(name);
      const auto file = tmp.path / (std::string(name) + "-state.h5");
      TemporalModel a(cfg, s, 5);
      StageTimes t;
      (void)a.run(slice(events, 0, 300), slice(negs, 0, 300, 1), 1, g, true, 100, t);
      a.snapshot_params();  // a best-validation copy that differs from the parameters below
      (void)a.run(slice(events, 300, 400), slice(negs, 300, 400, 1), 1, g, true, 100, t);
      {
        core::H5Writer w(file, {"test_tgnn", "{}"});
        a.save_state(w, "/train_state");
        w.commit();
      }
      // What the saving model does next, then the same from a fresh model of another seed
      // that loads the state (the parameters, optimizer, memory and random streams must all
      // come from the file), as a resumed process would.
      struct Continued {
        PassOutput train, eval;
        std::map<std::string, std::vector<float>> params, best;
        NodeStates states;
      };
      auto go_on = [&](TemporalModel& m, const std::string& tag) {
        Continued c;
        c.train = m.run(slice(events, 400, 700), slice(negs, 400, 700, 1), 1, g, true, 100, t);
        c.eval = m.run(slice(events, 700, 900), slice(negs, 700, 900, 1), 1, g, false, 100, t);
        c.params = saved_params(m, tmp.path / (tag + ".h5"));
        c.states = m.node_states(g, 1000.0);
        m.restore_params();  // the best-parameter snapshot came along
        c.best = saved_params(m, tmp.path / (tag + "-best.h5"));
        return c;
      };
      const Continued ca = go_on(a, "a");
      TemporalModel b(cfg, s, 77);
      b.load_state(core::H5Reader(file), "/train_state");
      const Continued cb = go_on(b, "b");
      CHECK(ca.train.batches == 3);
      check_same_pass(ca.train, cb.train);
      check_same_pass(ca.eval, cb.eval);
      CHECK(ca.params == cb.params);
      CHECK(ca.best == cb.best);
      CHECK(ca.best != ca.params);
      CHECK(ca.states.memory == cb.states.memory);
      CHECK(ca.states.memory_ts == cb.states.memory_ts);
      CHECK(ca.states.embeddings == cb.states.embeddings);
    }
  }
}

TEST_CASE("load_state refuses a state of another shape and leaves the model alone", "[model][resume]") {
  using test::expect_error;
  const graph::EventStream s = random_bipartite(300, 53);
  const graph::TemporalGraph g(s);
  const test::TempDir tmp("mlsys-tgnn-resume");
  const auto file = tmp.path / "state.h5";
  const ModelConfig cfg = small_model("tgn");
  {
    TemporalModel a(cfg, s, 5);
    core::H5Writer w(file, {"test_tgnn", "{}"});
    a.save_state(w, "/st");
    w.commit();
  }
  const core::H5Reader r(file);
  ModelConfig narrow = cfg;
  narrow.memory_dim = 8;
  TemporalModel b(narrow, s, 5);
  expect_error([&] { b.load_state(r, "/st"); }, {file.string(), "/st/params/memory_updater.weight_ih", "has shape"});
  // The same parameters over more nodes: the memory's shape is refused.
  graph::EventStream more = s;
  more.num_nodes = 250;
  const graph::TemporalGraph g_more(more);
  TemporalModel c(cfg, more, 5);
  expect_error([&] { c.load_state(r, "/st"); }, {file.string(), "/st/memory/mem", "[250, 16]"});
  expect_error([&] { c.load_state(r, "/nope"); }, {file.string(), "no dataset /nope/params/"});
  // Nothing was half-loaded: c still runs like an untouched twin.
  TemporalModel twin(cfg, more, 5);
  std::vector<size_t> events(300);
  for (size_t e = 0; e < events.size(); ++e) events[e] = e;
  const std::vector<int64_t> negs(300, 150);
  StageTimes t;
  check_same_pass(c.run(events, negs, 1, g_more, false, 100, t), twin.run(events, negs, 1, g_more, false, 100, t));
}
