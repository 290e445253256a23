// lib/lora's PRoLoRA: LoRA as the special cases m = n = 1 and u = r (outputs and gradients),
// the materialised ΔW against the index formula of the notes (§3.3), the chunked forward
// against x·ΔWᵀ, rectified-init statistics against LoRA's (§3.4), parameter counts
// (§3.5, the LLaMA2-7B table from a config.json alone), HDF5/PEFT round trips, merge,
// the config (defaults file, variants) and the budget plan.
#include "tests/support/torch_catch.hpp"

#include <c10/core/GradMode.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/config.hpp"
#include "core/error.hpp"
#include "lora/adapter_kind.hpp"
#include "lora/finetune_config.hpp"
#include "lora/lora.hpp"
#include "lora/prolora.hpp"
#include "lora/prolora_plan.hpp"
#include "nn/bert.hpp"
#include "tests/support/expect_error.hpp"
#include "tests/support/harness.hpp"

namespace fs = std::filesystem;
using namespace mlsys;

namespace {
const fs::path kRoot = MLSYS_SOURCE_ROOT;
const fs::path kMiniLM = kRoot / ".deps/models/all-MiniLM-L6-v2";

nn::BertClassifier tiny(int64_t labels = 3, uint64_t seed = 7, int64_t hidden = 16, int64_t inter = 24) {
  nn::BertConfig c;
  c.vocab_size = 60;
  c.hidden_size = hidden;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = inter;
  c.max_position_embeddings = 32;
  return nn::BertClassifier::random(c, labels, seed);
}

lora::ProloraAdapter make_adapter(const lora::ProloraLayout& l, uint64_t seed, lora::ProloraForward f,
                                  double scale = 2.0) {
  at::manual_seed(static_cast<int64_t>(seed));
  const int64_t R = l.shared();
  auto leaf = [](at::Tensor t) { return t.set_requires_grad(true); };
  return lora::ProloraAdapter(leaf(at::randn({R, l.chunk_a()})), leaf(at::randn({l.chunk_b(), R})),
                              leaf(at::randn({l.u, l.d_in})), leaf(at::randn({l.d_out, l.u})), l, scale, 0.0, f);
}

// The notes' formula, by loops: A_full[i, k·c_A + j] = A0[(i + k·s_A) mod R, j] and
// B_full[k·c_B + j, i] = B0[j, (i + k·s_B) mod R], unshared ranks last, truncated to d_in/d_out.
std::pair<at::Tensor, at::Tensor> by_formula(const lora::ProloraAdapter& ad) {
  const auto& l = ad.layout;
  const int64_t R = l.shared(), cA = l.chunk_a(), cB = l.chunk_b();
  at::Tensor A = at::zeros({l.r, l.d_in}), B = at::zeros({l.d_out, l.r});
  const at::Tensor a0t = ad.A0.detach(), b0t = ad.B0.detach();
  auto a0 = a0t.accessor<float, 2>();
  auto b0 = b0t.accessor<float, 2>();
  auto a = A.accessor<float, 2>();
  auto b = B.accessor<float, 2>();
  for (int64_t i = 0; i < R; ++i) {
    for (int64_t k = 0; k < l.m; ++k) {
      for (int64_t j = 0; j < cA && k * cA + j < l.d_in; ++j) a[i][k * cA + j] = a0[(i + k * l.stride_a) % R][j];
    }
    for (int64_t k = 0; k < l.n; ++k) {
      for (int64_t j = 0; j < cB && k * cB + j < l.d_out; ++j) b[k * cB + j][i] = b0[j][(i + k * l.stride_b) % R];
    }
  }
  for (int64_t t = 0; t < l.u; ++t) {
    A[R + t] = ad.A_u.detach()[t];
    B.select(1, R + t).copy_(ad.B_u.detach().select(1, t));
  }
  return {A, B};
}

// Output and input gradient of an adapter's delta on x, with the gradients of its tensors.
struct Pass {
  at::Tensor out;
  std::vector<at::Tensor> grads;
};
Pass run_pass(const nn::LinearAdapter& ad, const at::Tensor& x, std::vector<at::Tensor> params, const at::Tensor& w) {
  for (auto& p : params) p.mutable_grad() = at::Tensor();
  at::Tensor out = ad.delta(x, true);
  (out * w).sum().backward();
  Pass r{out.detach(), {}};
  for (auto& p : params) r.grads.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));  // an empty part gets none
  return r;
}

