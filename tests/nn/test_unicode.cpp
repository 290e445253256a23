// Tokenizers against Hugging Face on all of Unicode: the ids of BertTokenizerFast (MiniLM,
// uncased and cased), RobertaTokenizerFast, GPT2TokenizerFast and LlamaTokenizerFast on a
// multi-script corpus (tests/nn/fixtures/unicode/ids.jsonl), BERT's normalizer and
// pre-tokenizer on every code point (bert_codepoints.jsonl), both made by
// scripts/tokenizer-fixtures.py; and nn::unicode's answers on known characters.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "nn/bpe.hpp"
#include "nn/sentencepiece.hpp"
#include "nn/unicode.hpp"
#include "nn/wordpiece.hpp"

namespace fs = std::filesystem;
using namespace mlsys;

namespace {
const fs::path kRoot = MLSYS_SOURCE_ROOT;
const fs::path kFix = kRoot / "tests/nn/fixtures";
const fs::path kMiniLMVocab = kRoot / ".deps/models/all-MiniLM-L6-v2/vocab.txt";

std::vector<nlohmann::json> jsonl(const fs::path& p) {
  std::ifstream in(p);
  REQUIRE(in);
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    if (!j.contains("meta")) rows.push_back(std::move(j));
  }
  return rows;
}

std::string u8(char32_t cp) {
  std::string s;
  nn::unicode::append_utf8(s, cp);
  return s;
}

nn::WordPieceTokenizer minilm(bool lower_case) {
  REQUIRE(fs::exists(kMiniLMVocab));  // scripts/install-deps fetches all-MiniLM-L6-v2
  nn::WordPieceOptions o;
  o.lower_case = lower_case;
  return nn::WordPieceTokenizer::from_vocab_file(kMiniLMVocab, o);
}
}  // namespace

TEST_CASE("Multi-script corpus: every tokenizer gives Hugging Face's ids") {
  const auto bert = minilm(true), bert_cased = minilm(false);
  const auto roberta = nn::BpeTokenizer::from_folder(kFix / "roberta");
  const auto gpt2 = nn::BpeTokenizer::from_folder(kFix / "bpe/gpt2");
  const auto llama = nn::SentencePieceTokenizer::from_folder(kFix / "spm");
  const auto rows = jsonl(kFix / "unicode/ids.jsonl");
  REQUIRE(rows.size() >= 1000);
  std::map<std::string, int> bad;
  std::map<std::string, int> kinds;
  auto check = [&](const std::string& name, const std::string& text, const std::vector<int64_t>& got,
                   const nlohmann::json& want) {
    if (got == want.get<std::vector<int64_t>>()) return;
    if (++bad[name] <= 5) UNSCOPED_INFO(name << " differs on " << nlohmann::json(text).dump());
  };
  for (const auto& r : rows) {
    const auto text = r["text"].get<std::string>();
    ++kinds[r["kind"].get<std::string>()];
    check("bert", text, bert.encode(text, 1 << 20).ids, r["bert"]);
    check("bert_cased", text, bert_cased.encode(text, 1 << 20).ids, r["bert_cased"]);
    if (bert.tokenize(text) != r["bert_pieces"].get<std::vector<std::string>>()) ++bad["bert_pieces"];
    check("roberta", text, roberta.encode(text, 1 << 20).ids, r["roberta"]);
    check("gpt2", text, gpt2.tokenize_ids(text), r["gpt2"]);
    check("llama", text, llama.encode(text), r["llama"]);
  }
  CHECK(kinds["corpus"] >= 130);
  CHECK(kinds["script"] >= 500);
  CHECK(kinds["random"] >= 300);
  for (const char* name : {"bert", "bert_cased", "bert_pieces", "roberta", "gpt2", "llama"}) {
    INFO(name);
    CHECK(bad[name] == 0);
  }
}

TEST_CASE("BERT's normalizer and pre-tokenizer equal tokenizers' on every code point") {
  const auto uncased = minilm(true), cased = minilm(false);
  const auto rows = jsonl(kFix / "unicode/bert_codepoints.jsonl");
  REQUIRE(rows.size() > 1000);
  std::map<std::string, int64_t> seen, bad;
  int64_t newer = 0;
  for (const auto& r : rows) {
    const auto mode = r["mode"].get<std::string>();
    const auto kind = r["kind"].get<std::string>();
    const auto& tok = mode == "cased" ? cased : uncased;
    const auto lo = r["lo"].get<char32_t>(), hi = r["hi"].get<char32_t>();
    for (char32_t cp = lo; cp <= hi; ++cp) {
      const std::string c = u8(cp);
      std::vector<std::string> want;
      if (kind == "kept") want = {"a" + c + "b"};
      else if (kind == "dropped") want = {"ab"};
      else if (kind == "space") want = {"a", "b"};
      else if (kind == "split") want = {"a", c, "b"};
      else want = r["words"].get<std::vector<std::string>>();
      ++seen[mode];
      if (tok.basic_tokenize("a" + c + "b") == want) continue;
      // Rust's to_lowercase knows Unicode 16; utf8proc 2.8 stops at 15.0, so a capital
      // letter assigned since (U+1C89, U+A7CB, ...) keeps its case here
      if (kind == "words" && nn::unicode::category(cp) == nn::unicode::Category::Cn) {
        ++newer;
        continue;
      }
      if (++bad[mode] <= 10) {
        char hex[16];
        std::snprintf(hex, sizeof hex, "U+%04X", static_cast<unsigned>(cp));
        UNSCOPED_INFO(mode << " " << hex << " (" << kind << ") differs");
      }
    }
  }
  CHECK(seen["uncased"] == 0x110000 - 0x800);  // every code point but the surrogates
  CHECK(seen["cased"] == 0x110000 - 0x800);
  CHECK(bad["uncased"] == 0);
  CHECK(bad["cased"] == 0);
  CHECK(newer <= 56);  // 56 with Debian bookworm's utf8proc 2.8; 0 once it has Unicode 16
}

