// Measured profiles: the reference's file format written and read back, the bilinear
// interpolation on a hand-made grid, refusal past the grid, and the cost model over it.
#include <catch2/catch.hpp>

#include <fstream>

#include "core/error.hpp"
#include "plan/analytical_profile.hpp"
#include "plan/cost_model.hpp"
#include "plan/measured_profile.hpp"
#include "tests/support/harness.hpp"

using namespace mlsys::plan;
using Catch::Matchers::Contains;

namespace {

const ProfileMetadata kMeta{1, 64, 4, 16, 256};

// A grid whose values are known functions of (b, s): linear and bilinear ones, which the
// interpolation must reproduce exactly inside the grid and on the first cell's plane below it.
std::vector<ProfileRecord> grid(const std::vector<int64_t>& mbs, const std::vector<int64_t>& seq) {
  std::vector<ProfileRecord> out;
  for (int64_t b : mbs) {
    for (int64_t s : seq) {
      ProfileRecord r;
      r.mbs = b;
      r.seqlen = s;
      const double B = static_cast<double>(b), S = static_cast<double>(s);
      r.forward_encoder_ms = 1 + 2 * B + 0.1 * S;
      r.backward_encoder_ms = 0.01 * B * S;
      r.forward_postprocess_ms = 0.5 + B;
      r.backward_postprocess_ms = 1.0 + S / 64;
      r.encoder_activation_mb = 0.25 * B * S;
      r.peak_encoder_activation_mb = 0.5 * B * S + 1;
      r.model_embedding_mb = 4.0;
      r.model_encoder_mb = 0.125 + 1e-17 * B;  // a value that needs 17 digits
      out.push_back(r);
    }
  }
  return out;
}

void write_profile(const std::filesystem::path& dir, const std::vector<ProfileRecord>& recs) {
  std::filesystem::create_directories(dir);
  for (const auto& r : recs) {
    std::ofstream(dir / profile_file_name(kMeta, r.seqlen, r.mbs)) << profile_file_text(r);
  }
}

}  // namespace

TEST_CASE("profile files: the reference's names and lines, read back exactly", "[profile]") {
  CHECK(profile_file_name(kMeta, 128, 4) == "tp1_hs64_ah4_kv16_ffhs256_seqlen128_mbs4.txt");
  mlsys::test::TempDir tmp("profile");
  const auto recs = grid({1, 2, 4}, {32, 64});
  write_profile(tmp.path, recs);
  std::ofstream(tmp.path / "README.md") << "not a profile file\n";  // ignored: not *.txt
  const MeasuredProfile p = MeasuredProfile::read(tmp.path);
  CHECK(p.metadata() == kMeta);
  CHECK(p.microbatch_sizes() == std::vector<int64_t>{1, 2, 4});
  CHECK(p.seqlens() == std::vector<int64_t>{32, 64});
  REQUIRE(p.records().size() == 6);
  for (const auto& r : p.records()) {
    const auto want = std::find_if(recs.begin(), recs.end(), [&](const ProfileRecord& x) { return x.mbs == r.mbs && x.seqlen == r.seqlen; });
    REQUIRE(want != recs.end());
    CHECK(r.forward_encoder_ms == want->forward_encoder_ms);
    CHECK(r.backward_encoder_ms == want->backward_encoder_ms);
    CHECK(r.forward_postprocess_ms == want->forward_postprocess_ms);
    CHECK(r.backward_postprocess_ms == want->backward_postprocess_ms);
    CHECK(r.encoder_activation_mb == want->encoder_activation_mb);
    CHECK(r.peak_encoder_activation_mb == want->peak_encoder_activation_mb);
    CHECK(r.model_encoder_mb == want->model_encoder_mb);
  }
  CHECK(p.embedding_params_mb() == 4.0);
  // the text is the reference's "<key> <value>" lines
  const std::string text = profile_file_text(recs.front());
  CHECK(text.rfind("forward_encoder 6.2", 0) == 0);  // 1 + 2 + 3.2, the first line
  CHECK_THAT(text, Contains("\npeak_encoder_activation "));
  CHECK_THAT(text, Contains("\nmodel_encoder 0.125"));
}