void write_llama_config(const fs::path& dir, int64_t hidden, int64_t inter, int64_t layers, int64_t heads, int64_t kv,
                        int64_t vocab) {
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << nlohmann::json{{"model_type", "llama"},
                                                       {"hidden_size", hidden},
                                                       {"intermediate_size", inter},
                                                       {"num_hidden_layers", layers},
                                                       {"num_attention_heads", heads},
                                                       {"num_key_value_heads", kv},
                                                       {"vocab_size", vocab},
                                                       {"hidden_act", "silu"},
                                                       {"max_position_embeddings", 4096},
                                                       {"rms_norm_eps", 1e-5}}
                                            .dump();
}

}  // namespace

TEST_CASE("PRoLoRA with m = n = 1, u = 0 and with u = r is LoRA exactly: outputs and gradients", "[prolora]") {
  const int64_t d_in = 12, d_out = 10, r = 4;
  at::manual_seed(3);
  const at::Tensor x = at::randn({3, 5, d_in});
  const at::Tensor w = at::randn({3, 5, d_out});
  const at::Tensor A = at::randn({r, d_in}), B = at::randn({d_out, r});
  lora::LoraAdapter ref(A.clone().set_requires_grad(true), B.clone().set_requires_grad(true), 0.5, 0.0);
  const Pass want = run_pass(ref, x, {ref.A, ref.B}, w);
  for (auto forward : {lora::ProloraForward::chunked, lora::ProloraForward::materialized}) {
    SECTION(std::string("m = n = 1, u = 0, ") + (forward == lora::ProloraForward::chunked ? "chunked" : "materialized")) {
      const auto l = lora::prolora_layout(d_in, d_out, r, 0, 1, 1, true);
      lora::ProloraAdapter ad(A.clone().set_requires_grad(true), B.clone().set_requires_grad(true),
                              at::zeros({0, d_in}).set_requires_grad(true), at::zeros({d_out, 0}).set_requires_grad(true),
                              l, 0.5, 0.0, forward);
      const Pass got = run_pass(ad, x, {ad.A0, ad.B0}, w);
      CHECK(at::equal(got.out, want.out));
      CHECK(at::equal(got.grads[0], want.grads[0]));
      CHECK(at::equal(got.grads[1], want.grads[1]));
    }
    SECTION(std::string("u = r, m = n = 3, ") + (forward == lora::ProloraForward::chunked ? "chunked" : "materialized")) {
      const auto l = lora::prolora_layout(d_in, d_out, r, r, 3, 3, true);
      lora::ProloraAdapter ad(at::zeros({0, l.chunk_a()}).set_requires_grad(true),
                              at::zeros({l.chunk_b(), 0}).set_requires_grad(true), A.clone().set_requires_grad(true),
                              B.clone().set_requires_grad(true), l, 0.5, 0.0, forward);
      const Pass got = run_pass(ad, x, {ad.A_u, ad.B_u}, w);
      CHECK(at::equal(got.out, want.out));
      CHECK(at::equal(got.grads[0], want.grads[0]));
      CHECK(at::equal(got.grads[1], want.grads[1]));
    }
  }
  SECTION("m = n = 1 with u = 1 unshared: the same ΔW split in two sums (float rounding only)") {
    const auto l = lora::prolora_layout(d_in, d_out, r, 1, 1, 1, true);
    lora::ProloraAdapter ad(A.narrow(0, 0, 3).clone().set_requires_grad(true),
                            B.narrow(1, 0, 3).clone().set_requires_grad(true),
                            A.narrow(0, 3, 1).clone().set_requires_grad(true),
                            B.narrow(1, 3, 1).clone().set_requires_grad(true), l, 0.5, 0.0,
                            lora::ProloraForward::chunked);
    const Pass got = run_pass(ad, x, {ad.A0, ad.B0, ad.A_u, ad.B_u}, w);
    CHECK(at::allclose(got.out, want.out, 1e-5, 1e-6));
    CHECK(at::allclose(at::cat({got.grads[0], got.grads[2]}, 0), want.grads[0], 1e-5, 1e-6));
    CHECK(at::allclose(at::cat({got.grads[1], got.grads[3]}, 1), want.grads[1], 1e-5, 1e-6));
  }
}

