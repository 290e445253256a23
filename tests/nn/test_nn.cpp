// lib/nn: WordPiece ids equal to Hugging Face's on >= 200 real sentences, JSONL errors
// with line numbers, checkpoint errors, the structured-dropout identities (DropKey ≡
// DropAttention-normalized on one mask, no NaN with padding, no-op at eval), AdamW; byte-level
// BPE ids equal to RobertaTokenizerFast's / GPT2TokenizerFast's (tests/nn/fixtures/bpe) and
// RoBERTa logits equal to transformers' (tests/nn/fixtures/roberta, scripts/roberta-fixtures.py);
// the fast forward path (SDPA, last-layer pruning) equal to the reference one in logits and LoRA gradients.
#include "tests/support/torch_catch.hpp"

#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "nn/bert.hpp"
#include "nn/bpe.hpp"
#include "nn/checkpoint.hpp"
#include "nn/hf_folder.hpp"
#include "nn/llama.hpp"
#include "nn/optim.hpp"
#include "nn/structured_dropout.hpp"
#include "nn/text_data.hpp"
#include "nn/wordpiece.hpp"
#include "tensor/safetensors.hpp"
#include "tests/support/expect_error.hpp"
#include "tests/support/harness.hpp"

namespace fs = std::filesystem;
using namespace mlsys;

namespace {
const fs::path kRoot = MLSYS_SOURCE_ROOT;
const fs::path kMiniLM = kRoot / ".deps/models/all-MiniLM-L6-v2";


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
  const mlsys::test::TempDir scratch("jsonl");
  const fs::path& d = scratch.path;
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
}

TEST_CASE("JSONL labels: numeric order only for ^-?[0-9]+$ labels; rows keep their line") {
  const mlsys::test::TempDir scratch("labels");
  const fs::path& d = scratch.path;
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
  const mlsys::test::TempDir scratch("ckpt");
  const fs::path& d = scratch.path;
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

// ------------------------------------------------------------------ byte-level BPE (RoBERTa, GPT-2)

namespace {
const fs::path kRobertaDir = kRoot / "tests/nn/fixtures/roberta";
const fs::path kGpt2Dir = kRoot / "tests/nn/fixtures/bpe/gpt2";

std::vector<nlohmann::json> bpe_rows() {
  std::ifstream in(kRoot / "tests/nn/fixtures/bpe/ids.jsonl");
  std::vector<nlohmann::json> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  }
  return rows;
}
}  // namespace

TEST_CASE("BPE ids equal Hugging Face's RobertaTokenizerFast and GPT2TokenizerFast on the fixture sentences") {
  const auto rob = nn::BpeTokenizer::from_folder(kRobertaDir);
  const auto gpt = nn::BpeTokenizer::from_folder(kGpt2Dir);  // GPT-2's real vocabulary (50257 tokens)
  CHECK(gpt.vocab_size() == 50257);
  CHECK(rob.bos_id() == 0);
  CHECK(rob.pad_id() == 1);
  CHECK(rob.eos_id() == 2);
  const auto rows = bpe_rows();
  REQUIRE(rows.size() >= 200);
  size_t bad_rob = 0, bad_gpt = 0, bad_trunc = 0, bad_decode = 0;
  for (const auto& r : rows) {
    const auto text = r["text"].get<std::string>();
    if (rob.encode(text, 1 << 20).ids != r["roberta"].get<std::vector<int64_t>>()) {
      ++bad_rob;
      UNSCOPED_INFO("roberta mismatch: " << text);
    }
    if (rob.encode(text, 16).ids != r["roberta_16"].get<std::vector<int64_t>>()) ++bad_trunc;
    const auto g = gpt.tokenize_ids(text);
    if (g != r["gpt2"].get<std::vector<int64_t>>()) {
      ++bad_gpt;
      UNSCOPED_INFO("gpt2 mismatch: " << text);
    }
    if (gpt.decode(g) != r["gpt2_decoded"].get<std::string>() ||
        rob.decode(rob.encode(text, 1 << 20).ids) != r["roberta_decoded"].get<std::string>()) {
      ++bad_decode;
      UNSCOPED_INFO("decode mismatch: " << text);
    }
  }
  CHECK(bad_rob == 0);
  CHECK(bad_gpt == 0);
  CHECK(bad_trunc == 0);
  CHECK(bad_decode == 0);
}

