// lib/nn: WordPiece ids equal to Hugging Face's on >= 200 real sentences, JSONL errors
// with line numbers, checkpoint errors, the structured-dropout identities (DropKey ≡
// DropAttention-normalized on one mask, no NaN with padding, no-op at eval), AdamW.
#include "tests/torch_catch.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "nn/bert.hpp"
#include "nn/optim.hpp"
#include "nn/structured_dropout.hpp"
#include "nn/text_data.hpp"
#include "nn/wordpiece.hpp"
#include "tensor/safetensors.hpp"

namespace fs = std::filesystem;
using namespace mlsys;

namespace {
const fs::path kRoot = MLSYS_SOURCE_ROOT;
const fs::path kMiniLM = kRoot / ".deps/models/all-MiniLM-L6-v2";

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("mlsys-nn-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

nn::BertConfig tiny_config() {
  nn::BertConfig c;
  c.vocab_size = 50;
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 32;
  c.max_position_embeddings = 32;
  return c;
}
}  // namespace

TEST_CASE("WordPiece ids equal Hugging Face's BertTokenizerFast on the fixture sentences") {
  REQUIRE(fs::exists(kMiniLM / "vocab.txt"));  // scripts/install-deps fetches all-MiniLM-L6-v2
  auto tok = nn::WordPieceTokenizer::from_vocab_file(kMiniLM / "vocab.txt");
  std::ifstream in(kRoot / "tests/lora/fixtures/tokenizer.json");
  auto j = nlohmann::json::parse(in);
  const auto& rows = j["rows"];
  REQUIRE(rows.size() >= 200);
  size_t mismatches = 0;
  for (const auto& r : rows) {
    auto ids = tok.encode(r["text"].get<std::string>(), j["max_length"].get<int64_t>()).ids;
    auto want = r["ids"].get<std::vector<int64_t>>();
    if (ids != want) {
      ++mismatches;
      UNSCOPED_INFO("mismatch: " << r["text"].get<std::string>());
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("JSONL data: malformed lines name the file and line") {
  fs::path d = temp_dir("jsonl");
  std::ofstream(d / "ok.jsonl") << "{\"text\":\"a\",\"label\":2}\n\n{\"text\":\"b\",\"label\":10}\n";
  auto rows = nn::read_labeled_jsonl(d / "ok.jsonl");
  REQUIRE(rows.size() == 2);
  CHECK(nn::label_set(rows) == std::vector<std::string>{"2", "10"});
  std::ofstream(d / "bad.jsonl") << "{\"text\":\"a\",\"label\":\"x\"}\n{\"text\":\"b\",\"label\":\"y\"}\n{\"text\": oops}\n";
  try {
    (void)nn::read_labeled_jsonl(d / "bad.jsonl");
    FAIL("no error");
  } catch (const core::InputError& e) {
    CHECK(std::string(e.what()).find("bad.jsonl:3:") != std::string::npos);
  }
  std::ofstream(d / "nolabel.jsonl") << "{\"text\":\"a\"}\n";
  CHECK_THROWS_AS(nn::read_labeled_jsonl(d / "nolabel.jsonl"), core::InputError);
  CHECK(nn::read_labeled_jsonl(d / "nolabel.jsonl", false).size() == 1);
  CHECK_THROWS_AS(nn::read_labeled_jsonl(d / "missing.jsonl"), core::InputError);
  fs::remove_all(d);
}

TEST_CASE("JSONL labels: numeric order only for ^-?[0-9]+$ labels; rows keep their line") {
  fs::path d = temp_dir("labels");
  std::ofstream(d / "neg.jsonl") << "{\"text\":\"a\",\"label\":\"-\"}\n\n{\"text\":\"b\",\"label\":\"3\"}\n"
                                  << "{\"text\":\"c\",\"label\":\"-2\"}\n";
  auto rows = nn::read_labeled_jsonl(d / "neg.jsonl");
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].line == 1);
  CHECK(rows[1].line == 3);  // the blank line counts
  CHECK(rows[2].line == 4);
  // "-" is not a number: no crash, string order
  CHECK(nn::label_set(rows) == std::vector<std::string>{"-", "-2", "3"});
  std::vector<nn::LabeledText> num = {{"a", "10", 1}, {"b", "-3", 2}, {"c", "2", 3}};
  CHECK(nn::label_set(num) == std::vector<std::string>{"-3", "2", "10"});
  std::vector<nn::LabeledText> odd = {{"a", "1-2", 1}, {"b", "--", 2}, {"c", "10", 3}, {"d", "9", 4}};
  CHECK(nn::label_set(odd) == std::vector<std::string>{"--", "1-2", "10", "9"});
  std::vector<nn::LabeledText> huge = {{"a", "99999999999999999999999", 1}, {"b", "2", 2}};
  CHECK(nn::label_set(huge) == std::vector<std::string>{"2", "99999999999999999999999"});  // strings
  fs::remove_all(d);
}

TEST_CASE("DropKey equals DropAttention with normalized rescaling in the forward pass") {
  at::manual_seed(3);
  const int64_t B = 2, H = 3, L = 7;
  at::Tensor S = at::randn({B, H, L, L});
  at::Tensor pad = at::zeros({B, 1, 1, L}, at::kBool);
  pad.index_put_({1, 0, 0, at::indexing::Slice(4, L)}, true);  // row 1 has 4 real tokens
  S = S.masked_fill(pad, -INFINITY);
  for (auto pattern : {nn::DropPattern::element, nn::DropPattern::column}) {
    nn::DropSite site{nn::DropPosition::attn_logits, pattern, nn::DropCompensation::normalize, 0.5, false};
    at::Tensor keep = nn::sample_attention_keep(site, B, H, L, L, S.options());
    if (pattern == nn::DropPattern::column) CHECK(keep.sizes() == at::IntArrayRef({B, H, 1, L}));
    CHECK(keep.select(-1, 0).all().item<bool>());  // the CLS key is never dropped
    at::Tensor dropkey = at::softmax(nn::mask_attention_logits(S, keep), -1);
    at::Tensor dropattn = nn::mask_attention_weights(at::softmax(S, -1), keep, nn::DropCompensation::normalize, 0.5);
    CHECK(at::isfinite(dropkey).all().item<bool>());
    CHECK(at::allclose(dropkey, dropattn, 1e-5, 1e-6));
    CHECK(at::allclose(dropkey.sum(-1), at::ones({B, H, L}), 1e-5, 1e-6));
    // pad keys stay excluded
    CHECK(dropkey.index({1, at::indexing::Slice(), at::indexing::Slice(), at::indexing::Slice(4, L)}).abs().max().item<float>() == 0.0F);
  }
}

TEST_CASE("span dropout cuts floor(rate*len) consecutive real tokens") {
  at::manual_seed(5);
  at::Tensor h = at::ones({3, 10, 4});
  at::Tensor mask = at::zeros({3, 10}, at::kLong);
  mask.index_put_({0, at::indexing::Slice(0, 10)}, 1);
  mask.index_put_({1, at::indexing::Slice(0, 5)}, 1);
  mask.index_put_({2, at::indexing::Slice(0, 1)}, 1);
  nn::DropSite site{nn::DropPosition::hidden, nn::DropPattern::span, nn::DropCompensation::none, 0.3, false};
  at::Tensor out = nn::drop_hidden(h, site, mask);
  at::Tensor zeroed = out.select(2, 0).eq(0);
  CHECK(zeroed[0].sum().item<int64_t>() == 3);
  CHECK(zeroed[1].sum().item<int64_t>() == 1);
  CHECK(zeroed[1].narrow(0, 5, 5).sum().item<int64_t>() == 0);  // only real tokens
  CHECK(zeroed[2].sum().item<int64_t>() == 1);
  auto z0 = zeroed[0].nonzero().flatten();
  CHECK(z0[2].item<int64_t>() - z0[0].item<int64_t>() == 2);
}

TEST_CASE("BERT: dropout is a no-op at eval and never NaN with padding in training") {
  auto m = nn::BertClassifier::random(tiny_config(), 3, 11);
  at::Tensor ids = at::randint(1, 50, {3, 9}, at::kLong);
  at::Tensor mask = at::ones({3, 9}, at::kLong);
  mask.index_put_({1, at::indexing::Slice(2, 9)}, 0);
  mask.index_put_({2, at::indexing::Slice(1, 9)}, 0);  // only CLS
  nn::DropoutSites all{{{nn::DropPosition::attn_logits, nn::DropPattern::column, nn::DropCompensation::normalize, 0.9, false},
                        {nn::DropPosition::attn_weights, nn::DropPattern::element, nn::DropCompensation::normalize, 0.9, false},
                        {nn::DropPosition::hidden, nn::DropPattern::element, nn::DropCompensation::rescale, 0.5, false}}};
  at::Tensor plain = m.forward(ids, mask);
  CHECK(at::equal(m.forward(ids, mask, all, false), plain));
  at::manual_seed(1);
  at::Tensor trained = m.forward(ids, mask, all, true);
  CHECK(at::isfinite(trained).all().item<bool>());
  CHECK(!at::allclose(trained, plain));
}

TEST_CASE("BERT checkpoints: a missing tensor or a wrong shape is an input error naming it") {
  fs::path d = temp_dir("ckpt");
  auto m = nn::BertClassifier::random(tiny_config(), 2, 1);
  m.save_hf(d);
  auto again = nn::BertClassifier::load(d, 2, 0);
  CHECK(at::equal(again.param("classifier.weight"), m.param("classifier.weight")));
  at::Tensor ids = at::randint(1, 50, {2, 6}, at::kLong);
  at::Tensor mask = at::ones({2, 6}, at::kLong);
  CHECK(at::allclose(again.forward(ids, mask), m.forward(ids, mask)));
  // drop one tensor
  tensor::NamedTensors named;
  for (const auto& [n, t] : m.params()) {
    if (n != "bert.encoder.layer.1.attention.self.key.weight") named.emplace_back(n, t);
  }
  tensor::save_safetensors(d / "model.safetensors", named);
  try {
    (void)nn::BertClassifier::load(d, 2, 0);
    FAIL("no error");
  } catch (const core::InputError& e) {
    CHECK(std::string(e.what()).find("bert.encoder.layer.1.attention.self.key.weight") != std::string::npos);
  }
  // shape mismatch: config says a wider FFN
  m.save_hf(d);
  auto cfg = nlohmann::json::parse(std::ifstream(d / "config.json"));
  cfg["intermediate_size"] = 40;
  std::ofstream(d / "config.json") << cfg.dump();
  try {
    (void)nn::BertClassifier::load(d, 2, 0);
    FAIL("no error");
  } catch (const core::InputError& e) {
    CHECK(std::string(e.what()).find("expected shape [40,16]") != std::string::npos);
  }
  fs::remove_all(d);
}

TEST_CASE("AdamW matches the closed form of its first step; schedules") {
  at::Tensor p = at::full({1}, 1.0).set_requires_grad(true);
  nn::AdamW opt({p}, {0.9, 0.999, 1e-8, 0.1});
  (p * 3.0).sum().backward();
  opt.step(0.01);
  // decoupled decay then m̂/√v̂ = sign(g) = 1
  CHECK(p.item<double>() == Approx(1.0 * (1 - 0.01 * 0.1) - 0.01).epsilon(1e-6));
  CHECK(nn::lr_factor(0, 100, 10, "linear") == Approx(0.1));
  CHECK(nn::lr_factor(10, 100, 10, "linear") == Approx(1.0));
  CHECK(nn::lr_factor(55, 100, 10, "linear") == Approx(0.5));
  CHECK(nn::lr_factor(55, 100, 10, "cosine") == Approx(0.5));
  CHECK(nn::lr_factor(99, 100, 10, "constant") == Approx(1.0));
  at::Tensor q = at::zeros({2}).set_requires_grad(true);
  (q * at::tensor({3.0F, 4.0F})).sum().backward();
  CHECK(nn::clip_grad_norm({q}, 1.0) == Approx(5.0));
  CHECK(q.grad().norm().item<double>() == Approx(1.0).epsilon(1e-4));
}
