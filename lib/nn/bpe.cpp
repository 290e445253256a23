// Byte-level BPE (see bpe.hpp). One translation unit with the rest of lib/nn (unity build):
// the helpers live in bpe_impl so they do not meet wordpiece.cpp's.
#include "nn/bpe.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/json.hpp"
#include "nn/unicode.hpp"

namespace mlsys::nn {
namespace {
namespace bpe_impl {  // (not a using-directive below: the unity build shares the namespace)

constexpr int kLetter = 1, kNumber = 2, kSpace = 3, kOther = 0;

// The regex classes \p{L}, \p{N} and \s (White_Space) of a code point, from utf8proc's
// Unicode 15 tables. tokenizers' regex engine (Oniguruma) has the same classes for every
// code point assigned in Unicode 15; the ones assigned later (15.1, 16) are letters or
// numbers there and "other" here.
int cp_class(char32_t cp) {
  const unicode::Category c = unicode::category(cp);
  if (unicode::is_letter(c)) return kLetter;
  if (unicode::is_number(c)) return kNumber;
  return unicode::is_white_space(cp) ? kSpace : kOther;
}

// One code point of `s` at byte i: its value and byte length. An invalid byte is one code
// point of its own (class "other"), so the pre-tokenizer never loses bytes.
struct Cp {
  char32_t cp;
  size_t begin, end;
  int cls;
};

std::vector<Cp> code_points(std::string_view s) {
  std::vector<Cp> out;
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    const int len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + static_cast<size_t>(len) <= s.size();
    char32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    for (int k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((b >> 6) != 2) ok = false;
      cp = (cp << 6) | (b & 0x3F);
    }
    if (!ok) {
      out.push_back({0xFFFD, i, i + 1, kOther});
      ++i;
      continue;
    }
    out.push_back({cp, i, i + static_cast<size_t>(len), cp_class(cp)});
    i += static_cast<size_t>(len);
  }
  return out;
}

void put_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the others for
// U+0100 onwards in byte order. Each symbol as UTF-8.
const std::array<std::string, 256>& byte_symbols() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      put_utf8(t[static_cast<size_t>(b)], printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++));
    }
    return t;
  }();
  return table;
}

// The inverse: the byte of a symbol code point (-1 for none).
int symbol_byte(char32_t cp) {
  static const std::vector<int> inv = [] {
    std::vector<int> v(512, -1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      v[static_cast<size_t>(printable ? b : 256 + n++)] = b;
    }
    return v;
  }();
  return cp < inv.size() ? inv[cp] : -1;
}

