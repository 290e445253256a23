// BERT's WordPiece tokenizer read from a vocab.txt: Hugging Face tokenizers' BertNormalizer
// (clean text, CJK split, accent stripping after NFD, lower-casing), BertPreTokenizer (split
// on White_Space and around punctuation) and greedy longest-match WordPiece with "##"
// continuations, giving BertTokenizerFast's ids for any text (tests/nn/fixtures/tokenizers).
// The Unicode facts come from utf8proc (nn/unicode.hpp). No LibTorch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mlsys::nn {

// tokenizer_config.json's keys of the same names, with BertTokenizer's defaults.
struct WordPieceOptions {
  bool lower_case = true;      // do_lower_case (uncased models)
  int max_chars_per_word = 100;  // max_input_chars_per_word: a longer word is one [UNK]
  std::optional<bool> strip_accents;  // NFD then drop Mn; unset: as lower_case (HF's null)
  bool tokenize_chinese_chars = true;  // each CJK ideograph its own word
  bool clean_text = true;              // drop control/format characters, map White_Space to " "
};

// One encoded batch row: [CLS] pieces [SEP], truncated to max_length, plus the mask.
struct Encoding {
  std::vector<int64_t> ids;
  std::vector<int64_t> attention_mask;
};

class WordPieceTokenizer {
 public:
  // core::InputError naming the file when it is missing, empty or lacks [UNK]/[CLS]/[SEP]/[PAD].
  static WordPieceTokenizer from_vocab_file(const std::filesystem::path& vocab_txt, WordPieceOptions opts = {});
  // From an in-memory vocabulary (one token per entry, id = index).
  WordPieceTokenizer(std::vector<std::string> vocab, WordPieceOptions opts = {});

  // BertNormalizer's output for `text` (invalid UTF-8 bytes count as U+FFFD, which it drops).
  [[nodiscard]] std::string normalize(std::string_view text) const;
  // The basic tokenizer's words: normalize(), then split on White_Space and around punctuation.
  [[nodiscard]] std::vector<std::string> basic_tokenize(std::string_view text) const;
  // Piece ids without special tokens.
  [[nodiscard]] std::vector<int64_t> tokenize_ids(std::string_view text) const;
  [[nodiscard]] std::vector<std::string> tokenize(std::string_view text) const;
  // [CLS] ... [SEP], truncated so the whole row is at most max_length ids (no padding).
  [[nodiscard]] Encoding encode(std::string_view text, int64_t max_length) const;

  [[nodiscard]] int64_t vocab_size() const { return static_cast<int64_t>(vocab_.size()); }
  [[nodiscard]] int64_t token_id(const std::string& token) const;  // -1 when absent
  [[nodiscard]] const std::string& token(int64_t id) const { return vocab_.at(static_cast<size_t>(id)); }
  [[nodiscard]] int64_t cls_id() const { return cls_; }
  [[nodiscard]] int64_t sep_id() const { return sep_; }
  [[nodiscard]] int64_t pad_id() const { return pad_; }
  [[nodiscard]] int64_t unk_id() const { return unk_; }

 private:
  void wordpiece(const std::string& word, std::vector<int64_t>& out) const;
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int64_t> index_;
  WordPieceOptions opts_;
  int64_t cls_ = -1, sep_ = -1, pad_ = -1, unk_ = -1;
};

}  // namespace mlsys::nn