TEST_CASE("BPE pre-tokenizer: GPT-2's regex on contractions, numbers, white space and special tokens") {
  const auto rob = nn::BpeTokenizer::from_folder(kRobertaDir);
  using V = std::vector<std::string>;
  CHECK(rob.pre_tokenize("I'm here's  it") == V{"I", "'m", " here", "'s", " ", " it"});
  CHECK(rob.pre_tokenize("a 12 b!!  \n c  ") == V{"a", " 12", " b", "!!", "  \n", " c", "  "});
  CHECK(rob.pre_tokenize("Ünïcödé 😀😀 x") == V{"Ünïcödé", " 😀😀", " x"});
  CHECK(rob.pre_tokenize("") == V{});
  // special-token strings are the tokens; <mask> gets lstrip only from tokenizer_config.json
  const auto ids = rob.tokenize_ids("a <mask>");
  REQUIRE(ids.size() == 3);
  CHECK(ids.back() == rob.mask_id());
  CHECK(rob.tokenize("<s></s>") == V{"<s>", "</s>"});
  const mlsys::test::TempDir scratch("bpe-cfg");
  const fs::path& d = scratch.path;
  fs::copy_file(kRobertaDir / "vocab.json", d / "vocab.json");
  fs::copy_file(kRobertaDir / "merges.txt", d / "merges.txt");
  std::ofstream(d / "tokenizer_config.json") << R"({"added_tokens_decoder": {"4": {"content": "<mask>", "lstrip": true}}})";
  const auto lstrip = nn::BpeTokenizer::from_folder(d);
  CHECK(lstrip.tokenize_ids("a <mask>") == std::vector<int64_t>{ids.front(), rob.mask_id()});
  CHECK(lstrip.encode("a", 2).ids == std::vector<int64_t>{0, 2});
}

TEST_CASE("BPE errors: a missing or malformed file is an input error naming it") {
  const mlsys::test::TempDir scratch("bpe-bad");
  const fs::path& d = scratch.path;
  auto message = [&]() -> std::string {
    try {
      (void)nn::BpeTokenizer::from_folder(d);
    } catch (const core::InputError& e) {
      return e.what();
    }
    return "no error";
  };
  CHECK(message().find((d / "vocab.json").string()) != std::string::npos);
  std::ofstream(d / "vocab.json") << "{\"a\": 0, \"b\": 1, \"ab\": 2}";
  CHECK(message().find((d / "merges.txt").string()) != std::string::npos);
  std::ofstream(d / "merges.txt") << "#version: 0.2\na b\nabc\n";
  CHECK(message().find("merges.txt:3") != std::string::npos);
  std::ofstream(d / "merges.txt") << "#version: 0.2\na b\n";
  const auto t = nn::BpeTokenizer::from_folder(d);
  CHECK(t.tokenize_ids("ab") == std::vector<int64_t>{2});
  CHECK_THROWS_AS(t.encode("ab", 8), core::InputError);  // no <s> / </s>
  CHECK_THROWS_AS(t.decode({7}), core::InputError);
}

// ------------------------------------------------------------------ RoBERTa