// GPT-2's pre-tokenization regex over the code points [from, to) of one piece of text.
void split_words(const std::vector<Cp>& c, size_t from, size_t to, std::string_view s, std::vector<std::string>& out) {
  size_t i = from;
  auto emit = [&](size_t a, size_t b) {  // code points [a, b)
    out.emplace_back(s.substr(c[a].begin, c[b - 1].end - c[a].begin));
  };
  auto run = [&](size_t j, int cls) {
    while (j < to && c[j].cls == cls) ++j;
    return j;
  };
  while (i < to) {
    // 's|'t|'re|'ve|'m|'ll|'d
    if (c[i].cp == U'\'' && i + 1 < to) {
      const char32_t a = c[i + 1].cp, b = i + 2 < to ? c[i + 2].cp : 0;
      size_t len = 0;
      if (a == U's' || a == U't' || a == U'm' || a == U'd') len = 2;
      else if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) len = 3;
      if (len) {
        emit(i, i + len);
        i += len;
        continue;
      }
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+` (the optional prefix is U+0020 only)
    const bool space = c[i].cp == U' ' && i + 1 < to;
    const size_t k = space ? i + 1 : i;
    const int cls = c[k].cls;
    if (cls != kSpace) {
      const size_t e = run(k, cls);
      emit(i, e);
      i = e;
      continue;
    }
    // `\s+(?!\S)|\s+`: a run of white space, less its last character when something follows
    const size_t e = run(i, kSpace);
    const size_t stop = (e < to && e - i >= 2) ? e - 1 : e;
    emit(i, stop);
    i = stop;
  }
}

bool is_white_space(char32_t cp) { return cp_class(cp) == kSpace; }

}  // namespace bpe_impl
}  // namespace

using nlohmann::json;
namespace fs = std::filesystem;

BpeTokenizer BpeTokenizer::from_files(const fs::path& vocab_json, const fs::path& merges_txt) {
  BpeTokenizer t;
  {
    if (!std::ifstream(vocab_json)) throw core::InputError(vocab_json.string() + ": cannot open the BPE vocabulary");
    const json j = core::read_json_file(vocab_json);
    if (!j.is_object() || j.empty()) {
      throw core::InputError(vocab_json.string() + ": expected a non-empty object {token: id}");
    }
    for (const auto& [tok, id] : j.items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 24)) {
        throw core::InputError(vocab_json.string() + ": token " + core::short_json(tok) +
                               ": expected an id in [0, 2^24], found " + core::short_json(id));
      }
      const auto k = static_cast<size_t>(id.get<int64_t>());
      if (t.tokens_.size() <= k) t.tokens_.resize(k + 1);
      t.tokens_[k] = tok;
      t.index_[tok] = static_cast<int64_t>(k);
    }
  }
  {
    std::ifstream in(merges_txt);
    if (!in) throw core::InputError(merges_txt.string() + ": cannot open the BPE merges");
    std::string line;
    int32_t rank = 0;
    int64_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || (lineno == 1 && line.starts_with("#version"))) continue;
      const auto sp = line.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos) {
        throw core::InputError(merges_txt.string() + ":" + std::to_string(lineno) +
                               ": expected two symbols separated by one space, found \"" + line + "\"");
      }
      t.merge_rank_.emplace(line, rank++);  // first occurrence wins, as HF
    }
  }
  auto id_of = [&](const char* s) { return t.token_id(s); };
  t.bos_ = id_of("<s>");
  t.eos_ = id_of("</s>");
  t.pad_ = id_of("<pad>");
  t.unk_ = id_of("<unk>");
  t.mask_ = id_of("<mask>");
  for (const char* s : {"<s>", "<pad>", "</s>", "<unk>", "<mask>", "<|endoftext|>"}) {
    if (id_of(s) >= 0) t.specials_.push_back({s, id_of(s)});
  }
  return t;
}

BpeTokenizer BpeTokenizer::from_folder(const fs::path& dir) {
  BpeTokenizer t = from_files(dir / "vocab.json", dir / "merges.txt");
  const fs::path cfg = dir / "tokenizer_config.json";
  if (fs::exists(cfg)) {
    const json j = core::read_json_file(cfg);
    if (j.is_object() && j.contains("added_tokens_decoder") && j["added_tokens_decoder"].is_object()) {
      for (const auto& [id, v] : j["added_tokens_decoder"].items()) {
        if (!v.is_object() || !v.contains("content") || !v["content"].is_string()) continue;
        const std::string content = v["content"].get<std::string>();
        for (auto& s : t.specials_) {
          if (s.text != content) continue;
          for (const char* key : {"lstrip", "rstrip"}) {
            if (v.contains(key) && !v[key].is_boolean()) {
              throw core::InputError(cfg.string() + ": field '" + key + "' of the added token " +
                                     core::short_json(v["content"]) + ": expected true or false, found " +
                                     core::short_json(v[key]));
            }
          }
          s.lstrip = v.value("lstrip", false);
          s.rstrip = v.value("rstrip", false);
        }
      }
    }
  }
  return t;
}

int64_t BpeTokenizer::token_id(const std::string& token) const {
  auto it = index_.find(token);
  return it == index_.end() ? -1 : it->second;
}

std::vector<std::string> BpeTokenizer::pre_tokenize(std::string_view text) const {
  std::vector<std::string> out;
  const auto c = bpe_impl::code_points(text);
  bpe_impl::split_words(c, 0, c.size(), text, out);
  return out;
}

void BpeTokenizer::bpe_word(std::string_view word, std::vector<int64_t>& out) const {
  const auto& sym = bpe_impl::byte_symbols();
  std::string whole;
  for (char ch : word) whole += sym[static_cast<unsigned char>(ch)];
  if (auto it = index_.find(whole); it != index_.end()) {  // the common case: a word in the vocabulary
    out.push_back(it->second);
    return;
  }
  std::vector<std::string> parts;
  for (char ch : word) parts.push_back(sym[static_cast<unsigned char>(ch)]);
  std::string key;
  while (parts.size() > 1) {
    int32_t best = std::numeric_limits<int32_t>::max();
    size_t at = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      key.assign(parts[i]).append(" ").append(parts[i + 1]);
      auto it = merge_rank_.find(key);
      if (it != merge_rank_.end() && it->second < best) {
        best = it->second;
        at = i;
      }
    }
    if (best == std::numeric_limits<int32_t>::max()) break;
    // merge every occurrence of that pair, left to right
    const std::string a = parts[at], b = parts[at + 1];
    std::vector<std::string> next;
    next.reserve(parts.size());
    for (size_t i = 0; i < parts.size();) {
      if (i + 1 < parts.size() && parts[i] == a && parts[i + 1] == b) {
        next.push_back(a + b);
        i += 2;
      } else {
        next.push_back(std::move(parts[i]));
        ++i;
      }
    }
    parts = std::move(next);
  }
  for (const auto& p : parts) {
    auto it = index_.find(p);
    if (it != index_.end()) out.push_back(it->second);
    else if (unk_ >= 0) out.push_back(unk_);
  }
}

std::vector<int64_t> BpeTokenizer::tokenize_ids(std::string_view text) const {
  std::vector<int64_t> out;
  const auto c = bpe_impl::code_points(text);
  std::vector<std::string> words;
  // split off the special tokens (leftmost, then longest), then the regex on the pieces between
  size_t piece = 0;  // code point where the current piece of text starts
  size_t i = 0;
  while (i <= c.size()) {
    const Special* hit = nullptr;
    if (i < c.size() && c[i].cp == U'<') {
      const std::string_view rest = text.substr(c[i].begin);
      for (const auto& s : specials_) {
        if (rest.starts_with(s.text) && (hit == nullptr || s.text.size() > hit->text.size())) hit = &s;
      }
    }
    if (hit == nullptr && i < c.size()) {
      ++i;
      continue;
    }
    size_t end = i;
    if (hit != nullptr && hit->lstrip) {
      while (end > piece && bpe_impl::is_white_space(c[end - 1].cp)) --end;
    }
    words.clear();
    bpe_impl::split_words(c, piece, end, text, words);
    for (const auto& w : words) bpe_word(w, out);
    if (hit == nullptr) break;
    out.push_back(hit->id);
    // skip the token's code points
    const size_t stop_byte = c[i].begin + hit->text.size();
    while (i < c.size() && c[i].begin < stop_byte) ++i;
    if (hit->rstrip) {
      while (i < c.size() && bpe_impl::is_white_space(c[i].cp)) ++i;
    }
    piece = i;
  }
  return out;
}

std::vector<std::string> BpeTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> out;
  for (int64_t id : tokenize_ids(text)) out.push_back(token(id));
  return out;
}

Encoding BpeTokenizer::encode(std::string_view text, int64_t max_length) const {
  if (bos_ < 0 || eos_ < 0) throw core::InputError("the BPE vocabulary has no <s> or </s> (not a RoBERTa tokenizer)");
  std::vector<int64_t> ids = tokenize_ids(text);
  const auto keep = static_cast<size_t>(std::max<int64_t>(0, max_length - 2));
  if (ids.size() > keep) ids.resize(keep);
  Encoding e;
  e.ids.reserve(ids.size() + 2);
  e.ids.push_back(bos_);
  e.ids.insert(e.ids.end(), ids.begin(), ids.end());
  e.ids.push_back(eos_);
  e.attention_mask.assign(e.ids.size(), 1);
  return e;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      throw core::InputError("token id " + std::to_string(id) + " is outside the vocabulary (" +
                             std::to_string(vocab_size()) + " tokens)");
    }
    if (std::any_of(specials_.begin(), specials_.end(), [&](const Special& s) { return s.id == id; })) continue;
    const std::string& t = tokens_[static_cast<size_t>(id)];
    for (const auto& cp : bpe_impl::code_points(t)) {
      const int b = bpe_impl::symbol_byte(cp.cp);
      if (b >= 0) out += static_cast<char>(b);
      else out.append(t, cp.begin, cp.end - cp.begin);
    }
  }
  return out;
}

}  // namespace mlsys::nn