TEST_CASE("profile interpolation: bilinear on the grid, the first cell extended below, refused past the max",
          "[profile]") {
  const MeasuredProfile p = MeasuredProfile::from_records(kMeta, grid({1, 4, 8}, {32, 64, 256}));
  using M = ProfileMetric;
  // grid points
  CHECK(*p.at(M::forward_encoder, 4, 64) == Approx(1 + 8 + 6.4).epsilon(1e-12));
  // inside cells: a linear and a bilinear function are reproduced exactly
  CHECK(*p.at(M::forward_encoder, 2, 48) == Approx(1 + 4 + 4.8).epsilon(1e-12));
  CHECK(*p.at(M::backward_encoder, 2, 48) == Approx(0.01 * 2 * 48).epsilon(1e-12));
  CHECK(*p.at(M::encoder_activation, 6, 160) == Approx(0.25 * 6 * 160).epsilon(1e-12));
  CHECK(*p.at(M::peak_encoder_activation, 8, 100) == Approx(0.5 * 8 * 100 + 1).epsilon(1e-12));
  // a non-bilinear function is interpolated linearly along each axis: s^2 at s = 48
  // between 32 and 64 would be 2560 exactly, linear interpolation gives 2560 + 256
  {
    std::vector<ProfileRecord> q = grid({1, 2}, {32, 64});
    for (auto& r : q) r.forward_encoder_ms = static_cast<double>(r.seqlen * r.seqlen);
    const MeasuredProfile pq = MeasuredProfile::from_records(kMeta, q);
    CHECK(*pq.at(M::forward_encoder, 1, 48) == Approx(0.5 * 1024 + 0.5 * 4096).epsilon(1e-12));
  }
  // below the smallest values: the first cell's plane (the reference extrapolates)
  CHECK(*p.at(M::forward_encoder, 1, 16) == Approx(1 + 2 + 1.6).epsilon(1e-12));
  CHECK(*p.at(M::forward_postprocess, 0.5, 32) == Approx(1.0).epsilon(1e-12));
  // ... clamped at 0
  CHECK(*p.at(M::backward_encoder, 1, 1) >= 0.0);
  // past the largest micro-batch size or sequence length: refused
  CHECK_FALSE(p.at(M::forward_encoder, 9, 64).has_value());
  CHECK_FALSE(p.at(M::forward_encoder, 4, 257).has_value());
  CHECK(p.at(M::forward_encoder, 8, 256).has_value());
  // one value along an axis: constant along it
  const MeasuredProfile one = MeasuredProfile::from_records(kMeta, grid({2}, {32, 64}));
  CHECK(*one.at(M::forward_encoder, 1, 48) == Approx(1 + 4 + 4.8).epsilon(1e-12));
  CHECK_FALSE(one.at(M::forward_encoder, 3, 48).has_value());
  // an incomplete grid is refused
  auto holes = grid({1, 2}, {32, 64});
  holes.pop_back();
  CHECK_THROWS_WITH(MeasuredProfile::from_records(kMeta, holes), Contains("misses mbs 2, seqlen 64"));
}

