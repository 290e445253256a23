// BERT WordPiece tokenization (see wordpiece.hpp). The Unicode facts BERT's normaliser
// needs (whitespace, control, punctuation, NFD-without-marks + lower case) come from a
// table generated from Python's unicodedata for the code points below U+3000 and the
// compatibility blocks; other code points pass through unchanged (CJK ideographs are
// split into single-character words, as BERT does).
#include "nn/wordpiece.hpp"

#include <algorithm>
#include <fstream>

#include "core/error.hpp"

namespace mlsys::nn {
namespace {

struct UnicodeRow {
  char32_t cp;
  int flags;
  const char* mapped;
};
constexpr UnicodeRow kUnicode[] = {
#include "nn/unicode_table.inc"
};
constexpr int kWhitespace = 1, kControl = 2, kPunct = 4;

const UnicodeRow* lookup(char32_t cp) {
  auto it = std::lower_bound(std::begin(kUnicode), std::end(kUnicode), cp,
                             [](const UnicodeRow& r, char32_t c) { return r.cp < c; });
  return (it != std::end(kUnicode) && it->cp == cp) ? it : nullptr;
}

// Decodes one UTF-8 code point; invalid bytes become U+FFFD (which BERT drops).
char32_t next_cp(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + static_cast<size_t>(len) > s.size()) {
    ++i;
    return 0xFFFD;
  }
  char32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
    if ((b >> 6) != 2) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  i += static_cast<size_t>(len);
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_cjk(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

bool ascii_punct(char32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, WordPieceOptions opts)
    : vocab_(std::move(vocab)), opts_(opts) {
  for (size_t i = 0; i < vocab_.size(); ++i) index_.emplace(vocab_[i], static_cast<int64_t>(i));
  cls_ = token_id("[CLS]");
  sep_ = token_id("[SEP]");
  pad_ = token_id("[PAD]");
  unk_ = token_id("[UNK]");
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::filesystem::path& path, WordPieceOptions opts) {
  std::ifstream in(path);
  if (!in) throw core::InputError(path.string() + ": cannot open the vocabulary (expected a BERT vocab.txt)");
  std::vector<std::string> vocab;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    vocab.push_back(line);
  }
  WordPieceTokenizer tok(std::move(vocab), opts);
  for (const char* special : {"[UNK]", "[CLS]", "[SEP]", "[PAD]"}) {
    if (tok.token_id(special) < 0) {
      throw core::InputError(path.string() + ": vocabulary of " + std::to_string(tok.vocab_size()) +
                             " tokens lacks the special token " + special);
    }
  }
  return tok;
}

int64_t WordPieceTokenizer::token_id(const std::string& token) const {
  auto it = index_.find(token);
  return it == index_.end() ? -1 : it->second;
}

std::vector<std::string> WordPieceTokenizer::basic_tokenize(std::string_view text) const {
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) words.push_back(std::move(cur));
    cur.clear();
  };
  size_t i = 0;
  while (i < text.size()) {
    const char32_t cp = next_cp(text, i);
    if (cp == 0 || cp == 0xFFFD) continue;
    if (cp < 0x80) {
      const char c = static_cast<char>(cp);
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        flush();
      } else if (cp < 0x20 || cp == 0x7F) {
        // control characters are removed
      } else if (ascii_punct(cp)) {
        flush();
        words.emplace_back(1, c);
      } else {
        cur += (opts_.lower_case && c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      }
      continue;
    }
    if (is_cjk(cp)) {
      flush();
      std::string w;
      append_utf8(w, cp);
      words.push_back(std::move(w));
      continue;
    }
    const UnicodeRow* row = lookup(cp);
    if (row != nullptr && (row->flags & kWhitespace)) {
      flush();
    } else if (row != nullptr && (row->flags & kControl)) {
      // removed
    } else if (row != nullptr && (row->flags & kPunct)) {
      flush();
      std::string w;
      append_utf8(w, cp);
      words.push_back(std::move(w));
    } else if (opts_.lower_case && row != nullptr) {
      cur += row->mapped;  // may be empty: a lone combining mark
    } else {
      append_utf8(cur, cp);
    }
  }
  flush();
  return words;
}

void WordPieceTokenizer::wordpiece(const std::string& word, std::vector<int64_t>& out) const {
  // count code points for the length limit
  size_t n_cp = 0;
  for (unsigned char c : word) n_cp += (c & 0xC0) != 0x80;
  if (static_cast<int>(n_cp) > opts_.max_chars_per_word) {
    out.push_back(unk_);
    return;
  }
  std::vector<int64_t> pieces;
  size_t start = 0;
  while (start < word.size()) {
    size_t end = word.size();
    int64_t found = -1;
    while (end > start) {
      std::string sub = (start > 0 ? "##" : "") + word.substr(start, end - start);
      if (auto id = token_id(sub); id >= 0) {
        found = id;
        break;
      }
      // step back one code point
      do {
        --end;
      } while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
    }
    if (found < 0) {
      out.push_back(unk_);
      return;
    }
    pieces.push_back(found);
    start = end;
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

std::vector<int64_t> WordPieceTokenizer::tokenize_ids(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const auto& w : basic_tokenize(text)) wordpiece(w, ids);
  return ids;
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> out;
  for (int64_t id : tokenize_ids(text)) out.push_back(token(id));
  return out;
}

Encoding WordPieceTokenizer::encode(std::string_view text, int64_t max_length) const {
  std::vector<int64_t> ids = tokenize_ids(text);
  const auto keep = static_cast<size_t>(std::max<int64_t>(0, max_length - 2));
  if (ids.size() > keep) ids.resize(keep);
  Encoding e;
  e.ids.reserve(ids.size() + 2);
  e.ids.push_back(cls_);
  e.ids.insert(e.ids.end(), ids.begin(), ids.end());
  e.ids.push_back(sep_);
  e.attention_mask.assign(e.ids.size(), 1);
  return e;
}

}  // namespace mlsys::nn
