// The Unicode facts the tokenizers need (UTF-8 decoding, general categories, White_Space,
// simple lower-casing, NFD/NFC/NFKD/NFKC), answered by utf8proc (Debian libutf8proc-dev,
// Unicode 15) rather than tables of our own. No LibTorch, no utf8proc header here.
#pragma once

#include <string>
#include <string_view>

namespace mlsys::nn::unicode {

// The two-letter general categories of UAX #44, in utf8proc's order (Cn = unassigned).
enum class Category {
  Cn, Lu, Ll, Lt, Lm, Lo, Mn, Mc, Me, Nd, Nl, No, Pc, Pd, Ps, Pe, Pi, Pf, Po,
  Sm, Sc, Sk, So, Zs, Zl, Zp, Cc, Cf, Cs, Co
};

[[nodiscard]] Category category(char32_t cp);
// "Lu", "Po", ... (for messages and tests).
[[nodiscard]] const char* category_name(Category c);

[[nodiscard]] inline bool is_letter(Category c) { return c >= Category::Lu && c <= Category::Lo; }
[[nodiscard]] inline bool is_mark(Category c) { return c >= Category::Mn && c <= Category::Me; }
[[nodiscard]] inline bool is_number(Category c) { return c >= Category::Nd && c <= Category::No; }
[[nodiscard]] inline bool is_punctuation(Category c) { return c >= Category::Pc && c <= Category::Po; }
[[nodiscard]] inline bool is_separator(Category c) { return c >= Category::Zs && c <= Category::Zp; }

// The White_Space property (PropList.txt): U+0009..U+000D, U+0085 and the separators Zs, Zl, Zp.
// It is Rust's char::is_whitespace and the regex class \s of Hugging Face's tokenizers.
[[nodiscard]] bool is_white_space(char32_t cp);

// The simple lower-case mapping of UnicodeData.txt (the code point itself when it has none).
[[nodiscard]] char32_t to_lower(char32_t cp);

// UTF-8 -> code points. A byte that does not start a valid UTF-8 sequence (truncated,
// overlong, a surrogate, above U+10FFFF) becomes one U+FFFD and decoding goes on after it.
[[nodiscard]] std::u32string decode_utf8(std::string_view s);
// Whether `s` is valid UTF-8; when not, `bad_offset` (if given) is the first bad byte.
[[nodiscard]] bool valid_utf8(std::string_view s, size_t* bad_offset = nullptr);
void append_utf8(std::string& out, char32_t cp);
[[nodiscard]] std::string encode_utf8(std::u32string_view s);

enum class Form { NFD, NFC, NFKD, NFKC };
// The normalization form of `s` (UAX #15), with the stability rules utf8proc_NFD & co. use.
[[nodiscard]] std::u32string normalize(std::u32string_view s, Form form);
[[nodiscard]] std::string normalize_utf8(std::string_view s, Form form);

// The Unicode version of the tables in use ("15.0.0").
[[nodiscard]] std::string unicode_version();

}  // namespace mlsys::nn::unicode
