// What a Hugging Face model folder is and how its text is tokenized: the model type of its
// config.json (bert, roberta: sequence classification; llama: causal LM), the classifier's
// tokenizer by type (WordPiece vocab.txt or byte-level BPE vocab.json + merges.txt) and
// LLaMA's optional SentencePiece tokenizer.model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nn/sentencepiece.hpp"
#include "nn/wordpiece.hpp"

namespace mlsys::nn {

// "bert", "roberta" or "llama"; InputError naming <folder>/config.json when it is missing,
// malformed or of another type.
[[nodiscard]] std::string model_type(const std::filesystem::path& folder);

// A sequence classifier's tokenizer, whichever kind the folder holds.
struct TextTokenizer {
  std::function<Encoding(std::string_view, int64_t)> encode;    // <s>/[CLS] ... </s>/[SEP], at most n ids
  std::function<std::vector<int64_t>(std::string_view)> pieces;  // ids without special tokens
  int64_t pad = 0, cls = 0, sep = 0;
};

// RoBERTa's byte-level BPE for model_type roberta (InputError when <s>, </s> or <pad> is
// missing), else BERT's WordPiece from vocab.txt. Its ids must fit the model's word
// embeddings (vocab_size of config.json): InputError naming vocab.txt / vocab.json otherwise.
[[nodiscard]] TextTokenizer load_text_tokenizer(const std::filesystem::path& folder, bool lower_case);

// Whichever tokenizer a model folder holds, giving Hugging Face's tokenizer(text)["input_ids"]
// (special tokens included, no truncation) and each id's vocabulary string: for lora-finetune
// tokenize, which compares with Hugging Face directly.
struct FolderTokenizer {
  std::string kind;  // "wordpiece" (bert), "bpe" (roberta), "sentencepiece" (llama)
  std::function<std::vector<int64_t>(std::string_view)> encode;
  std::function<std::string(int64_t)> piece;
};

// load_text_tokenizer's for bert and roberta folders, the SentencePiece tokenizer.model for
// llama ones (InputError naming it when the folder has none). Its ids must fit the model's
// word embeddings, as load_text_tokenizer checks.
[[nodiscard]] FolderTokenizer load_folder_tokenizer(const std::filesystem::path& folder, bool lower_case);

// The folder's tokenizer.model when it has one (nullopt: token-id data only). Its pieces
// must fit the model's `vocab` embeddings (InputError naming the file otherwise).
[[nodiscard]] std::optional<SentencePieceTokenizer> load_spm(const std::filesystem::path& folder, int64_t vocab);

}  // namespace mlsys::nn
