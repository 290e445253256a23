// lib/nn SentencePieceTokenizer: ids equal to Hugging Face LlamaTokenizerFast's on >= 200
// sentences (held-out fortunes, GSM8K questions, edge cases) for the 512-piece BPE model of
// tests/nn/fixtures/spm (scripts/spm-fixtures.py), its decode, the options, and the errors.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "nn/sentencepiece.hpp"
#include "tests/support/harness.hpp"

namespace fs = std::filesystem;
using namespace mlsys;

namespace {
const fs::path kSpmFixtures = fs::path(MLSYS_SOURCE_ROOT) / "tests/nn/fixtures/spm";

struct SpmRow {
  std::string kind, text, decoded;
  std::vector<int64_t> ids;
  nlohmann::json other;  // the ids of other tokenizers, where they differ from "ids"
  // the ids of tokenizer `name`: its own when recorded as different, "ids" otherwise
  [[nodiscard]] std::vector<int64_t> ids_of(const std::string& name) const {
    return other.contains(name) ? other[name].get<std::vector<int64_t>>() : ids;
  }
};

std::vector<SpmRow> spm_rows() {
  std::ifstream in(kSpmFixtures / "ids.jsonl");
  std::vector<SpmRow> rows;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("meta")) continue;
    rows.push_back({j["kind"], j["text"], j["decoded"], j["ids"].get<std::vector<int64_t>>(),
                    j.value("other", nlohmann::json::object())});
  }
  return rows;
}


std::string spm_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const core::InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

bool spm_starts_with_space(const std::string& s) { return s.starts_with(' ') || s.starts_with("\xE2\x96\x81"); }
}  // namespace

TEST_CASE("SentencePiece ids equal Hugging Face's LlamaTokenizerFast on the fixture sentences") {
  auto tok = nn::SentencePieceTokenizer::from_folder(kSpmFixtures);
  CHECK(tok.options().add_bos_token);  // tokenizer_config.json: as Llama 2's
  CHECK_FALSE(tok.options().add_eos_token);
  CHECK_FALSE(tok.options().legacy);
  const auto rows = spm_rows();
  REQUIRE(rows.size() >= 200);
  size_t mismatches = 0, decode_mismatches = 0, round_trips = 0;
  for (const auto& r : rows) {
    if (tok.encode(r.text) != r.ids) {
      ++mismatches;
      UNSCOPED_INFO("ids mismatch (" << r.kind << "): " << nlohmann::json(r.text).dump());
    }
    if (tok.decode(r.ids) != r.decoded) {
      ++decode_mismatches;
      UNSCOPED_INFO("decode mismatch (" << r.kind << "): " << nlohmann::json(r.text).dump());
    }
    round_trips += r.decoded == r.text && tok.decode(tok.encode(r.text)) == r.text;
  }
  CHECK(mismatches == 0);
  CHECK(decode_mismatches == 0);
  CHECK(round_trips >= 250);  // HF's decode drops a leading space and the special tokens
}

TEST_CASE("SentencePiece legacy=true is LlamaTokenizerFast(legacy=True); split_special_tokens is sentencepiece") {
  auto tok = nn::SentencePieceTokenizer::from_folder(kSpmFixtures);
  size_t legacy_mismatches = 0, split_mismatches = 0, split_checked = 0;
  for (const auto& r : spm_rows()) {
    tok.set_options({.legacy = true});
    if (tok.encode(r.text) != r.ids_of("fast_legacy")) {
      ++legacy_mismatches;
      UNSCOPED_INFO("legacy mismatch: " << nlohmann::json(r.text).dump());
    }
    // sentencepiece's own ids, save for its extra dummy prefix before a leading space
    if (!spm_starts_with_space(r.text)) {
      ++split_checked;
      tok.set_options({.split_special_tokens = true});
      if (tok.encode(r.text) != r.ids_of("sentencepiece")) {
        ++split_mismatches;
        UNSCOPED_INFO("split_special_tokens mismatch: " << nlohmann::json(r.text).dump());
      }
    }
  }
  CHECK(legacy_mismatches == 0);
  CHECK(split_mismatches == 0);
  CHECK(split_checked >= 200);
}

