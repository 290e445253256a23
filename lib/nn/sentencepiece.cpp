// SentencePiece tokenization with Hugging Face LlamaTokenizerFast's ids (see sentencepiece.hpp).
// libsentencepiece does the normalizing, BPE/unigram and byte fallback; this file adds HF's
// dummy-prefix rule and special-token splitting on top. To do so it loads the model with
// add_dummy_prefix switched off (an edit of the serialized ModelProto, since Debian ships no
// sentencepiece_model.pb.h) and prepends the space itself when HF's Metaspace would.
#include "nn/sentencepiece.hpp"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.hpp"
#include "core/json.hpp"

namespace mlsys::nn {
namespace {

// Protocol-buffer wire format, just enough to find ModelProto.normalizer_spec (field 3).
// Bounds-checked: returns false on malformed input.
bool spm_read_varint(std::string_view s, size_t& i, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (i >= s.size()) return false;
    const auto b = static_cast<unsigned char>(s[i++]);
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

void spm_write_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

// Visits the fields of one message: f(field, wire_type, whole field bytes, varint value,
// length-delimited payload).
template <class F>
bool spm_scan_fields(std::string_view msg, F&& f) {
  size_t i = 0;
  while (i < msg.size()) {
    const size_t begin = i;
    uint64_t key = 0, v = 0;
    if (!spm_read_varint(msg, i, key)) return false;
    std::string_view payload;
    switch (key & 7) {
      case 0:
        if (!spm_read_varint(msg, i, v)) return false;
        break;
      case 1:
      case 5: {
        const size_t n = (key & 7) == 1 ? 8 : 4;
        if (msg.size() - i < n) return false;
        i += n;
        break;
      }
      case 2:
        if (!spm_read_varint(msg, i, v) || v > msg.size() - i) return false;
        payload = msg.substr(i, v);
        i += v;
        break;
      default:
        return false;
    }
    f(key >> 3, key & 7, msg.substr(begin, i - begin), v, payload);
  }
  return true;
}

// The model with normalizer_spec.add_dummy_prefix (field 3) false: appending the field to
// normalizer_spec overrides any earlier value (the last occurrence of a scalar field wins).
bool spm_without_dummy_prefix(std::string_view model, std::string& out) {
  constexpr char kFalse[] = {0x18, 0x00};  // field 3, varint, 0
  bool found = false;
  out.clear();
  out.reserve(model.size() + 4);
  const bool parsed = spm_scan_fields(
      model, [&](uint64_t field, uint64_t wire, std::string_view whole, uint64_t, std::string_view payload) {
        if (field != 3 || wire != 2) {
          out.append(whole);
          return;
        }
        found = true;
        out += static_cast<char>(0x1A);  // field 3, length-delimited
        spm_write_varint(out, payload.size() + sizeof kFalse);
        out.append(payload);
        out.append(kFalse, sizeof kFalse);
      });
  if (!found) out.append("\x1A\x02\x18\x00", 4);
  return parsed;
}

// sentencepiece's status for a model it refuses, as one line; its protobuf failure reads as
// "./src/sentencepiece_processor.cc(232) [model_proto->ParseFromArray(...)]".
std::string spm_load_error(const sentencepiece::util::Status& st) {
  std::string s = st.error_message();
  if (s.find("ParseFromArray") != std::string::npos) return "truncated, or not a ModelProto";
  s = s.substr(0, s.find('\n'));
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s.empty() ? st.ToString() : s;
}

bool spm_starts_with_space(std::string_view s) {
  return s.starts_with(' ') || s.starts_with("\xE2\x96\x81");  // U+2581, the escaped space
}

std::string spm_read_file(const std::filesystem::path& p, const char* what) {
  std::error_code ec;
  if (!std::filesystem::exists(p, ec)) throw core::InputError(p.string() + ": no such file (" + what + ")");
  if (std::filesystem::is_directory(p, ec)) throw core::InputError(p.string() + ": is a directory, expected " + what);
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) throw core::InputError(p.string() + ": cannot read " + what);
  return std::move(ss).str();
}

}  // namespace

struct SentencePieceTokenizer::Impl {
  sentencepiece::SentencePieceProcessor sp;  // loaded with add_dummy_prefix = false
  SentencePieceOptions opts;
  std::vector<std::pair<std::string, int>> specials;  // control and unknown pieces' strings