TEST_CASE("the cost model over a profile: per-layer sums, the reference's stage peak, blocked past the grid",
          "[profile]") {
  auto prof = std::make_shared<const MeasuredProfile>(MeasuredProfile::from_records(kMeta, grid({1, 4, 8}, {32, 64, 256})));
  ModelSpec m;
  m.encoder_layers = 4;
  m.hidden = 64;
  m.heads = 4;
  m.kv_channels = 16;
  m.ffn = 256;
  m.bytes_per_value = 4;
  ClusterSpec cl;
  cl.stages = 2;
  const CostModel cost(m, cl, prof);
  const MicroBatchShape sh{2, 48, 0};
  const StageCost first = cost.stage_cost(0, sh, Recompute::none);
  const StageCost last = cost.stage_cost(1, sh, Recompute::none);
  const double fw = 1 + 4 + 4.8, bw = 0.01 * 96, st = 0.25 * 96, pk = 0.5 * 96 + 1;
  CHECK(first.fw_ms == Approx(2 * fw));
  CHECK(first.bw_ms == Approx(2 * bw));
  CHECK(first.stored_mb == Approx(2 * st));
  CHECK(first.peak_mb == Approx(st + pk));  // the second layer's peak above the first's stored
  CHECK(first.send_mb == Approx(4.0 * 2 * 48 * 64 / 1e6));
  CHECK(last.fw_ms == Approx(2 * fw + 0.5 + 2));  // + the LM head (post-processing)
  CHECK(last.bw_ms == Approx(2 * bw + 1.0 + 48.0 / 64));
  // model state: 4 x parameter MB (weight, gradient, two AdamW moments); embedding on the
  // first stage, the head (the embedding's size) on the last
  CHECK(cost.state_mb(0) == Approx(4 * (2 * 0.125 + 4.0)).epsilon(1e-9));
  CHECK(cost.state_mb(1) == Approx(4 * (2 * 0.125 + 4.0)).epsilon(1e-9));
  // past the grid: blocked (the planner never forms such a micro-batch)
  CHECK(cost.stage_cost(0, MicroBatchShape{16, 32, 0}, Recompute::none).stored_mb >= 1e99);
  CHECK(cost.stage_cost(0, MicroBatchShape{1, 512, 0}, Recompute::none).fw_ms >= 1e99);
  // no recomputation in a profile; a model of other widths does not fit it
  CHECK_THROWS_AS(cost.stage_cost(0, sh, Recompute::full), mlsys::core::ConfigError);
  ModelSpec wide = m;
  wide.hidden = 128;
  CHECK_THROWS_WITH(CostModel(wide, cl, prof), Contains("model.hidden"));
  ModelSpec t5 = m;
  t5.kind = ModelKind::t5;
  t5.decoder_layers = 2;
  CHECK_THROWS_WITH(CostModel(t5, cl, prof), Contains("model.kind"));
}

TEST_CASE("the analytical model exported as a profile: a profile-driven cost model charges the same on the grid",
          "[profile]") {
  ModelSpec m;  // GPT-like, 8 layers, 2 stages: stage 0 has the embedding, stage 1 the head
  m.encoder_layers = 8;
  m.hidden = 256;
  m.heads = 4;
  m.kv_channels = 64;
  m.ffn = 1024;
  m.vocab = 1000;
  ClusterSpec cl;
  cl.stages = 2;
  const CostModel analytical(m, cl);
  const std::vector<int64_t> mbs = {1, 2, 4, 8}, seq = {32, 64, 128};
  const auto recs = analytical_profile_records(analytical, mbs, seq);
  REQUIRE(recs.size() == mbs.size() * seq.size());
  CHECK(recs[1].mbs == 1);
  CHECK(recs[1].seqlen == 64);  // mbs-major
  // written and read back through the files: text round-trips the doubles
  mlsys::test::TempDir tmp("analytical-profile");
  const ProfileMetadata meta{1, m.hidden, m.heads, m.kv_channels, m.ffn};
  std::filesystem::create_directories(tmp.path);
  for (const auto& r : recs) std::ofstream(tmp.path / profile_file_name(meta, r.seqlen, r.mbs)) << profile_file_text(r);
  const CostModel profiled(m, cl, std::make_shared<const MeasuredProfile>(MeasuredProfile::read(tmp.path)));
  for (int64_t b : mbs) {
    for (int64_t s : seq) {
      INFO("mbs " << b << " seqlen " << s);
      const MicroBatchShape sh{b, s, 0};
      for (int stage = 0; stage < 2; ++stage) {
        const StageCost a = analytical.stage_cost(stage, sh, Recompute::none);
        const StageCost p = profiled.stage_cost(stage, sh, Recompute::none);
        CHECK(p.fw_ms == Approx(a.fw_ms).epsilon(1e-12));
        CHECK(p.bw_ms == Approx(a.bw_ms).epsilon(1e-12));
        CHECK(p.stored_mb == Approx(a.stored_mb).epsilon(1e-12));
        CHECK(p.send_mb == Approx(a.send_mb).epsilon(1e-12));
        if (stage == 0) CHECK(p.peak_mb == Approx(a.peak_mb).epsilon(1e-12));  // no head: same peak
        // the head's transient memory has no profile line: the profiled last stage peaks lower or equal
        if (stage == 1) CHECK(p.peak_mb <= a.peak_mb * (1 + 1e-12));
      }
    }
  }
  // the model state charged is the analytical one (parameter MB written as state / 4)
  CHECK(profiled.state_mb(0) == Approx(analytical.state_mb(0)).epsilon(1e-12));
  CHECK(profiled.state_mb(1) == Approx(analytical.state_mb(1)).epsilon(1e-12));
  // only the analytical decoder-only model can be exported
  ModelSpec t5 = m;
  t5.kind = ModelKind::t5;
  t5.decoder_layers = 8;
  CHECK_THROWS_WITH(analytical_profile_records(CostModel(t5, cl), mbs, seq), Contains("model.kind"));
  CHECK_THROWS_WITH(analytical_profile_records(profiled, mbs, seq), Contains("model.profile"));
}

