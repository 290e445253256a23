// lib/nn LLaMA: the converted llama2.c stories260K checkpoint gives the logits of a direct
// port of llama2.c's forward (adjacent-pair RoPE, the weights read straight from the .bin)
// within 1e-4; convert -> save -> load round trip, sharded index; bad .bin and config.json
// inputs; the causal mask; no NaN under HiddenKey dropout with padding (key 0 kept).
#include "tests/support/torch_catch.hpp"

#include <c10/core/GradMode.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "nn/llama.hpp"
#include "nn/llama2c.hpp"
#include "tensor/safetensors.hpp"
#include "tests/support/expect_error.hpp"
#include "tests/support/harness.hpp"
#include "tests/support/tiny_llama.hpp"

namespace fs = std::filesystem;
using namespace mlsys;

namespace {
const fs::path kRoot = MLSYS_SOURCE_ROOT;
// a copy of ../shared/models/stories260K/stories260K.bin (CI has no ../shared)
const fs::path kStories = kRoot / "tests/nn/fixtures/stories260K/stories260K.bin";


// ------------------------------------------------------------------ llama2.c, ported as is

// run.c's Config/TransformerWeights/forward() over the raw file, float math as in C but
// with dot products accumulated in double (the reference's own rounding stays far below
// the tolerance, whatever BLAS the model runs on).
struct RefLlama2c {
  int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
  std::vector<float> data;
  const float *emb, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3, *rms_final, *wcls;

