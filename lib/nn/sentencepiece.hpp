// Llama's SentencePiece tokenizer (a folder's tokenizer.model) through libsentencepiece, giving
// the ids of Hugging Face's LlamaTokenizerFast. No LibTorch and no sentencepiece headers here.
//
// Hugging Face behaviour matched (transformers 5 LlamaTokenizer = LlamaTokenizerFast, and 4.x's
// LlamaTokenizerFast with legacy=False; tests/nn/fixtures/spm/ids.jsonl):
//  - The dummy prefix is HF's Metaspace pre-tokenizer, not sentencepiece's add_dummy_prefix:
//    spaces become "▁" and one "▁" is prepended only when the text does not already start
//    with " " or "▁". So " Hello" is "▁Hello" (sentencepiece, and the slow LlamaTokenizer,
//    give "▁▁Hello"). As in HF, add_prefix_space (default true) decides, not the model's
//    add_dummy_prefix.
//  - The strings of the control and unknown pieces ("<s>", "</s>", "<unk>") in the text are
//    those tokens, matched leftmost-longest as HF's added tokens (sentencepiece reads them as
//    plain text; split_special_tokens=true does so too). The text after one gets no dummy
//    prefix (legacy=false, HF's prepend_scheme "first"); legacy=true gives every piece of
//    text between them a prefix unless it starts with a space (transformers 5's "always";
//    4.x's legacy=True tokenizers prefix those too, giving "▁▁").
//  - Everything else is sentencepiece's own encoding (its normalizer: Llama's is "identity"
//    without whitespace collapsing, which HF's tokenizer, having no normalizer, assumes).
//  - decode() is decode(ids, skip_special_tokens=True): control and unknown ids are dropped,
//    byte pieces are fused into UTF-8, and one leading space (the dummy prefix) is removed.
//  - Hugging Face's fast and slow Llama tokenizers give the same BPE pieces as sentencepiece
//    on the fixture; only the dummy prefix and the special-token strings differ.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mlsys::nn {

// Hugging Face's tokenizer_config.json keys of the same names, with LlamaTokenizer's defaults.
struct SentencePieceOptions {
  bool add_bos_token = true;
  bool add_eos_token = false;
  bool legacy = false;
  bool add_prefix_space = true;       // the dummy prefix "▁" (null in the JSON: true)
  bool split_special_tokens = false;  // true: "<s>" in the text is text, not the BOS token
};

class SentencePieceTokenizer {
 public:
  // DIR/tokenizer.model; the options from DIR/tokenizer_config.json's keys when present,
  // LlamaTokenizer's defaults otherwise.
  // core::InputError naming the file when either is missing (the model), unreadable or corrupt.
  static SentencePieceTokenizer from_folder(const std::filesystem::path& dir);
  static SentencePieceTokenizer from_model_file(const std::filesystem::path& model_file,
                                                SentencePieceOptions opts = {});
  SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept;
  SentencePieceTokenizer& operator=(SentencePieceTokenizer&&) noexcept;
  ~SentencePieceTokenizer();

  // Ids with BOS/EOS as the options say (HF's tokenizer(text)["input_ids"]).
  [[nodiscard]] std::vector<int64_t> encode(std::string_view text) const;
  [[nodiscard]] std::vector<int64_t> encode(std::string_view text, bool add_bos, bool add_eos) const;
  // The pieces of encode(text, false, false).
  [[nodiscard]] std::vector<std::string> tokenize(std::string_view text) const;
  // Text of the ids, special ones skipped; core::InputError for an id outside the vocabulary.
  [[nodiscard]] std::string decode(const std::vector<int64_t>& ids) const;

  [[nodiscard]] int64_t vocab_size() const;
  [[nodiscard]] int64_t bos_id() const;  // -1 when the model has none
  [[nodiscard]] int64_t eos_id() const;
  [[nodiscard]] int64_t pad_id() const;  // -1 for Llama's models (HF: pad_token None)
  [[nodiscard]] int64_t unk_id() const;
  [[nodiscard]] std::string piece(int64_t id) const;             // core::InputError outside the vocabulary
  [[nodiscard]] int64_t piece_id(std::string_view piece) const;  // -1 when absent
  [[nodiscard]] const SentencePieceOptions& options() const;
  void set_options(const SentencePieceOptions& opts);

 private:
  struct Impl;
  explicit SentencePieceTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mlsys::nn