TEST_CASE("PRoLoRA on a model with m = n = 1 gives LoRA's logits (chunked: bit for bit)", "[prolora]") {
  auto lm = tiny(2, 5);
  auto pm = tiny(2, 5);
  lora::LoraConfig cfg;
  cfg.targets = {"all-linear"};
  cfg.r = 3;
  auto lset = lora::attach_lora(lm, cfg, 11);
  lora::ProloraConfig pc;
  pc.u = 0;
  pc.m = pc.n = 1;
  pc.forward = lora::ProloraForward::chunked;
  auto pset = lora::attach_prolora(pm, cfg, pc, 11);
  REQUIRE(pset.adapters.size() == lset.adapters.size());
  c10::NoGradGuard ng;
  for (auto& [n, ad] : lset.adapters) {
    ad->B.normal_(0, 0.3);
    pset.adapters.at(n)->A0.copy_(ad->A);
    pset.adapters.at(n)->B0.copy_(ad->B);
  }
  const at::Tensor ids = at::randint(1, 60, {3, 9}, at::kLong), mask = at::ones({3, 9}, at::kLong);
  const at::Tensor want = lm.forward(ids, mask);
  CHECK(at::equal(pm.forward(ids, mask), want));
  // the materialised form: the same up to float rounding in the model (bit for bit at the
  // adapter level, first test case)
  for (auto& [n, ad] : pset.adapters) ad->forward = lora::ProloraForward::materialized;
  CHECK(at::allclose(pm.forward(ids, mask), want, 1e-6, 1e-7));
}

TEST_CASE("the materialised ΔW is the index formula of the notes; the chunked forward computes x·ΔWᵀ", "[prolora]") {
  struct Case {
    int64_t d_in, d_out, r, u, m, n;
    bool rotation;
  };
  // divisible and not (the last chunk truncated), u = 0 and u > 0, rotation on and off
  for (const Case& c : {Case{12, 8, 4, 0, 2, 2, true}, Case{10, 7, 5, 1, 3, 2, true}, Case{9, 11, 6, 2, 4, 3, true},
                        Case{12, 8, 4, 1, 2, 4, false}, Case{16, 16, 8, 1, 8, 8, true}}) {
    INFO("d_in " << c.d_in << " d_out " << c.d_out << " r " << c.r << " u " << c.u << " m " << c.m << " n " << c.n);
    const auto l = lora::prolora_layout(c.d_in, c.d_out, c.r, c.u, c.m, c.n, c.rotation);
    const int64_t R = c.r - c.u;
    CHECK(l.stride_a == (c.rotation ? std::max<int64_t>(R / c.m, 1) : 0));
    CHECK(l.stride_b == (c.rotation ? std::max<int64_t>(R / c.n, 1) : 0));
    auto ad = make_adapter(l, 21, lora::ProloraForward::chunked, 0.75);
    const auto [A, B] = by_formula(ad);
    CHECK(at::equal(lora::materialize_a(ad.A0.detach(), ad.A_u.detach(), l), A));
    CHECK(at::equal(lora::materialize_b(ad.B0.detach(), ad.B_u.detach(), l), B));
    const at::Tensor dW = at::matmul(B, A) * 0.75;
    CHECK(at::allclose(ad.delta_weight().detach(), dW, 1e-5, 1e-5));
    const at::Tensor x = at::randn({4, 3, c.d_in});
    const at::Tensor want = at::matmul(x, dW.t());
    CHECK(at::allclose(ad.delta(x, false).detach(), want, 1e-4, 1e-5));
    auto mat = make_adapter(l, 21, lora::ProloraForward::materialized, 0.75);
    CHECK(at::allclose(mat.delta(x, false).detach(), want, 1e-4, 1e-5));
    // the same gradients through both forms
    const at::Tensor w = at::randn_like(want);
    const Pass pc = run_pass(ad, x, {ad.A0, ad.B0, ad.A_u, ad.B_u}, w);
    const Pass pmat = run_pass(mat, x, {mat.A0, mat.B0, mat.A_u, mat.B_u}, w);
    for (size_t i = 0; i < 4; ++i) CHECK(at::allclose(pc.grads[i], pmat.grads[i], 1e-4, 1e-5));
    if (c.u == 0 && c.d_in % c.m == 0 && c.d_out % c.n == 0) {
      // block (output chunk a, input chunk b) = Σ_i B0[:, i]·A0[(i + b·s_A − a·s_B) mod R, :]: only the
      // relative shift matters (the notes' "relative displacement")
      const int64_t cA = l.chunk_a(), cB = l.chunk_b();
      for (int64_t a = 0; a < c.n; ++a) {
        for (int64_t b = 0; b < c.m; ++b) {
          at::Tensor blk = at::zeros({cB, cA});
          for (int64_t i = 0; i < R; ++i) {
            const int64_t j = (((i + b * l.stride_a - a * l.stride_b) % R) + R) % R;
            blk += at::outer(ad.B0.detach().select(1, i), ad.A0.detach()[j]);
          }
          CHECK(at::allclose(at::matmul(B, A).narrow(0, a * cB, cB).narrow(1, b * cA, cA), blk, 1e-4, 1e-5));
        }
      }
    }
    if (!c.rotation) {
      // CLoRA: every chunk of A_full's shared rows is A0 itself
      for (int64_t k = 0; k * l.chunk_a() < c.d_in; ++k) {
        const int64_t w = std::min(l.chunk_a(), c.d_in - k * l.chunk_a());
        CHECK(at::equal(A.narrow(0, 0, R).narrow(1, k * l.chunk_a(), w), ad.A0.detach().narrow(1, 0, w)));
      }
    }
  }
}