TEST_CASE("SentencePiece BOS/EOS options, special ids, pieces") {
  auto tok = nn::SentencePieceTokenizer::from_folder(kSpmFixtures);
  CHECK(tok.vocab_size() == 512);
  CHECK(tok.unk_id() == 0);
  CHECK(tok.bos_id() == 1);
  CHECK(tok.eos_id() == 2);
  CHECK(tok.pad_id() == -1);  // as Llama's: no pad piece
  CHECK(tok.piece(1) == "<s>");
  CHECK(tok.piece_id("</s>") == 2);
  CHECK(tok.piece_id("<0x0A>") == 13);
  CHECK(tok.piece_id("no such piece") == -1);
  CHECK_THROWS_AS((void)tok.piece(512), core::InputError);
  CHECK_THROWS_AS((void)tok.decode({5, -1}), core::InputError);

  const auto with_bos = tok.encode("Hello world");
  const std::vector<int64_t> plain(with_bos.begin() + 1, with_bos.end());
  CHECK(with_bos.front() == 1);
  CHECK(tok.encode("Hello world", false, false) == plain);
  auto with_eos = plain;
  with_eos.push_back(2);
  CHECK(tok.encode("Hello world", false, true) == with_eos);  // HF add_eos_token=True (checked by the script)
  CHECK(tok.encode("") == std::vector<int64_t>{1});
  CHECK(tok.tokenize("Hello world").size() == plain.size());
  CHECK(tok.tokenize(" Hello").front().starts_with("\xE2\x96\x81H"));  // one "▁", as HF; not "▁▁"
  CHECK(tok.decode(tok.encode("emoji 😀 ok")) == "emoji 😀 ok");         // byte fallback both ways

  // from_model_file: explicit options, tokenizer_config.json not read
  auto bare = nn::SentencePieceTokenizer::from_model_file(kSpmFixtures / "tokenizer.model",
                                                          {.add_bos_token = false, .add_eos_token = true});
  CHECK(bare.encode("Hello world") == with_eos);
}

TEST_CASE("SentencePiece dummy prefix: HF's add_prefix_space decides, not the model's add_dummy_prefix") {
  // Checked with transformers 5.24 LlamaTokenizerFast(add_prefix_space=False) on the fixture model.
  auto tok = nn::SentencePieceTokenizer::from_folder(kSpmFixtures);
  const auto usual = tok.encode("Hello world");
  tok.set_options({.add_prefix_space = false});
  CHECK(tok.encode("Hello world") == std::vector<int64_t>{1, 443, 401, 285, 403, 267, 277, 334});
  CHECK(tok.tokenize("Hello world").front() == "H");
  CHECK(tok.encode(" Hello") == std::vector<int64_t>{1, 378, 401, 285, 403});
  CHECK(tok.decode(tok.encode(" Hello")) == " Hello");  // no Strip decoder either
  CHECK(tok.encode("<s>Hi") == std::vector<int64_t>{1, 1, 443, 406});

  // The same model with normalizer_spec.add_dummy_prefix false (a second normalizer_spec field
  // merges into the first): HF's LlamaTokenizer(Fast) still prepends "▁", and so do we.
  const mlsys::test::TempDir scratch("nodummy");
  const fs::path& d = scratch.path;
  std::ifstream in(kSpmFixtures / "tokenizer.model", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(d / "tokenizer.model", std::ios::binary) << bytes << std::string("\x1A\x02\x18\x00", 4);
  auto nodummy = nn::SentencePieceTokenizer::from_folder(d);
  CHECK(nodummy.encode("Hello world") == usual);
}

TEST_CASE("SentencePiece errors: a missing or corrupt model names the file") {
  const mlsys::test::TempDir scratch("errors");
  const fs::path& d = scratch.path;
  auto load = [](const fs::path& p) { return [p] { (void)nn::SentencePieceTokenizer::from_model_file(p); }; };

  std::string msg = spm_error([&] { (void)nn::SentencePieceTokenizer::from_folder(d); });
  CHECK(msg.find((d / "tokenizer.model").string()) != std::string::npos);
  CHECK(msg.find("no such file") != std::string::npos);

  std::ofstream(d / "empty.model").flush();
  msg = spm_error(load(d / "empty.model"));
  CHECK(msg.find("empty.model: not a SentencePiece model") != std::string::npos);

  std::ofstream(d / "text.model") << "this is not a protobuf\n";
  msg = spm_error(load(d / "text.model"));
  CHECK(msg.find("text.model: not a SentencePiece model") != std::string::npos);

  std::ifstream in(kSpmFixtures / "tokenizer.model", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (size_t cut : {size_t{1}, size_t{100}, bytes.size() / 2, bytes.size() - 3}) {
    std::ofstream(d / "cut.model", std::ios::binary) << bytes.substr(0, cut);
    msg = spm_error(load(d / "cut.model"));
    INFO("truncated to " << cut << " bytes: " << msg);
    CHECK(msg.find("cut.model: not a SentencePiece model") != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);  // one line
  }

  msg = spm_error(load(d));
  CHECK(msg.find("is a directory") != std::string::npos);

  fs::copy_file(kSpmFixtures / "tokenizer.model", d / "tokenizer.model");
  std::ofstream(d / "tokenizer_config.json") << "{\"add_bos_token\": \"yes\"}";
  msg = spm_error([&] { (void)nn::SentencePieceTokenizer::from_folder(d); });
  CHECK(msg.find("tokenizer_config.json: add_bos_token must be true or false") != std::string::npos);
  std::ofstream(d / "tokenizer_config.json") << "{oops";
  msg = spm_error([&] { (void)nn::SentencePieceTokenizer::from_folder(d); });
  CHECK(msg.find("tokenizer_config.json: malformed JSON") != std::string::npos);
  std::ofstream(d / "tokenizer_config.json") << "{\"add_bos_token\": false, \"legacy\": true}";
  auto tok = nn::SentencePieceTokenizer::from_folder(d);
  CHECK_FALSE(tok.options().add_bos_token);
  CHECK(tok.options().legacy);
}