TEST_CASE("RoBERTa: the fixture model gives transformers' logits on a padded batch") {
  auto inputs = tensor::load_safetensors(kRobertaDir / "inputs.safetensors");
  const at::Tensor ids = inputs["input_ids"];
  REQUIRE(ids.eq(1).any().item<bool>());  // the batch holds padding (pad id 1)
  auto m = nn::BertClassifier::load(kRobertaDir, 3, 0);
  CHECK(m.config().is_roberta());
  CHECK(m.config().pad_token_id == 1);
  CHECK(m.config().type_vocab_size == 1);
  CHECK(m.config().max_length() == 64);
  CHECK(m.output_layer() == "classifier.out_proj");
  CHECK(m.linear_names().back() == "classifier.out_proj");
  CHECK(m.head_names().size() == 4);
  // the tokenizer of the folder gives the fixture's ids
  const auto tok = nn::BpeTokenizer::from_folder(kRobertaDir);
  const auto first = tok.encode("The computer is down again; please reboot it before lunch.", 32).ids;
  for (size_t t = 0; t < first.size(); ++t) CHECK(ids[0][static_cast<int64_t>(t)].item<int64_t>() == first[t]);
  c10::NoGradGuard ng;
  const at::Tensor logits = m.forward(ids, inputs["attention_mask"]);
  const double diff = (logits - inputs["logits_base"]).abs().max().item<double>();
  INFO("max |logit difference| " << diff);
  CHECK(diff < 1e-4);
  // save_hf round trip keeps the "roberta." names and the two-layer head
  const mlsys::test::TempDir scratch("roberta");
  const fs::path& d = scratch.path;
  m.save_hf(d);
  auto back = nn::BertClassifier::load(d, 3, 5);
  CHECK(at::allclose(back.forward(ids, inputs["attention_mask"]), logits));
  auto cfg = nlohmann::json::parse(std::ifstream(d / "config.json"));
  CHECK(cfg["architectures"][0] == "RobertaForSequenceClassification");
  CHECK(tensor::load_safetensors(d / "model.safetensors").count("roberta.encoder.layer.0.attention.self.query.weight") == 1);
  // too long for the positions: 64 = 66 - pad - 1
  CHECK_THROWS_AS(m.forward(at::full({1, 65}, 5, at::kLong), at::ones({1, 65}, at::kLong)), core::InputError);
}

TEST_CASE("RoBERTa: positions count real tokens only, so padding changes nothing; random models") {
  nn::BertConfig c = nn::BertConfig::roberta();
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.intermediate_size = 24;
  c.max_position_embeddings = 20;
  auto m = nn::BertClassifier::random(c, 2, 3);
  CHECK(m.params().count("roberta.pooler.dense.weight") == 0);
  CHECK(m.params().count("classifier.dense.weight") == 1);
  c10::NoGradGuard ng;
  const at::Tensor ids = at::tensor({0, 7, 8, 9, 2}, at::kLong).view({1, 5});
  const at::Tensor padded = at::tensor({0, 7, 8, 9, 2, 1, 1}, at::kLong).view({1, 7});
  const at::Tensor mask = at::tensor({1, 1, 1, 1, 1, 0, 0}, at::kLong).view({1, 7});
  CHECK(at::allclose(m.forward(ids, at::ones({1, 5}, at::kLong)), m.forward(padded, mask), 1e-5, 1e-6));
  // a config with model_type roberta loads with RoBERTa's defaults for absent fields
  auto j = nlohmann::json{{"model_type", "roberta"}, {"vocab_size", 40}, {"hidden_size", 16}, {"num_hidden_layers", 1},
                          {"num_attention_heads", 2}, {"intermediate_size", 24}};
  auto rc = nn::BertConfig::from_json(j, "config.json");
  CHECK(rc.pad_token_id == 1);
  CHECK(rc.max_position_embeddings == 514);
  CHECK(rc.max_length() == 512);
  j["model_type"] = "gpt2";
  CHECK_THROWS_AS(nn::BertConfig::from_json(j, "config.json"), core::InputError);
}

// ------------------------------------------------------------------ fast forward path

