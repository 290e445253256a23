// See hf_folder.hpp.
#include "nn/hf_folder.hpp"

#include <algorithm>
#include <memory>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "nn/bpe.hpp"

namespace mlsys::nn {

namespace fs = std::filesystem;

std::string model_type(const fs::path& folder) {
  const fs::path p = folder / "config.json";
  if (!fs::is_regular_file(p)) throw core::InputError(p.string() + ": no such file (model.path must be a Hugging Face folder)");
  const core::Json j = core::read_json_file(p);
  const std::string t = j.is_object() && j.contains("model_type") && j["model_type"].is_string()
                            ? j["model_type"].get<std::string>()
                            : "";
  if (t != "bert" && t != "roberta" && t != "llama") {
    throw core::InputError(p.string() + ": field 'model_type': expected \"bert\", \"roberta\" or \"llama\", found " +
                           (t.empty() ? std::string("none") : "\"" + t + "\""));
  }
  return t;
}

namespace {

// The rows of the model's word embeddings, as config.json declares them (the checkpoint
// loader holds the tensor to that shape); 0 when the field is absent or not a count (the
// model loader reports it).
int64_t declared_vocab_size(const fs::path& folder) {
  const core::Json j = core::read_json_file(folder / "config.json");
  if (!j.is_object() || !j.contains("vocab_size") || !j["vocab_size"].is_number_integer()) return 0;
  return std::max<int64_t>(j["vocab_size"].get<int64_t>(), 0);
}

// A token id at or beyond the embedding table would fail deep in LibTorch ("index out of
// range in self") at the first batch that uses it: refuse the tokenizer up front.
void check_fits_embeddings(const fs::path& file, int64_t tokens, const fs::path& folder) {
  const int64_t rows = declared_vocab_size(folder);
  if (rows > 0 && tokens > rows) {
    throw core::InputError(file.string() + ": expected at most " + std::to_string(rows) +
                           " tokens (vocab_size in config.json: the rows of the word embeddings), found " +
                           std::to_string(tokens));
  }
}

}  // namespace

namespace {

// A classifier's TextTokenizer over a shared tokenizer of either kind (encode, tokenize_ids).
template <class Tok>
TextTokenizer text_tokenizer(std::shared_ptr<Tok> tok, int64_t pad, int64_t cls, int64_t sep) {
  TextTokenizer t;
  t.encode = [tok](std::string_view text, int64_t n) { return tok->encode(text, n); };
  t.pieces = [tok](std::string_view text) { return tok->tokenize_ids(text); };
  t.pad = pad;
  t.cls = cls;
  t.sep = sep;
  return t;
}

// WordPiece's options: lower_case from the caller (model.lower_case), strip_accents and
// tokenize_chinese_chars from the folder's tokenizer_config.json when it sets them (HF's
// BertTokenizerFast reads the same keys; strip_accents null: as lower_case).
WordPieceOptions wordpiece_options(const fs::path& folder, bool lower_case) {
  WordPieceOptions o;
  o.lower_case = lower_case;
  const fs::path p = folder / "tokenizer_config.json";
  if (!fs::is_regular_file(p)) return o;
  const core::Json j = core::read_json_file(p);
  if (!j.is_object()) throw core::InputError(p.string() + ": expected a JSON object, found " + core::describe_json(j));
  if (j.contains("strip_accents") && !j["strip_accents"].is_null()) {
    if (!j["strip_accents"].is_boolean()) {
      throw core::InputError(p.string() + ": field 'strip_accents': expected true, false or null, found " + core::short_json(j["strip_accents"]));
    }
    o.strip_accents = j["strip_accents"].get<bool>();
  }
  if (j.contains("tokenize_chinese_chars")) {
    if (!j["tokenize_chinese_chars"].is_boolean()) {
      throw core::InputError(p.string() + ": field 'tokenize_chinese_chars': expected true or false, found " +
                             core::short_json(j["tokenize_chinese_chars"]));
    }
    o.tokenize_chinese_chars = j["tokenize_chinese_chars"].get<bool>();
  }
  return o;
}

}  // namespace

TextTokenizer load_text_tokenizer(const fs::path& folder, bool lower_case) {
  if (model_type(folder) == "roberta") {
    auto bpe = std::make_shared<BpeTokenizer>(BpeTokenizer::from_folder(folder));
    check_fits_embeddings(folder / "vocab.json", bpe->vocab_size(), folder);
    if (bpe->bos_id() < 0 || bpe->eos_id() < 0 || bpe->pad_id() < 0) {
      throw core::InputError((folder / "vocab.json").string() + ": a RoBERTa vocabulary needs <s>, </s> and <pad>");
    }
    return text_tokenizer(bpe, bpe->pad_id(), bpe->bos_id(), bpe->eos_id());
  }
  auto wp = std::make_shared<WordPieceTokenizer>(WordPieceTokenizer::from_vocab_file(folder / "vocab.txt", wordpiece_options(folder, lower_case)));
  check_fits_embeddings(folder / "vocab.txt", wp->vocab_size(), folder);
  return text_tokenizer(wp, wp->pad_id(), wp->cls_id(), wp->sep_id());
}

FolderTokenizer load_folder_tokenizer(const fs::path& folder, bool lower_case) {
  FolderTokenizer t;
  const std::string type = model_type(folder);
  if (type == "llama") {
    const fs::path file = folder / "tokenizer.model";
    if (!fs::exists(file)) {
      throw core::InputError(file.string() + ": no such file (a LLaMA folder needs a SentencePiece tokenizer.model to tokenize text)");
    }
    auto spm = std::make_shared<SentencePieceTokenizer>(SentencePieceTokenizer::from_folder(folder));
    check_fits_embeddings(file, spm->vocab_size(), folder);
    t.kind = "sentencepiece";
    t.encode = [spm](std::string_view text) { return spm->encode(text); };
    t.piece = [spm](int64_t id) { return spm->piece(id); };
  } else if (type == "roberta") {
    auto bpe = std::make_shared<BpeTokenizer>(BpeTokenizer::from_folder(folder));
    check_fits_embeddings(folder / "vocab.json", bpe->vocab_size(), folder);
    t.kind = "bpe";
    t.encode = [bpe](std::string_view text) { return bpe->encode(text, int64_t{1} << 40).ids; };
    t.piece = [bpe](int64_t id) { return bpe->token(id); };
  } else {
    auto wp = std::make_shared<WordPieceTokenizer>(WordPieceTokenizer::from_vocab_file(folder / "vocab.txt", wordpiece_options(folder, lower_case)));
    check_fits_embeddings(folder / "vocab.txt", wp->vocab_size(), folder);
    t.kind = "wordpiece";
    t.encode = [wp](std::string_view text) { return wp->encode(text, int64_t{1} << 40).ids; };
    t.piece = [wp](int64_t id) { return wp->token(id); };
  }
  return t;
}

std::optional<SentencePieceTokenizer> load_spm(const fs::path& folder, int64_t vocab) {
  const fs::path file = folder / "tokenizer.model";
  if (!fs::exists(file)) return std::nullopt;
  auto tok = SentencePieceTokenizer::from_folder(folder);
  if (tok.vocab_size() > vocab) {
    throw core::InputError(file.string() + ": " + std::to_string(tok.vocab_size()) + " pieces, but the model has " +
                           std::to_string(vocab) + " token embeddings");
  }
  return tok;
}

}  // namespace mlsys::nn