TEST_CASE("rectified init: A's bound and the variance of A·x are LoRA's; without it √m too large", "[prolora]") {
  const int64_t H = 1024, m = 4, r = 8;
  auto base = tiny(2, 1, H, 64);
  lora::LoraConfig cfg;
  cfg.targets = {"query", "value"};
  cfg.r = r;
  at::manual_seed(5);
  const at::Tensor x = at::randn({H, 2048});
  const at::Tensor ids = at::randint(1, 60, {2, 6}, at::kLong), mask = at::ones({2, 6}, at::kLong);
  c10::NoGradGuard ng;
  auto variance_of = [&](const at::Tensor& A) { return at::matmul(A, x).var().item<double>(); };
  auto lm = tiny(2, 1, H, 64);
  auto lset = lora::attach_lora(lm, cfg, 4);
  double lora_var = 0;
  for (auto& [n, ad] : lset.adapters) lora_var += variance_of(ad->A) / 4;
  CHECK(lora_var == Approx(1.0 / 3.0).epsilon(0.1));  // d_in·Var(U(±1/√d_in)) = 1/3
  for (bool rectified : {true, false}) {
    auto pm = tiny(2, 1, H, 64);
    const at::Tensor before = pm.forward(ids, mask);
    lora::ProloraConfig pc;
    pc.u = 1;
    pc.m = pc.n = m;
    pc.rectified_init = rectified;
    auto pset = lora::attach_prolora(pm, cfg, pc, 4);
    CHECK(at::equal(pm.forward(ids, mask), before));  // B0 = B_u = 0: ΔW = 0 at start
    double var = 0;
    for (auto& [n, ad] : pset.adapters) {
      CHECK(ad->B0.abs().max().item<double>() == 0);
      CHECK(ad->B_u.abs().max().item<double>() == 0);
      const double bound = rectified ? 1.0 / std::sqrt(double(H)) : 1.0 / std::sqrt(double(H / m));
      CHECK(ad->A0.abs().max().item<double>() <= bound);
      CHECK(ad->A0.abs().max().item<double>() > 0.95 * bound);  // the whole range is used
      CHECK(ad->A_u.abs().max().item<double>() <= 1.0 / std::sqrt(double(H)));
      var += variance_of(lora::materialize_a(ad->A0, ad->A_u, ad->layout)) / 4;
    }
    INFO("rectified " << rectified << ": Var(A·x) " << var << " vs LoRA " << lora_var);
    if (rectified) {
      CHECK(var / lora_var == Approx(1.0).epsilon(0.15));
    } else {
      // 7 of 8 ranks come from the c_A-wide chunk with a √m larger bound: variance ×m on them
      CHECK(var / lora_var == Approx((7.0 * m + 1.0) / 8.0).epsilon(0.15));
    }
  }
}