TEST_CASE("profile folders that are refused name the file and line", "[profile]") {
  mlsys::test::TempDir tmp("badprofile");
  auto expect = [&](const std::string& name, const std::string& text, const std::string& what) {
    const auto dir = tmp.path / name.substr(0, 6);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::ofstream(dir / name) << text;
    CHECK_THROWS_WITH(MeasuredProfile::read(dir), Contains(what));
    CHECK_THROWS_AS(MeasuredProfile::read(dir), mlsys::core::InputError);
  };
  const std::string good = profile_file_text(grid({1}, {32}).front());
  const std::string name = profile_file_name(kMeta, 32, 1);
  expect(name, "forward_encoder nan\n" + good.substr(good.find('\n') + 1), name + ":1: forward_encoder");
  expect(name, good + "forward_decoder 1.0\n", name + ":9: unknown key 'forward_decoder'");
  expect(name, good.substr(0, good.rfind("model_encoder")), "missing line 'model_encoder");
  expect(name, good + good.substr(0, good.find('\n') + 1), "forward_encoder given twice");
  expect(name, "forward_encoder -1\n" + good.substr(good.find('\n') + 1), "expected a finite number >= 0, found '-1'");
  expect("tp1_hs64_ah4_kv16_ffhs256_mbs1.txt", good, "expected 7 integers in the file name");
  expect("tp1_hs64_ah4_kv16_ffhs256_enc32_dec8_mbs1.txt", good, "encoder-decoder");
  // fuzz_profile (2026-12-08): a file name with a newline was quoted raw (a two-line error).
  {
    const auto dir = tmp.path / "newline";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "tp1_hs64\nx.txt") << good;
    try {
      (void)MeasuredProfile::read(dir);
      FAIL("no error");
    } catch (const mlsys::core::InputError& e) {
      const std::string what = e.what();
      CHECK(what.find('\n') == std::string::npos);
      CHECK_THAT(what, Contains("tp1_hs64\\x0ax.txt: expected 7 integers in the file name"));
    }
  }
  CHECK_THROWS_WITH(MeasuredProfile::read(tmp.path / "none"), Contains("found nothing"));
  const auto empty = tmp.path / "empty";
  std::filesystem::create_directories(empty);
  CHECK_THROWS_WITH(MeasuredProfile::read(empty), Contains("no profile files"));
}