TEST_CASE("WordPiece on the characters the old table missed (above U+3000)") {
  const auto tok = minilm(true);
  // U+3000 is white space; CJK punctuation is split off; kana voicing marks go with NFD
  CHECK(tok.basic_tokenize("a\u3000b") == std::vector<std::string>{"a", "b"});
  CHECK(tok.basic_tokenize("「引用」、【括弧】・。") ==
        std::vector<std::string>{"「", "引", "用", "」", "、", "【", "括", "弧", "】", "・", "。"});
  CHECK(tok.normalize("がぱ") == "かは");
  CHECK(tok.normalize("ｶﾞ") == "ｶﾞ");  // half-width voiced mark U+FF9E is Lm, not a combining mark
  // Hangul syllables decompose into conjoining jamo (NFD)
  CHECK(tok.normalize("한") == "\u1112\u1161\u11ab");
  // format and tag characters are dropped; Ü ß İ
  CHECK(tok.normalize("a\u200b\u200c\u200d\u200e\u200f\u2060\ufeffb\U000E0001\U000E0041c") == "abc");
  CHECK(tok.normalize("ÜBER Straße İstanbul") == "uber straße istanbul");
  const auto cased = minilm(false);
  CHECK(cased.normalize("İ Ü") == "İ Ü");  // no NFD without lower-casing (strip_accents follows it)
  nn::WordPieceOptions o;
  o.strip_accents = false;
  const auto lower_only = nn::WordPieceTokenizer(std::vector<std::string>{"[UNK]"}, o);
  CHECK(lower_only.normalize("İ") == "i\u0307");  // Rust's to_lowercase: two code points
  // a word over max_input_chars_per_word (100) is one [UNK]
  CHECK(tok.tokenize(std::string(100, 'a')).size() > 1);
  CHECK(tok.tokenize(std::string(101, 'a')) == std::vector<std::string>{"[UNK]"});
  // invalid UTF-8 bytes are U+FFFD, which BERT drops
  CHECK(tok.basic_tokenize("a\xff\xfe b") == std::vector<std::string>{"a", "b"});
}

TEST_CASE("nn::unicode: categories, White_Space, lower case, normalization forms") {
  using nn::unicode::Category;
  using nn::unicode::Form;
  CHECK(nn::unicode::category(U'A') == Category::Lu);
  CHECK(nn::unicode::category(0x3002) == Category::Po);  // 。
  CHECK(nn::unicode::category(0x300C) == Category::Ps);  // 「
  CHECK(nn::unicode::category(0x3099) == Category::Mn);  // combining voiced sound mark
  CHECK(nn::unicode::category(0x200B) == Category::Cf);
  CHECK(nn::unicode::category(0xE0041) == Category::Cf);
  CHECK(nn::unicode::category(0x0378) == Category::Cn);
  CHECK(std::string(nn::unicode::category_name(Category::Zs)) == "Zs");
  CHECK(nn::unicode::is_white_space(0x3000));
  CHECK(nn::unicode::is_white_space(0x85));
  CHECK_FALSE(nn::unicode::is_white_space(0x200B));
  CHECK(nn::unicode::to_lower(U'Ü') == U'ü');
  CHECK(nn::unicode::to_lower(0x130) == U'i');
  CHECK(nn::unicode::normalize_utf8("が", Form::NFD) == "\u304b\u3099");
  CHECK(nn::unicode::normalize_utf8("\u304b\u3099", Form::NFC) == "が");
  CHECK(nn::unicode::normalize_utf8("ｶﾞ", Form::NFKC) == "ガ");
  CHECK(nn::unicode::normalize_utf8("ﬁ①", Form::NFKD) == "fi1");
  CHECK(nn::unicode::decode_utf8("a\xC0\xAF\xED\xA0\x80z") == std::u32string{U'a', 0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD, U'z'});
  size_t at = 0;
  CHECK_FALSE(nn::unicode::valid_utf8("ok\xE3\x81", &at));
  CHECK(at == 2);
  CHECK(nn::unicode::unicode_version() == "15.0.0");
}