TEST_CASE("parameter counts: R(⌈d_in/m⌉ + ⌈d_out/n⌉) + u(d_in + d_out), and what is trained", "[prolora]") {
  CHECK(lora::prolora_layout(4096, 4096, 8, 1, 2, 2, true).parameters() == 7 * (2048 + 2048) + 8192);
  CHECK(lora::prolora_layout(10, 7, 5, 1, 3, 2, true).parameters() == 4 * (4 + 4) + 17);  // ceilings
  CHECK(lora::prolora_layout(384, 1536, 8, 8, 1, 1, true).parameters() == lora::lora_parameters(384, 1536, 8));
  auto m = tiny(2, 3);
  lora::LoraConfig cfg;
  cfg.targets = {"all-linear"};
  cfg.r = 4;
  lora::FinetuneConfig fc;
  fc.prolora.u = 1;
  fc.prolora.m = 3;
  fc.prolora.n = 2;
  auto set = lora::prolora_kind().attach_fresh(m, fc, cfg, 1);
  int64_t trained = 0;
  for (const auto& [n, t] : set->trainable(c10::Device(c10::kCPU))) trained += t.numel();
  const auto report = set->report();
  CHECK(report["parameters"].get<int64_t>() == trained);
  int64_t by_formula = 0, lora_count = 0;
  for (const auto& mod : report["modules"]) {
    const int64_t di = mod["d_in"], dout = mod["d_out"];
    by_formula += 3 * ((di + 2) / 3 + (dout + 1) / 2) + (di + dout);
    lora_count += 4 * (di + dout);
  }
  CHECK(report["parameters"].get<int64_t>() == by_formula);
  CHECK(report["lora_parameters"].get<int64_t>() == lora_count);
}