  void append_ids(std::string_view text, bool prefix, std::vector<int64_t>& out) const {
    if (text.empty()) return;
    std::string buf;
    if (prefix && opts.add_prefix_space && !spm_starts_with_space(text)) {
      buf.reserve(text.size() + 1);
      buf += ' ';
      buf.append(text);
      text = buf;
    }
    std::vector<int> ids;
    if (auto st = sp.Encode(text, &ids); !st.ok()) throw core::RuntimeFailure("SentencePiece encode: " + st.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
  }

  // The longest special string at `pos`, or null.
  const std::pair<std::string, int>* special_at(std::string_view text, size_t pos) const {
    const std::pair<std::string, int>* best = nullptr;
    for (const auto& s : specials)
      if (text.substr(pos).starts_with(s.first) && (!best || s.first.size() > best->first.size())) best = &s;
    return best;
  }
};

SentencePieceTokenizer::SentencePieceTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SentencePieceTokenizer::SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept = default;
SentencePieceTokenizer& SentencePieceTokenizer::operator=(SentencePieceTokenizer&&) noexcept = default;
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

SentencePieceTokenizer SentencePieceTokenizer::from_model_file(const std::filesystem::path& model_file,
                                                               SentencePieceOptions opts) {
  const std::string bytes = spm_read_file(model_file, "a SentencePiece tokenizer.model");
  const std::string bad = model_file.string() + ": not a SentencePiece model (";
  if (bytes.empty()) throw core::InputError(bad + "empty file)");
  auto impl = std::make_unique<Impl>();
  // First as it is, so a corrupt file gets sentencepiece's own diagnosis.
  if (auto st = impl->sp.LoadFromSerializedProto(bytes); !st.ok())
    throw core::InputError(bad + spm_load_error(st) + ")");
  std::string edited;
  if (!spm_without_dummy_prefix(bytes, edited)) throw core::InputError(bad + "malformed protobuf)");
  if (auto st = impl->sp.LoadFromSerializedProto(edited); !st.ok())
    throw core::InputError(bad + spm_load_error(st) + ")");
  impl->opts = opts;
  for (int id = 0; id < impl->sp.GetPieceSize(); ++id)
    if (impl->sp.IsControl(id) || impl->sp.IsUnknown(id)) {
      const std::string& p = impl->sp.IdToPiece(id);
      if (!p.empty()) impl->specials.emplace_back(p, id);
    }
  return SentencePieceTokenizer(std::move(impl));
}

SentencePieceTokenizer SentencePieceTokenizer::from_folder(const std::filesystem::path& dir) {
  SentencePieceOptions opts;
  const auto config = dir / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::exists(config, ec)) {
    const std::string text = spm_read_file(config, "a tokenizer_config.json");
    const auto j = core::parse_json_input(text, config.string());
    if (!j.is_object()) throw core::InputError(config.string() + ": expected a JSON object, found " + core::describe_json(j));
    auto flag = [&](const char* key, bool& v) {
      if (!j.contains(key)) return;
      if (!j[key].is_boolean()) throw core::InputError(config.string() + ": " + key + " must be true or false");
      v = j[key].get<bool>();
    };
    flag("add_bos_token", opts.add_bos_token);
    flag("add_eos_token", opts.add_eos_token);
    flag("legacy", opts.legacy);
    flag("split_special_tokens", opts.split_special_tokens);
    if (j.contains("add_prefix_space") && !j["add_prefix_space"].is_null())
      flag("add_prefix_space", opts.add_prefix_space);
  }
  return from_model_file(dir / "tokenizer.model", opts);
}

std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view text) const {
  return encode(text, impl_->opts.add_bos_token, impl_->opts.add_eos_token);
}

std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view text, bool add_bos, bool add_eos) const {
  std::vector<int64_t> out;
  out.reserve(text.size() / 2 + 2);
  if (add_bos && bos_id() >= 0) out.push_back(bos_id());
  if (impl_->opts.split_special_tokens) {
    impl_->append_ids(text, true, out);
  } else {
    // HF: the first piece of text gets the dummy prefix only when it starts the text
    // (prepend_scheme "first"); with legacy every piece does ("always").
    size_t start = 0;
    for (size_t pos = 0; pos < text.size();) {
      const auto* s = impl_->special_at(text, pos);
      if (!s) {
        ++pos;
        continue;
      }
      impl_->append_ids(text.substr(start, pos - start), impl_->opts.legacy || start == 0, out);
      out.push_back(s->second);
      pos += s->first.size();
      start = pos;
    }
    impl_->append_ids(text.substr(start), impl_->opts.legacy || start == 0, out);
  }
  if (add_eos && eos_id() >= 0) out.push_back(eos_id());
  return out;
}

std::vector<std::string> SentencePieceTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> out;
  for (int64_t id : encode(text, false, false)) out.push_back(impl_->sp.IdToPiece(static_cast<int>(id)));
  return out;
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::vector<int> keep;
  keep.reserve(ids.size());
  for (int64_t id : ids) {
    (void)piece(id);  // range check
    const int i = static_cast<int>(id);
    if (!impl_->sp.IsControl(i) && !impl_->sp.IsUnknown(i)) keep.push_back(i);
  }
  std::string text;
  if (auto st = impl_->sp.Decode(keep, &text); !st.ok())
    throw core::RuntimeFailure("SentencePiece decode: " + st.ToString());
  // HF's Strip(left=1) decoder: the dummy prefix's space
  if (impl_->opts.add_prefix_space && text.starts_with(' ')) text.erase(0, 1);
  return text;
}

int64_t SentencePieceTokenizer::vocab_size() const { return impl_->sp.GetPieceSize(); }
int64_t SentencePieceTokenizer::bos_id() const { return impl_->sp.bos_id(); }
int64_t SentencePieceTokenizer::eos_id() const { return impl_->sp.eos_id(); }
int64_t SentencePieceTokenizer::pad_id() const { return impl_->sp.pad_id(); }
int64_t SentencePieceTokenizer::unk_id() const { return impl_->sp.unk_id(); }

std::string SentencePieceTokenizer::piece(int64_t id) const {
  if (id < 0 || id >= vocab_size())
    throw core::InputError("SentencePiece: id " + std::to_string(id) + " is outside the vocabulary [0, " +
                           std::to_string(vocab_size()) + ")");
  return impl_->sp.IdToPiece(static_cast<int>(id));
}

int64_t SentencePieceTokenizer::piece_id(std::string_view p) const {
  const int id = impl_->sp.PieceToId(p);  // sentencepiece answers unk_id for an unknown piece
  return (id == impl_->sp.unk_id() && impl_->sp.IdToPiece(id) != p) ? -1 : id;
}

const SentencePieceOptions& SentencePieceTokenizer::options() const { return impl_->opts; }
void SentencePieceTokenizer::set_options(const SentencePieceOptions& opts) { impl_->opts = opts; }

}  // namespace mlsys::nn