  explicit RefLlama2c(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    int h[7];
    in.read(reinterpret_cast<char*>(h), sizeof h);
    dim = h[0], hidden_dim = h[1], n_layers = h[2], n_heads = h[3], n_kv_heads = h[4], seq_len = h[6];
    const bool shared = h[5] > 0;
    vocab_size = std::abs(h[5]);
    data.assign((fs::file_size(path) - sizeof h) / 4, 0.0F);
    in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size() * 4));
    const int hs = dim / n_heads;
    const float* p = data.data();
    const long nl = n_layers;
    emb = p, p += static_cast<long>(vocab_size) * dim;
    rms_att = p, p += nl * dim;
    wq = p, p += nl * dim * (n_heads * hs);
    wk = p, p += nl * dim * (n_kv_heads * hs);
    wv = p, p += nl * dim * (n_kv_heads * hs);
    wo = p, p += nl * (n_heads * hs) * dim;
    rms_ffn = p, p += nl * dim;
    w1 = p, p += nl * dim * hidden_dim;
    w2 = p, p += nl * hidden_dim * dim;
    w3 = p, p += nl * dim * hidden_dim;
    rms_final = p, p += dim;
    p += seq_len * hs / 2;
    p += seq_len * hs / 2;
    wcls = shared ? emb : p;
  }

  static void rmsnorm(float* o, const float* x, const float* w, int n) {
    double acc = 0;
    for (int j = 0; j < n; ++j) acc += static_cast<double>(x[j]) * x[j];
    const float ss = static_cast<float>(1.0 / std::sqrt(acc / n + 1e-5));
    for (int j = 0; j < n; ++j) o[j] = w[j] * (ss * x[j]);
  }
  static void matmul(float* xout, const float* x, const float* w, int n, int d) {  // W (d,n) @ x (n,)
    for (int i = 0; i < d; ++i) {
      double v = 0;
      for (int j = 0; j < n; ++j) v += static_cast<double>(w[static_cast<long>(i) * n + j]) * x[j];
      xout[i] = static_cast<float>(v);
    }
  }

  // logits [L, vocab] of a token sequence, one position at a time with a KV cache
  [[nodiscard]] std::vector<float> logits(const std::vector<int64_t>& tokens) const {
    const int hs = dim / n_heads, kv_dim = dim * n_kv_heads / n_heads, kv_mul = n_heads / n_kv_heads;
    const int L = static_cast<int>(tokens.size());
    std::vector<float> x(dim), xb(dim), xb2(dim), hb(hidden_dim), hb2(hidden_dim), q(dim), att(L);
    std::vector<float> kc(static_cast<size_t>(n_layers) * L * kv_dim), vc(kc.size());
    std::vector<float> out(static_cast<size_t>(L) * vocab_size);
    for (int pos = 0; pos < L; ++pos) {
      std::memcpy(x.data(), emb + tokens[pos] * dim, dim * sizeof(float));
      for (int l = 0; l < n_layers; ++l) {
        const long lo = static_cast<long>(l);
        rmsnorm(xb.data(), x.data(), rms_att + lo * dim, dim);
        float* k = kc.data() + (lo * L + pos) * kv_dim;
        float* v = vc.data() + (lo * L + pos) * kv_dim;
        matmul(q.data(), xb.data(), wq + lo * dim * dim, dim, dim);
        matmul(k, xb.data(), wk + lo * dim * kv_dim, dim, kv_dim);
        matmul(v, xb.data(), wv + lo * dim * kv_dim, dim, kv_dim);
        for (int i = 0; i < dim; i += 2) {  // RoPE on adjacent pairs (i, i+1)
          const int head_dim = i % hs;
          const float freq = 1.0F / std::pow(10000.0F, static_cast<float>(head_dim) / static_cast<float>(hs));
          const float val = static_cast<float>(pos) * freq, fcr = std::cos(val), fci = std::sin(val);
          for (int r = 0; r < (i < kv_dim ? 2 : 1); ++r) {
            float* vec = r == 0 ? q.data() : k;
            const float v0 = vec[i], v1 = vec[i + 1];
            vec[i] = v0 * fcr - v1 * fci;
            vec[i + 1] = v0 * fci + v1 * fcr;
          }
        }
        for (int h = 0; h < n_heads; ++h) {
          const float* qh = q.data() + h * hs;
          for (int t = 0; t <= pos; ++t) {
            const float* kt = kc.data() + (lo * L + t) * kv_dim + (h / kv_mul) * hs;
            double s = 0;
            for (int i = 0; i < hs; ++i) s += static_cast<double>(qh[i]) * kt[i];
            att[t] = static_cast<float>(s / std::sqrt(static_cast<double>(hs)));
          }
          float mx = att[0];
          for (int t = 1; t <= pos; ++t) mx = std::max(mx, att[t]);
          float sum = 0;
          for (int t = 0; t <= pos; ++t) sum += (att[t] = std::exp(att[t] - mx));
          float* xh = xb.data() + h * hs;
          std::fill(xh, xh + hs, 0.0F);
          for (int t = 0; t <= pos; ++t) {
            const float* vt = vc.data() + (lo * L + t) * kv_dim + (h / kv_mul) * hs;
            for (int i = 0; i < hs; ++i) xh[i] += att[t] / sum * vt[i];
          }
        }
        matmul(xb2.data(), xb.data(), wo + lo * dim * dim, dim, dim);
        for (int i = 0; i < dim; ++i) x[i] += xb2[i];
        rmsnorm(xb.data(), x.data(), rms_ffn + lo * dim, dim);
        matmul(hb.data(), xb.data(), w1 + lo * dim * hidden_dim, dim, hidden_dim);
        matmul(hb2.data(), xb.data(), w3 + lo * dim * hidden_dim, dim, hidden_dim);
        for (int i = 0; i < hidden_dim; ++i) hb[i] = hb[i] / (1.0F + std::exp(-hb[i])) * hb2[i];
        matmul(xb.data(), hb.data(), w2 + lo * dim * hidden_dim, hidden_dim, dim);
        for (int i = 0; i < dim; ++i) x[i] += xb[i];
      }
      rmsnorm(x.data(), x.data(), rms_final, dim);
      matmul(out.data() + static_cast<size_t>(pos) * vocab_size, x.data(), wcls, dim, vocab_size);
    }
    return out;
  }
};