TEST_CASE("the LLaMA2-7B table of the notes from a config.json alone; stories260K's counts", "[prolora]") {
  const test::TempDir tmp("prolora-7b");
  write_llama_config(tmp / "llama2-7b", 4096, 11008, 32, 32, 32, 32000);
  const auto ml = lora::model_linears(tmp / "llama2-7b");
  std::vector<std::string> names;
  for (const auto& l : ml.linears) names.push_back(l.name);
  const auto chosen = lora::resolve_targets(names, {"all-linear"}, ml.output_layer);
  REQUIRE(chosen.size() == 32 * 7);
  std::vector<lora::LinearShape> shapes;
  for (const auto& l : ml.linears) {
    if (l.name != "lm_head") shapes.push_back(l);
  }
  CHECK(lora::count_parameters(shapes, 8, 8, 1, 1).parameters == 19'988'480);
  CHECK(lora::count_parameters(shapes, 8, 0, 2, 2).lora_parameters == 19'988'480);
  CHECK(lora::count_parameters(shapes, 8, 0, 2, 2).parameters == 9'994'240);
  CHECK(lora::count_parameters(shapes, 8, 1, 2, 2).parameters == 11'243'520);
  CHECK(lora::count_parameters(shapes, 16, 1, 4, 4).parameters == 11'868'160);
  CHECK(lora::count_parameters(shapes, 32, 1, 8, 8).parameters == 12'180'480);
  // stories260K (dim 64, hidden 172, 5 layers, 8 heads over 4 kv heads), all linears, r = 4
  write_llama_config(tmp / "stories260K", 64, 172, 5, 8, 4, 512);
  const auto s = lora::model_linears(tmp / "stories260K");
  std::vector<lora::LinearShape> st(s.linears.begin(), s.linears.end() - 1);
  CHECK(lora::count_parameters(st, 4, 4, 1, 1).parameters == 23'120);
  CHECK(lora::count_parameters(st, 4, 1, 2, 2).parameters == 14'450);
}

TEST_CASE("Linear shapes from config.json alone match the loaded model's weights", "[prolora]") {
  REQUIRE(fs::exists(kMiniLM / "model.safetensors"));
  const auto ml = lora::model_linears(kMiniLM);
  auto model = nn::BertClassifier::load(kMiniLM, 3, 0);
  const auto names = model.linear_names();
  REQUIRE(ml.linears.size() == names.size());
  CHECK(ml.output_layer == model.output_layer());
  for (size_t i = 0; i + 1 < names.size(); ++i) {
    CHECK(ml.linears[i].name == names[i]);
    const at::Tensor& W = model.param(names[i] + ".weight");
    CHECK(ml.linears[i].d_out == W.size(0));
    CHECK(ml.linears[i].d_in == W.size(1));
  }
}

TEST_CASE("PRoLoRA adapters: HDF5 round trip (compact), PEFT export reloads to the same outputs, merge", "[prolora]") {
  auto m = tiny(2, 9);
  lora::LoraConfig cfg;
  cfg.targets = {"query", "intermediate.dense", "output.dense"};
  cfg.r = 5;
  cfg.alpha = 7;
  lora::ProloraConfig pc;
  pc.u = 2;
  pc.m = 3;
  pc.n = 2;
  auto set = lora::attach_prolora(m, cfg, pc, 2);
  {
    c10::NoGradGuard ng;
    for (auto& [n, ad] : set.adapters) {
      ad->B0.normal_(0, 0.3);
      ad->B_u.normal_(0, 0.3);
    }
  }
  const auto st = lora::prolora_state_of(m, set, {"neg", "pos"}, "models/tiny");
  const test::TempDir scratch("prolora-rt");
  lora::save_prolora_h5(scratch / "adapter.h5", st, {"test", "{}"});
  const auto back = lora::load_prolora_h5(scratch / "adapter.h5");
  REQUIRE(back.modules.size() == st.modules.size());
  for (const auto& [n, mod] : st.modules) {
    const auto& b = back.modules.at(n);
    CHECK(at::equal(b.a0, mod.a0));
    CHECK(at::equal(b.b0, mod.b0));
    CHECK(at::equal(b.a_u, mod.a_u));
    CHECK(at::equal(b.b_u, mod.b_u));
    CHECK(b.layout.stride_a == mod.layout.stride_a);
    CHECK(b.layout.m == 3);
  }
  CHECK(back.common.labels == std::vector<std::string>{"neg", "pos"});
  CHECK(back.cfg.u == 2);
  CHECK(back.lora.alpha == 7);
  const at::Tensor ids = at::randint(1, 60, {3, 8}, at::kLong), mask = at::ones({3, 8}, at::kLong);
  c10::NoGradGuard ng;
  const at::Tensor want = m.forward(ids, mask);
  auto m2 = tiny(2, 9);
  lora::attach_prolora_state(m2, back, "adapter.h5");
  CHECK(at::equal(m2.forward(ids, mask), want));
  // PEFT: the materialised form, read back as LoRA
  lora::export_peft(scratch / "peft", lora::prolora_as_lora(back));
  const auto peft = lora::import_peft(scratch / "peft");
  CHECK(peft.cfg.r == 5);
  CHECK(peft.cfg.alpha == 7);
  CHECK(peft.ab.size() == 8);  // "output.dense" also names attention.output.dense
  auto m3 = tiny(2, 9);
  lora::attach_state(m3, peft, "peft");
  const at::Tensor via_peft = m3.forward(ids, mask);
  INFO("max |logit difference| " << (via_peft - want).abs().max().item<double>());
  CHECK(at::allclose(via_peft, want, 1e-5, 1e-5));
  CHECK(!at::allclose(want, tiny(2, 9).forward(ids, mask), 1e-3, 1e-3));  // the adapter does change the logits
  // merge: the same logits from the merged weights alone
  lora::merge(m, set);
  m.clear_adapters();
  CHECK(at::allclose(m.forward(ids, mask), want, 1e-5, 1e-5));
  // a LoRA file is not a PRoLoRA file
  lora::save_adapter_h5(scratch / "lora.h5", peft, {"test", "{}"});
  test::expect_error([&] { (void)lora::load_prolora_h5(scratch / "lora.h5"); }, {"lora.h5", "lora-finetune adapter"});
}

TEST_CASE("prolora-finetune config: the defaults file equals the built-in defaults; variants are checked", "[prolora]") {
  const auto& kind = lora::prolora_kind();
  const auto builtin = lora::read_finetune_config(core::parse_config("{}", "<builtin>"), kind);
  const auto file = lora::read_finetune_config(
      core::load_config((kRoot / "configs/prolora-finetune/default.json").string()), kind);
  CHECK(builtin.resolved.dump() == file.resolved.dump());
  CHECK(builtin.prolora.u == 1);
  CHECK(builtin.prolora.m == 2);
  CHECK(builtin.resolved.contains("prolora"));
  auto read = [&](const std::string& text) { return lora::read_finetune_config(core::parse_config(text, "<t>"), kind); };
  const auto rolora = read(R"({"prolora": {"variant": "rolora"}})");
  CHECK(rolora.prolora.u == 0);
  CHECK(rolora.prolora.rotation);
  const auto clora = read(R"({"prolora": {"variant": "clora"}})");
  CHECK(clora.prolora.u == 0);
  CHECK_FALSE(clora.prolora.rotation);
  test::expect_error<core::ConfigError>([&] { (void)read(R"({"prolora": {"variant": "clora", "rotation": true}})"); },
                                        {"prolora.rotation"});
  test::expect_error<core::ConfigError>([&] { (void)read(R"({"prolora": {"variant": "rolora", "u": 2}})"); },
                                        {"prolora.u"});
  test::expect_error<core::ConfigError>([&] { (void)read(R"({"lora": {"r": 4}, "prolora": {"u": 5}})"); },
                                        {"prolora.u", "lora.r"});
  test::expect_error<core::ConfigError>([&] { (void)read(R"({"prolora": {"m": 0}})"); }, {"prolora.m"});
  test::expect_error<core::ConfigError>([&] { (void)read(R"({"prolora": {"forward": "fast"}})"); }, {"prolora.forward"});
  // lora-finetune knows no prolora section
  test::expect_error<core::ConfigError>(
      [&] { (void)lora::read_finetune_config(core::parse_config(R"({"prolora": {"u": 1}})", "<t>")); }, {"prolora"});
  // a sharing rate wider than a module is refused when the adapters are attached
  auto m = tiny(2, 1);
  lora::LoraConfig lc;
  lc.targets = {"query"};
  lora::ProloraConfig pc;
  pc.m = 17;
  test::expect_error<core::ConfigError>([&] { (void)lora::attach_prolora(m, lc, pc, 1); }, {"prolora.m", "16"});
}

TEST_CASE("plan: per rank the most parameters within the budget", "[prolora]") {
  const test::TempDir tmp("prolora-plan");
  write_llama_config(tmp / "m", 4096, 11008, 32, 32, 32, 32000);
  const auto ml = lora::model_linears(tmp / "m");
  const std::vector<lora::LinearShape> shapes(ml.linears.begin(), ml.linears.end() - 1);
  const int64_t budget = 19'988'480;  // LoRA r = 8
  const auto plans = lora::plan_budget(shapes, budget, {4, 8, 16, 32}, {1, 2, 4, 8});
  REQUIRE(plans.size() == 4);
  CHECK(plans[0].r == 32);
  for (const auto& p : plans) {
    CHECK(p.parameters <= budget);
    CHECK(p.parameters == lora::count_parameters(shapes, p.r, p.u, p.m, p.n).parameters);
    // nothing with more parameters within the budget at this rank
    for (int64_t u = 0; u <= p.r; ++u) {
      for (int64_t mm : {1, 2, 4, 8}) {
        for (int64_t nn : {1, 2, 4, 8}) {
          if (u == p.r && (mm != 1 || nn != 1)) continue;
          const int64_t c = lora::count_parameters(shapes, p.r, u, mm, nn).parameters;
          if (c <= budget) CHECK(c <= p.parameters);
        }
      }
    }
  }
  CHECK(plans[1].r == 16);
  CHECK(plans[2].r == 8);
  CHECK(plans[2].u == 8);  // at LoRA's own rank the budget is LoRA itself
  CHECK(plans[3].r == 4);
  CHECK(plans[3].parameters == budget / 2);  // LoRA r = 4: all it can spend
  CHECK(lora::plan_budget(shapes, 1000, {4}, {1, 2}).empty());
  // at least one unshared rank: the best PRoLoRA proper at r = 16 within LoRA r = 8's budget
  const auto proper = lora::plan_budget(shapes, budget, {16}, {1, 2, 4, 8}, 1);
  REQUIRE(proper.size() == 1);
  CHECK(proper[0].u >= 1);
  CHECK(proper[0].parameters <= budget);
  CHECK(proper[0].parameters > plans[2].parameters / 2);
}