namespace {
// A LoRA-like adapter (B·A·x·2) with trainable A and B, for gradients through q and v.
class TestLora : public nn::LinearAdapter {
 public:
  TestLora(int64_t din, int64_t dout, int64_t r)
      : a_((at::randn({r, din}) * 0.3).set_requires_grad(true)), b_((at::randn({dout, r}) * 0.3).set_requires_grad(true)) {}
  [[nodiscard]] at::Tensor delta(const at::Tensor& x, bool /*training*/) const override {
    return at::linear(at::linear(x, a_), b_) * 2.0;
  }
  at::Tensor a_, b_;
};

struct FwdGrads {
  at::Tensor out;
  std::vector<at::Tensor> grads;
};

// One forward on `path` (seeded, so both paths draw the same masks; the model is left on
// the fast path) and the adapters' gradients of a fixed weighted sum of the output.
template <class Model>
FwdGrads run_path(nn::ForwardPath path, Model& m, const std::vector<std::shared_ptr<TestLora>>& ads,
                  const at::Tensor& ids, const at::Tensor& mask, const nn::DropoutSites& drop) {
  m.set_forward_path(path);
  at::manual_seed(11);
  at::Tensor out = m.forward(ids, mask, drop, true);
  m.set_forward_path(nn::ForwardPath::fast);
  at::Tensor w = at::sin(at::arange(out.numel(), at::kFloat)).view(out.sizes());
  (out * w).sum().backward();
  FwdGrads r{out.detach(), {}};
  for (const auto& a : ads) {
    for (at::Tensor* p : {&a->a_, &a->b_}) {
      r.grads.push_back(p->grad().clone());
      p->mutable_grad() = at::Tensor();
    }
  }
  return r;
}

template <class Model>  // BertClassifier or LlamaForCausalLM: each has its own forward path setting
void check_fast_equals_reference(Model& m, const std::vector<std::string>& targets, int64_t d_in,
                                 const std::vector<int64_t>& d_out, const at::Tensor& ids, const at::Tensor& mask) {
  at::manual_seed(2);
  std::vector<std::shared_ptr<TestLora>> ads;
  for (size_t i = 0; i < targets.size(); ++i) {
    ads.push_back(std::make_shared<TestLora>(d_in, d_out[i % d_out.size()], 4));
    m.set_adapter(targets[i], ads.back());
  }
  nn::DropoutSites none;
  nn::DropoutSites dropkey;
  dropkey.sites = {nn::DropSite{nn::DropPosition::attn_logits, nn::DropPattern::column, nn::DropCompensation::normalize, 0.3},
                   nn::DropSite{nn::DropPosition::hidden, nn::DropPattern::element, nn::DropCompensation::rescale, 0.1}};
  nn::DropoutSites dropkey_elem;
  dropkey_elem.sites = {nn::DropSite{nn::DropPosition::attn_logits, nn::DropPattern::element, nn::DropCompensation::normalize, 0.3}};
  // DropAttention keeps the hand-written attention on the fast path (BERT: first row only in the last layer)
  nn::DropoutSites dropattn;
  dropattn.sites = {nn::DropSite{nn::DropPosition::attn_weights, nn::DropPattern::element, nn::DropCompensation::rescale, 0.2},
                    nn::DropSite{nn::DropPosition::hidden, nn::DropPattern::span, nn::DropCompensation::none, 0.3}};
  for (const auto* drop : {&none, &dropkey, &dropkey_elem, &dropattn}) {
    const FwdGrads fused = run_path(nn::ForwardPath::fast, m, ads, ids, mask, *drop);
    const FwdGrads hand = run_path(nn::ForwardPath::reference, m, ads, ids, mask, *drop);
    CHECK(fused.out.isfinite().all().item<bool>());
    const double dout = (fused.out - hand.out).abs().max().item<double>();
    double dgrad = 0, gmax = 0;
    for (size_t i = 0; i < fused.grads.size(); ++i) {
      dgrad = std::max(dgrad, (fused.grads[i] - hand.grads[i]).abs().max().item<double>());
      gmax = std::max(gmax, hand.grads[i].abs().max().item<double>());
    }
    INFO("sites " << drop->sites.size() << ": max |output diff| " << dout << ", max |grad diff| " << dgrad
                  << " (max |grad| " << gmax << ")");
    CHECK(gmax > 0);
    CHECK(dout < 1e-5);
    CHECK(dgrad < 1e-5);
    CHECK(dgrad <= 1e-4 * gmax);  // relative as well: the tiny BERT's gradients are small
    if (drop == &dropkey) {  // a different draw does change the output: the masks really are the same above
      at::manual_seed(12);
      const at::Tensor redrawn = m.forward(ids, mask, *drop, true).detach();
      CHECK((redrawn - hand.out).abs().max().item<double>() > 1e-4);
    }
  }
  {  // eval (no sites, no grad): the fast path prunes the last layer even with adapters on every Linear
    c10::NoGradGuard ng;
    m.set_forward_path(nn::ForwardPath::reference);
    const at::Tensor ref = m.forward(ids, mask);
    m.set_forward_path(nn::ForwardPath::fast);
    const at::Tensor fast = m.forward(ids, mask);
    CHECK((fast - ref).abs().max().item<double>() < 1e-5);
  }
  m.clear_adapters();
}
}  // namespace