// right-padded batch (pad id 0) of token rows
std::pair<at::Tensor, at::Tensor> batch_of(const std::vector<std::vector<int64_t>>& rows) {
  size_t L = 0;
  for (const auto& r : rows) L = std::max(L, r.size());
  at::Tensor ids = at::zeros({static_cast<int64_t>(rows.size()), static_cast<int64_t>(L)}, at::kLong);
  at::Tensor mask = at::zeros_like(ids);
  for (size_t b = 0; b < rows.size(); ++b) {
    for (size_t t = 0; t < rows[b].size(); ++t) {
      ids[b][t] = rows[b][t];
      mask[b][t] = 1;
    }
  }
  return {ids, mask};
}

nn::LlamaForCausalLM stories() {
  REQUIRE(fs::exists(kStories));  // committed fixture: a missing file is a failure, not a skip
  auto m = nn::read_llama2c(kStories);
  return nn::LlamaForCausalLM::from_tensors(m.cfg, m.tensors, kStories.string());
}

nn::LlamaConfig tiny_config(bool tied) {
  nn::LlamaConfig c = mlsys::test::tiny_llama_config(40, tied);
  c.rms_norm_eps = 1e-5;
  return c;
}
}  // namespace

TEST_CASE("LLaMA: converted stories260K matches a direct llama2.c forward within 1e-4") {
  auto model = stories();
  const auto& c = model.config();
  CHECK(c.hidden_size == 64);
  CHECK(c.num_key_value_heads == 4);
  CHECK(c.tie_word_embeddings);
  RefLlama2c ref(kStories);
  const std::vector<std::vector<int64_t>> rows = {
      {1, 403, 407, 261, 378, 429, 274, 350, 259, 489, 291, 268, 46, 13},
      {1, 5, 77, 300, 511, 2, 9},
      {1, 284, 99, 99, 99, 262, 400, 271, 310, 320, 330, 340, 350, 360, 370, 380, 390, 13, 2, 1, 402, 411},
  };
  auto [ids, mask] = batch_of(rows);
  c10::NoGradGuard ng;
  at::Tensor logits = model.forward(ids, mask);
  REQUIRE(logits.sizes() == at::IntArrayRef({3, ids.size(1), 512}));
  double max_diff = 0, max_abs = 0;
  for (size_t b = 0; b < rows.size(); ++b) {
    const auto want = ref.logits(rows[b]);
    at::Tensor w = at::from_blob(const_cast<float*>(want.data()), {static_cast<int64_t>(rows[b].size()), 512}, at::kFloat);
    at::Tensor got = logits[static_cast<int64_t>(b)].narrow(0, 0, static_cast<int64_t>(rows[b].size()));
    max_diff = std::max(max_diff, (got - w).abs().max().item<double>());
    max_abs = std::max(max_abs, w.abs().max().item<double>());
  }
  INFO("max |logit difference| " << max_diff << " (max |logit| " << max_abs << ")");
  CHECK(max_diff < 1e-4);
  CHECK(max_abs > 1.0);  // a real tolerance, not a trivial one
  // the model has learned TinyStories: after "<s>" the ids it favours are far from uniform
  CHECK(at::softmax(logits[0][0], -1).max().item<double>() > 10.0 / 512);
}

