// What every libFuzzer target of tests/fuzz shares: the input written to a scratch file (the
// loaders read paths), the input split into parts, and the contract each target checks. A
// typed core::Error (ConfigError, InputError, ...) is the documented way to refuse bad input;
// anything else is a contract finding, recorded without stopping the run: an untyped
// exception (the programs would exit 1 with raw library text), or an error message that is
// not one short line (DESIGN.md: one line naming the file and the problem). Crashes, leaks,
// hangs and undefined behaviour stop the run (the sanitizers and libFuzzer save the input).
#pragma once

#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <new>
#include <set>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "core/error.hpp"

namespace mlsys::fuzz {

// Longest error message accepted: a one-line message quotes at most a short excerpt.
inline constexpr size_t kMaxMessage = 2000;

// A scratch folder of this process under the system temporary folder (removed at exit).
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    auto p = std::filesystem::temp_directory_path() / ("mlsys-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(p);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(std::filesystem::temp_directory_path() /
                                      ("mlsys-fuzz-" + std::to_string(::getpid())),
                                  ec);
    });
    return p;
  }();
  return dir;
}

// Writes `bytes` to scratch()/rel (parents created) and returns the path.
inline std::filesystem::path write_input(const std::filesystem::path& rel, std::string_view bytes) {
  const auto p = scratch() / rel;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", p.c_str());
    std::abort();
  }
  return p;
}

// An empty folder scratch()/name for the inputs of one run (emptied again on each call).
inline std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = scratch() / name;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);
  return dir;
}

// `data` cut at every NUL byte (a target reads several inputs from one fuzz input).
inline std::vector<std::string_view> split_nul(std::string_view data) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= data.size(); ++i) {
    if (i == data.size() || data[i] == '\0') {
      parts.push_back(data.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

// The input being run (set by each target's first line, begin()).
inline std::string_view& current_input() {
  static std::string_view input;
  return input;
}
inline std::string_view begin(const uint8_t* data, size_t size) {
  current_input() = {reinterpret_cast<const char*>(data), size};
  return current_input();
}

// A broken contract that is not a memory error: reported once per kind per process on
// stderr ("==fuzz contract== ..."), its input saved as $MLSYS_FUZZ_FINDINGS/contract-<kind>
// (one file per kind, the latest input), and fuzzing goes on. Memory errors, leaks, hangs
// and UB are the sanitizers' and libFuzzer's: they stop the run and save the input.
inline void finding(std::string_view what, std::string_view kind, std::string_view message) {
  static std::set<std::string> seen;
  std::string key = std::string(what) + ": " + std::string(kind);
  if (!seen.insert(key).second) return;
  std::fprintf(stderr, "\n==fuzz contract== %s: %.*s\n", key.c_str(),
               static_cast<int>(message.size() > 300 ? 300 : message.size()), message.data());
  if (const char* dir = std::getenv("MLSYS_FUZZ_FINDINGS"); dir != nullptr && *dir != '\0') {
    std::string slug;
    for (char c : key) slug += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
    std::ofstream out(std::filesystem::path(dir) / ("contract-" + slug.substr(0, 120)), std::ios::binary);
    out.write(current_input().data(), static_cast<std::streamsize>(current_input().size()));
  }
}

// Runs `f` (one parser call named `what`) and checks the error contract.
template <class F>
void expect_typed(const char* what, F&& f) {
  try {
    f();
  } catch (const core::Error& e) {
    const std::string_view m = e.what();
    if (m.find('\n') != std::string_view::npos) finding(what, "error message of several lines", m);
    if (m.size() > kMaxMessage) finding(what, "error message longer than 2000 characters", m.substr(0, 300));
  } catch (const std::bad_alloc&) {
    finding(what, "std::bad_alloc (a size taken from the input was not checked)", "");
  } catch (const std::exception& e) {
    finding(what, std::string("untyped exception ") + typeid(e).name() + " (the programs would exit 1 with library text)", e.what());
  }
}

}  // namespace mlsys::fuzz