TEST_CASE("Fast forward path (SDPA, last-layer first row) equals the reference path: logits and LoRA gradients, with padding") {
  nn::BertConfig c = tiny_config();
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  auto m = nn::BertClassifier::random(c, 3, 7);
  REQUIRE(m.forward_path() == nn::ForwardPath::fast);  // the default
  // right padding in rows 1 and 2 (the [CLS] key is always real)
  at::Tensor ids = at::randint(1, c.vocab_size, {3, 9}, at::kLong);
  at::Tensor mask = at::ones({3, 9}, at::kLong);
  mask.index_put_({1, at::indexing::Slice(5, 9)}, 0);
  mask.index_put_({2, at::indexing::Slice(2, 9)}, 0);
  ids = ids * mask;
  // query,value (the last layer's query still runs on every row: it has an adapter), key,value
  // (the last layer's query runs on the first row only) and an adapter on a row-wise Linear of
  // the last layer (no row pruning there)
  for (const auto& names : {std::vector<std::string>{"attention.self.query", "attention.self.value"},
                            std::vector<std::string>{"attention.self.key", "attention.self.value"},
                            std::vector<std::string>{"attention.self.value", "attention.output.dense"}}) {
    std::vector<std::string> targets;
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      for (const auto& t : names) targets.push_back("bert.encoder.layer." + std::to_string(i) + "." + t);
    }
    check_fast_equals_reference(m, targets, c.hidden_size, {c.hidden_size}, ids, mask);
    check_fast_equals_reference(m, targets, c.hidden_size, {c.hidden_size}, ids, at::ones({3, 9}, at::kLong));  // no padding
  }
  CHECK(m.forward_path() == nn::ForwardPath::fast);
}

TEST_CASE("Fast forward path (SDPA) equals the reference path for LLaMA: causal, left/right padding, GQA") {
  nn::LlamaConfig c;
  c.vocab_size = 40;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 16;
  auto m = nn::LlamaForCausalLM::random(c, 5);
  REQUIRE(m.forward_path() == nn::ForwardPath::fast);  // the default
  at::Tensor ids = at::tensor({1L, 20L, 30L, 4L, 5L, 0L, 0L, 0L, 0L, 0L, 1L, 2L, 3L, 4L, 5L, 6L, 1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L})
                       .view({3, 8});
  at::Tensor mask = ids.ne(0).to(at::kLong);  // row 0 right-padded, row 1 left-padded, row 2 full
  std::vector<std::string> targets;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    for (const char* t : {"q_proj", "v_proj"}) targets.push_back("model.layers." + std::to_string(i) + ".self_attn." + t);
  }
  check_fast_equals_reference(m, targets, c.hidden_size, {c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim},
                          ids, mask);
  check_fast_equals_reference(m, targets, c.hidden_size, {c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim},
                          ids, at::ones({3, 8}, at::kLong));  // no padding: is_causal
}

