// The options every subcommand of every program takes (DESIGN.md "Program conventions"),
// as one plain struct, plus what a program plugs into the runtime. No CLI11 here: library
// code that only reads the options includes this header, not core/cli.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/progress.hpp"

namespace mlsys::core {

struct CommonOptions {
  std::string config;              // --config FILE.json ("" = the built-in defaults)
  std::vector<std::string> sets;   // --set key.path=value, repeatable
  std::string out = "out";         // --out DIR
  std::optional<uint64_t> seed;    // --seed N (applied to the config as the override seed=N)
  std::string device = "cpu";      // --device cpu|cuda[:i] (syntax checked by run_program)
  int threads = 0;                 // --threads N (0 = leave the library default)
  std::string log_level = "info";  // --log-level
  bool quiet = false;              // --quiet
  std::string progress = "auto";   // --progress auto|always|never
  bool json = false;               // --json: results as JSON on stdout
  std::set<std::string> flags;     // the subcommand's own boolean flags given ("resume" for --resume)
  std::vector<std::string> settings;  // the subcommand's shorthand options as key=value (core::SubcommandSetting)
  // Filled by run_program, recorded in every artifact's header.
  std::string program;             // "tgnn-train"
  std::string command;             // the subcommand: "fit"
  std::string command_line;        // argv joined with spaces

  [[nodiscard]] bool flag(const std::string& name) const { return flags.count(name) > 0; }

  [[nodiscard]] ProgressMode progress_mode() const { return parse_progress_mode(progress); }
};

// The thread pools a program runs on, set from --threads before any work starts. A program
// that links LibTorch passes tensor::thread_control() (LibTorch's intra-op pool, through
// which MKL and OpenMP follow); a torch-free one passes nothing. Environment variables
// such as OMP_NUM_THREADS are read when the runtimes load, before main: setting them here
// would have no effect, so the pools are set through their own APIs.
struct ThreadControl {
  void (*set_threads)(int n) = nullptr;
  int (*get_threads)() = nullptr;
};

}  // namespace mlsys::core