TEST_CASE("LLaMA: convert -> save -> load round trip, and a sharded index loads the same") {
  const mlsys::test::TempDir scratch("convert");
  const fs::path& d = scratch.path;
  auto sum = nn::convert_llama2c(kStories, d / "hf");
  CHECK(sum.parameters == 260032);  // the file's floats minus the two RoPE tables
  CHECK(sum.header.n_layers == 5);
  CHECK(sum.cfg.tie_word_embeddings);
  REQUIRE(fs::exists(d / "hf/config.json"));
  const auto cfg = nlohmann::json::parse(std::ifstream(d / "hf/config.json"));
  CHECK(cfg["model_type"] == "llama");
  CHECK(cfg["rms_norm_eps"].get<double>() == 1e-5);
  CHECK(cfg["rope_theta"].get<double>() == 10000.0);
  CHECK(cfg["tie_word_embeddings"] == true);
  CHECK(cfg["num_key_value_heads"] == 4);
  auto file = tensor::SafeTensorsFile::open(d / "hf/model.safetensors");
  CHECK(file.contains("model.layers.4.mlp.down_proj.weight"));
  CHECK(!file.contains("lm_head.weight"));  // tied: HF leaves it out
  auto loaded = nn::LlamaForCausalLM::load(d / "hf");
  auto direct = stories();
  for (const auto& [n, t] : direct.params()) CHECK(at::equal(loaded.param(n), t));
  auto [ids, mask] = batch_of({{1, 10, 20, 30, 40}, {1, 50, 60}});
  c10::NoGradGuard ng;
  at::Tensor want = direct.forward(ids, mask);
  CHECK(at::equal(loaded.forward(ids, mask), want));
  loaded.save_hf(d / "saved");
  CHECK(at::equal(nn::LlamaForCausalLM::load(d / "saved").forward(ids, mask), want));
  // shards: half the tensors in each file, an index naming them
  tensor::NamedTensors s1, s2;
  nlohmann::json wm = nlohmann::json::object();
  int i = 0;
  for (const auto& [n, t] : loaded.params()) {
    (i++ % 2 == 0 ? s1 : s2).emplace_back(n, t);
    wm[n] = i % 2 == 1 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  fs::create_directories(d / "sharded");
  fs::copy_file(d / "hf/config.json", d / "sharded/config.json");
  tensor::save_safetensors(d / "sharded/model-00001-of-00002.safetensors", s1);
  tensor::save_safetensors(d / "sharded/model-00002-of-00002.safetensors", s2);
  std::ofstream(d / "sharded/model.safetensors.index.json") << nlohmann::json({{"metadata", {}}, {"weight_map", wm}}).dump();
  CHECK(at::equal(nn::LlamaForCausalLM::load(d / "sharded").forward(ids, mask), want));
}

TEST_CASE("llama2.c: q/k rows go from adjacent pairs to rotate-half halves per head") {
  // 2 heads of size 4: rows (0,1),(2,3) | (4,5),(6,7) -> (0,2,1,3) | (4,6,5,7)
  at::Tensor w = at::arange(8, at::kFloat).view({8, 1});
  at::Tensor p = nn::permute_rope_rows(w, 2);
  CHECK(at::equal(p.view({8}), at::tensor({0.F, 2.F, 1.F, 3.F, 4.F, 6.F, 5.F, 7.F})));
}

TEST_CASE("llama2.c: a truncated or padded .bin is one input error naming the file and sizes") {
  const mlsys::test::TempDir scratch("bad-bin");
  const fs::path& d = scratch.path;
  std::ifstream in(kStories, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(bytes.size() == 1056540);
  auto expect = [&](const std::string& content, const std::string& needle) {
    std::ofstream(d / "bad.bin", std::ios::binary | std::ios::trunc) << content;
    test::expect_error([&] { (void)nn::read_llama2c(d / "bad.bin"); }, {"bad.bin", needle});
  };
  expect(bytes.substr(0, bytes.size() - 4), "implies 1056540 bytes, found 1056536 (truncated?)");
  expect(bytes + "x", "found 1056541");
  expect(bytes.substr(0, 10), "28-byte header");
  std::string zero_heads = bytes;
  std::memset(zero_heads.data() + 12, 0, 4);  // n_heads = 0
  expect(zero_heads, "positive sizes");
  CHECK_THROWS_AS(nn::convert_llama2c(d / "missing.bin", d / "out"), core::InputError);
  CHECK(!fs::exists(d / "out"));
}

TEST_CASE("LLaMA checkpoints: config fields, a missing tensor and a wrong shape are input errors naming them") {
  const mlsys::test::TempDir scratch("bad-ckpt");
  const fs::path& d = scratch.path;
  auto m = nn::LlamaForCausalLM::random(tiny_config(false), 3);
  m.save_hf(d / "ok");
  CHECK_NOTHROW(nn::LlamaForCausalLM::load(d / "ok"));
  const auto good = nlohmann::json::parse(std::ifstream(d / "ok/config.json"));
  auto expect_config = [&](nlohmann::json j, const std::string& field) {
    test::expect_error([&] { (void)nn::LlamaConfig::from_json(j, "x/config.json"); }, {"x/config.json", "'" + field + "'"});
  };
  auto with = [&](const std::string& k, const nlohmann::json& v) {
    nlohmann::json j = good;
    j[k] = v;
    return j;
  };
  expect_config(with("attention_bias", true), "attention_bias");
  expect_config(with("model_type", "bert"), "model_type");
  expect_config(with("num_key_value_heads", 3), "num_key_value_heads");
  expect_config(with("hidden_size", "16"), "hidden_size");
  expect_config(with("rope_scaling", {{"rope_type", "linear"}, {"factor", 2.0}}), "rope_scaling");
  expect_config(with("hidden_act", "gelu"), "hidden_act");
  nlohmann::json no_vocab = good;
  no_vocab.erase("vocab_size");
  expect_config(no_vocab, "vocab_size");
  // transformers 5 writes rope_parameters instead of rope_theta; head_dim may be absent
  nlohmann::json v5 = good;
  v5.erase("rope_theta");
  v5.erase("head_dim");
  v5["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 500000.0}};
  auto c5 = nn::LlamaConfig::from_json(v5, "v5");
  CHECK(c5.rope_theta == 500000.0);
  CHECK(c5.head_dim == 4);
  // tensors
  auto all = tensor::load_safetensors(d / "ok/model.safetensors");
  auto expect_tensor = [&](const tensor::NamedTensors& ts, const std::string& needle) {
    fs::create_directories(d / "bad");
    fs::copy_file(d / "ok/config.json", d / "bad/config.json", fs::copy_options::overwrite_existing);
    tensor::save_safetensors(d / "bad/model.safetensors", ts);
    test::expect_error([&] { (void)nn::LlamaForCausalLM::load(d / "bad"); }, {"model.safetensors", needle});
  };
  tensor::NamedTensors missing, wrong;
  for (const auto& [n, t] : all) {
    if (n != "model.layers.1.mlp.up_proj.weight") missing.emplace_back(n, t);
    wrong.emplace_back(n, n == "model.layers.0.self_attn.k_proj.weight" ? at::zeros({16, 16}) : t);
  }
  expect_tensor(missing, "'model.layers.1.mlp.up_proj.weight' not found");
  expect_tensor(wrong, "'model.layers.0.self_attn.k_proj.weight': expected shape [8,16]");
}

TEST_CASE("LLaMA: the mask is causal (a later token never changes earlier logits)") {
  auto model = stories();
  c10::NoGradGuard ng;
  auto [a, mask] = batch_of({{1, 30, 40, 50, 60, 70, 80, 90}});
  at::Tensor b = a.clone();
  b[0][5] = 300;
  at::Tensor la = model.forward(a, mask), lb = model.forward(b, mask);
  CHECK(at::equal(la.narrow(1, 0, 5), lb.narrow(1, 0, 5)));
  CHECK(!at::allclose(la.narrow(1, 5, 3), lb.narrow(1, 5, 3)));
  // a right-padded row gives its real positions the logits of the unpadded row
  auto [p, pm] = batch_of({{1, 30, 40, 50, 60, 70, 80, 90}, {1, 30, 40}});
  at::Tensor lp = model.forward(p, pm);
  CHECK(at::allclose(lp[1].narrow(0, 0, 3), la[0].narrow(0, 0, 3), 1e-5, 1e-5));
}

TEST_CASE("LLaMA: HiddenKey dropout with padding never gives NaN; key 0 is never dropped; eval is a no-op") {
  auto model = stories();
  c10::NoGradGuard ng;
  // right padding, left padding (pad rows before the first real token) and a full row
  at::Tensor ids = at::tensor({1L, 20L, 30L, 40L, 0L, 0L, 0L, 0L, 1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L}).view({2, 8});
  at::Tensor mask = at::tensor({1L, 1L, 1L, 1L, 0L, 0L, 0L, 0L, 1L, 1L, 1L, 1L, 1L, 1L, 1L, 1L}).view({2, 8});
  at::Tensor left_ids = at::tensor({0L, 0L, 0L, 1L, 20L, 30L}).view({1, 6});
  at::Tensor left_mask = at::tensor({0L, 0L, 0L, 1L, 1L, 1L}).view({1, 6});
  for (double rate : {0.1, 0.5, 0.99}) {
    nn::DropoutSites hk;
    hk.sites = {nn::DropSite{nn::DropPosition::attn_logits, nn::DropPattern::column, nn::DropCompensation::normalize, rate},
                nn::DropSite{nn::DropPosition::hidden, nn::DropPattern::element, nn::DropCompensation::rescale, rate}};
    nn::DropoutSites dattn;
    dattn.sites = {nn::DropSite{nn::DropPosition::attn_weights, nn::DropPattern::element,
                                nn::DropCompensation::normalize, rate}};
    for (int seed = 0; seed < 5; ++seed) {
      at::manual_seed(seed);
      CHECK(model.forward(ids, mask, hk, true).isfinite().all().item<bool>());
      CHECK(model.forward(left_ids, left_mask, hk, true).isfinite().all().item<bool>());
      CHECK(model.forward(ids, mask, dattn, true).isfinite().all().item<bool>());
      CHECK(model.forward(left_ids, left_mask, dattn, true).isfinite().all().item<bool>());
    }
    CHECK(at::equal(model.forward(ids, mask, hk, false), model.forward(ids, mask)));
  }
  // with every key but the first dropped, causal row 0 still sees key 0: its attention is
  // unchanged, so position 0's logits equal the eval logits when the hidden site is off
  nn::DropoutSites all_keys;
  all_keys.sites = {nn::DropSite{nn::DropPosition::attn_logits, nn::DropPattern::element,
                                 nn::DropCompensation::normalize, 1.0}};
  at::Tensor dropped = model.forward(ids, mask, all_keys, true);
  CHECK(dropped.isfinite().all().item<bool>());
  CHECK(at::allclose(dropped.select(1, 0), model.forward(ids, mask).select(1, 0), 1e-6, 1e-6));
}

TEST_CASE("LLaMA checkpoints: a model_type of another JSON type and integer embeddings are input errors", "[hardening]") {
  const mlsys::test::TempDir scratch("llama-hard");
  const fs::path& d = scratch.path;
  auto m = nn::LlamaForCausalLM::random(tiny_config(true), 3);
  m.save_hf(d);
  auto good = nlohmann::json::parse(std::ifstream(d / "config.json"));
  nlohmann::json odd = good;
  odd["model_type"] = 5;  // was nlohmann's type_error.302 (exit 1)
  test::expect_error([&] { (void)nn::LlamaConfig::from_json(odd, "x/config.json"); }, {"x/config.json", "'model_type'"});
  // the embeddings declared I32: integer data is not weights
  tensor::NamedTensors ints;
  for (const auto& [n, t] : tensor::load_safetensors(d / "model.safetensors")) {
    ints.emplace_back(n, n == "model.embed_tokens.weight" ? (t * 100).to(at::kInt) : t);
  }
  tensor::save_safetensors(d / "model.safetensors", ints);
  test::expect_error([&] { (void)nn::LlamaForCausalLM::load(d); },
                     {"model.safetensors", "'model.embed_tokens.weight'", "expected a floating-point dtype", "found I32"});
}