// ------------------------------------------------------------------ hardening (issue 20)

namespace {

// The one-line InputError that `f` throws: it names every needle and quotes no more than a
// short excerpt of the input.
template <class F>
void expect_short_input_error(F&& f, std::initializer_list<std::string> needles) {
  try {
    f();
    FAIL("no error; expected one naming " << *needles.begin());
  } catch (const core::InputError& e) {
    const std::string msg = e.what();
    INFO(msg.substr(0, 400));
    CHECK(msg.size() < 400);
    CHECK(msg.find('\n') == std::string::npos);
    for (const auto& n : needles) CHECK(msg.find(n) != std::string::npos);
  }
}

std::string nested(int levels) { return std::string(levels, '[') + std::string(levels, ']'); }

}  // namespace

TEST_CASE("HF folders: config.json, the index and vocab.json are read depth-limited; bad values name file and field",
          "[hardening]") {
  const mlsys::test::TempDir scratch("hf-hard");
  const fs::path& d = scratch.path;
  auto m = nn::BertClassifier::random(tiny_config(), 2, 1);
  m.save_hf(d);
  const auto good = nlohmann::json::parse(std::ifstream(d / "config.json"));
  const std::string good_text = good.dump();
  auto write_config = [&](const std::string& text) { std::ofstream(d / "config.json", std::ios::trunc) << text; };

  // 50k levels in a field: nlohmann parses it (iteratively), but its dump() in the message recursed
  std::string deep = good_text;
  deep.insert(1, "\"hidden_act\": " + nested(50000) + ", ");
  write_config(deep);
  expect_short_input_error([&] { (void)nn::BertClassifier::load(d, 2, 0); },
                           {"config.json: malformed JSON", "nested deeper than 64"});
  // a list where a string is expected: was nlohmann's type_error.302 (exit 1)
  nlohmann::json list = good;
  list["hidden_act"] = {"gelu"};
  write_config(list.dump());
  expect_short_input_error([&] { (void)nn::BertClassifier::load(d, 2, 0); }, {"config.json", "'hidden_act'"});
  // a number beyond a double: was out_of_range.406 (exit 1)
  std::string huge = good_text;
  huge.insert(1, "\"layer_norm_eps\": 1e309, ");
  write_config(huge);
  expect_short_input_error([&] { (void)nn::BertClassifier::load(d, 2, 0); },
                           {"config.json: malformed JSON", "'layer_norm_eps'", "range of a double"});
  write_config(good_text);

  // a sharded index whose weight_map value is a number, or that nests 50k levels
  fs::rename(d / "model.safetensors", d / "model-00001.safetensors");
  const fs::path index = d / "model.safetensors.index.json";
  std::ofstream(index) << R"({"weight_map": {"bert.embeddings.word_embeddings.weight": 3}})";
  expect_short_input_error([&] { (void)nn::load_hf_tensors(d); },
                           {"model.safetensors.index.json", "'weight_map'", "expected a shard file name", "integer 3"});
  std::ofstream(index, std::ios::trunc) << R"({"weight_map": {"x": )" + nested(50000) + "}}";
  expect_short_input_error([&] { (void)nn::load_hf_tensors(d); },
                           {"model.safetensors.index.json: malformed JSON", "nested deeper than 64"});
  std::ofstream(index, std::ios::trunc) << R"({"metadata": {}, "weight_map": {"x": "model-00001.safetensors"}})";
  CHECK(nn::load_hf_tensors(d).size() == m.params().size());

  // BPE: vocab.json nesting 50k levels (its id.dump() in the message recursed)
  std::ofstream(d / "vocab.json") << R"({"<s>": 0, "a": )" + nested(50000) + "}";
  std::ofstream(d / "merges.txt") << "#version: 0.2\n";
  expect_short_input_error([&] { (void)nn::BpeTokenizer::from_folder(d); },
                           {"vocab.json: malformed JSON", "nested deeper than 64"});
  std::ofstream(d / "vocab.json", std::ios::trunc) << R"({"<s>": 0, "a": )" + nested(60) + "}";
  expect_short_input_error([&] { (void)nn::BpeTokenizer::from_folder(d); }, {"vocab.json", "token \"a\"", "an array"});
}

