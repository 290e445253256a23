// Byte-level BPE tokenization of GPT-2 and RoBERTa (a folder's vocab.json + merges.txt), giving
// the ids of Hugging Face's RobertaTokenizerFast / GPT2TokenizerFast. No LibTorch.
//
// What is matched (tests/nn/fixtures/bpe/ids.jsonl, scripts/roberta-fixtures.py):
//  - The special tokens of the vocabulary among <s> <pad> </s> <unk> <mask> <|endoftext|> are
//    split off the text first, leftmost-longest (HF's added tokens); lstrip/rstrip come from
//    tokenizer_config.json's added_tokens_decoder when the folder has one (transformers 5
//    builds <mask> without lstrip from vocab.json + merges.txt alone; roberta-base's own
//    tokenizer_config.json sets it).
//  - Each piece of text between them is pre-tokenized with GPT-2's regex
//    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//    (Unicode letters, numbers and White_Space from utf8proc, nn/unicode.hpp; no prefix space
//    is added, as RoBERTa's add_prefix_space=false).
//  - Each word's UTF-8 bytes become GPT-2's byte-to-unicode symbols, merged by the rank of
//    the merges.txt line (lowest first, every occurrence left to right).
//  - encode() adds <s> ... </s> (RobertaProcessing), truncating the pieces so the row is at
//    most max_length ids; decode() skips the special tokens.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "nn/wordpiece.hpp"  // nn::Encoding

namespace mlsys::nn {

class BpeTokenizer {
 public:
  // DIR/vocab.json + DIR/merges.txt (+ DIR/tokenizer_config.json for lstrip/rstrip of the
  // special tokens). core::InputError naming the file when one is missing or malformed.
  static BpeTokenizer from_folder(const std::filesystem::path& dir);
  static BpeTokenizer from_files(const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt);

  // The pre-tokenizer's words of `text` (UTF-8 bytes, before the byte-to-unicode map).
  [[nodiscard]] std::vector<std::string> pre_tokenize(std::string_view text) const;
  // Ids without <s>/</s> (special-token strings in the text are those tokens).
  [[nodiscard]] std::vector<int64_t> tokenize_ids(std::string_view text) const;
  // Vocabulary strings (byte-to-unicode form, "Ġhello") of tokenize_ids.
  [[nodiscard]] std::vector<std::string> tokenize(std::string_view text) const;
  // <s> ids </s>, the ids cut so the row holds at most max_length (>= 2) ids. core::InputError
  // when the vocabulary lacks <s> or </s>.
  [[nodiscard]] Encoding encode(std::string_view text, int64_t max_length) const;
  // The text of the ids (special ones skipped; invalid UTF-8 from partial tokens kept as bytes).
  // core::InputError for an id outside the vocabulary.
  [[nodiscard]] std::string decode(const std::vector<int64_t>& ids) const;

  [[nodiscard]] int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }
  [[nodiscard]] int64_t token_id(const std::string& token) const;  // -1 when absent
  [[nodiscard]] const std::string& token(int64_t id) const { return tokens_.at(static_cast<size_t>(id)); }
  [[nodiscard]] int64_t bos_id() const { return bos_; }  // <s>; -1 when absent
  [[nodiscard]] int64_t eos_id() const { return eos_; }  // </s>
  [[nodiscard]] int64_t pad_id() const { return pad_; }  // <pad>
  [[nodiscard]] int64_t unk_id() const { return unk_; }  // <unk>
  [[nodiscard]] int64_t mask_id() const { return mask_; }

 private:
  struct Special {
    std::string text;
    int64_t id;
    bool lstrip = false, rstrip = false;
  };
  void bpe_word(std::string_view word, std::vector<int64_t>& out) const;
  std::vector<std::string> tokens_;                        // id -> token (empty for holes)
  std::unordered_map<std::string, int64_t> index_;         // token -> id
  std::unordered_map<std::string, int32_t> merge_rank_;    // "left right" -> line rank
  std::vector<Special> specials_;
  int64_t bos_ = -1, eos_ = -1, pad_ = -1, unk_ = -1, mask_ = -1;
};

}  // namespace mlsys::nn
