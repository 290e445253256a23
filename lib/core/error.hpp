// Typed errors thrown deep down and caught once in main (run_main), each mapped to the
// exit code of DESIGN.md: 1 run-time failure, 2 usage or config error, 3 bad input data.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace mlsys::core {

enum class ExitCode : int { ok = 0, runtime = 1, usage = 2, input = 3 };

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  [[nodiscard]] virtual ExitCode code() const noexcept { return ExitCode::runtime; }
};

// Something failed while running (exit 1): a numerical failure, a peer that vanished.
class RuntimeFailure : public Error {
 public:
  using Error::Error;
};

// The command line is wrong (exit 2).
class UsageError : public Error {
 public:
  using Error::Error;
  [[nodiscard]] ExitCode code() const noexcept override { return ExitCode::usage; }
};

// A config file or --set override is malformed, has an unknown key, a wrong type or an
// out-of-range value (exit 2). The message names the file, the key path, what was
// expected and what was found.
class ConfigError : public Error {
 public:
  using Error::Error;
  [[nodiscard]] ExitCode code() const noexcept override { return ExitCode::usage; }
};

// An input file is missing, unreadable or malformed (exit 3). The message names the file
// and the line, field or offset.
class InputError : public Error {
 public:
  using Error::Error;
  [[nodiscard]] ExitCode code() const noexcept override { return ExitCode::input; }
};

}  // namespace mlsys::core

namespace mlsys::core {

// `text` on one line: control bytes (newline, carriage return, ...) as \xNN; everything
// else, UTF-8 included, unchanged. run_program prints every error through it, so a message
// that quotes a path or value holding a newline still prints as the one line DESIGN.md
// promises, whichever loader built it.
inline std::string one_line(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

// Untrusted text as an error message may quote it: one line (control bytes and bytes that
// are not printable ASCII as \xNN), at most `max` characters of it, "..." where cut.
inline std::string excerpt(std::string_view text, size_t max = 80) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

}  // namespace mlsys::core