TEST_CASE("BERT checkpoints: integer word embeddings are refused naming file, tensor and dtypes", "[hardening]") {
  const mlsys::test::TempDir scratch("i32");
  const fs::path& d = scratch.path;
  auto m = nn::BertClassifier::random(tiny_config(), 2, 1);
  m.save_hf(d);
  tensor::NamedTensors named;
  for (const auto& [n, t] : tensor::load_safetensors(d / "model.safetensors")) {
    named.emplace_back(n, n == "bert.embeddings.word_embeddings.weight" ? (t * 100).to(at::kInt) : t);
  }
  tensor::save_safetensors(d / "model.safetensors", named);
  test::expect_error([&] { (void)nn::BertClassifier::load(d, 2, 0); },
                     {"model.safetensors", "'bert.embeddings.word_embeddings.weight'",
                      "expected a floating-point dtype", "found I32"});
}

TEST_CASE("a vocab.txt longer than the word embeddings is an input error naming vocab.txt", "[hardening]") {
  const mlsys::test::TempDir scratch("vocab");
  const fs::path& d = scratch.path;
  auto c = tiny_config();
  c.vocab_size = 8;
  nn::BertClassifier::random(c, 2, 1).save_hf(d);
  std::ofstream v(d / "vocab.txt");
  for (const char* w : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "."}) v << w << "\n";
  v.close();
  CHECK(nn::load_text_tokenizer(d, true).pad == 0);  // 8 tokens fit 8 rows
  std::ofstream(d / "vocab.txt", std::ios::app) << "film\nplot\n";
  // the id of "plot" (9) would index past the table: "index out of range in self" deep in LibTorch
  test::expect_error([&] { (void)nn::load_text_tokenizer(d, true); },
                     {(d / "vocab.txt").string(), "expected at most 8 tokens", "found 10"});
}

TEST_CASE("WordPiece options from tokenizer_config.json: strip_accents, tokenize_chinese_chars; bad values name the field") {
  const mlsys::test::TempDir scratch("wp-config");
  const fs::path& d = scratch.path;
  auto c = tiny_config();
  c.vocab_size = 16;
  nn::BertClassifier::random(c, 2, 1).save_hf(d);
  std::ofstream v(d / "vocab.txt");
  for (const char* w : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "cafe", "café", "中", "文", "中文"}) v << w << "\n";
  v.close();
  auto ids = [&](const char* text) { return nn::load_folder_tokenizer(d, true).encode(text); };
  CHECK(nn::load_folder_tokenizer(d, true).kind == "wordpiece");
  CHECK(ids("Café 中文") == std::vector<int64_t>{2, 4, 6, 7, 3});  // defaults: strip accents, split CJK
  std::ofstream(d / "tokenizer_config.json") << R"({"strip_accents": false, "tokenize_chinese_chars": false})";
  CHECK(ids("Café 中文") == std::vector<int64_t>{2, 5, 8, 3});
  std::ofstream(d / "tokenizer_config.json") << R"({"strip_accents": null})";
  CHECK(ids("Café") == std::vector<int64_t>{2, 4, 3});  // null: as lower_case
  std::ofstream(d / "tokenizer_config.json") << R"({"strip_accents": "yes"})";
  test::expect_error([&] { (void)ids("x"); }, {"tokenizer_config.json", "'strip_accents'"});
  std::ofstream(d / "tokenizer_config.json") << R"({"tokenize_chinese_chars": 1})";
  test::expect_error([&] { (void)nn::load_text_tokenizer(d, true); }, {"tokenizer_config.json", "'tokenize_chinese_chars'"});
}
