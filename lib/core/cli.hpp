// The command-line conventions shared by every program (DESIGN.md "Program conventions"):
// PROGRAM SUBCOMMAND [options] with --config, --set, --out, --seed, --device, --threads,
// --log-level, --quiet, --progress, --json on every subcommand; errors caught once and
// turned into one line on stderr and the documented exit code.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/config.hpp"
#include "core/progress.hpp"

namespace mlsys::core {

struct CommonOptions {
  std::string config;              // --config FILE.json ("" = the built-in defaults)
  std::vector<std::string> sets;   // --set key.path=value, repeatable
  std::string out = "out";         // --out DIR
  std::optional<uint64_t> seed;    // --seed N (overrides the config's seed)
  std::string device = "cpu";      // --device cpu|cuda[:i]
  int threads = 0;                 // --threads N (0 = leave the library default)
  std::string log_level = "info";  // --log-level
  bool quiet = false;              // --quiet
  std::string progress = "auto";   // --progress auto|always|never
  bool json = false;               // --json: results as JSON on stdout
  std::set<std::string> flags;     // the subcommand's own boolean flags given ("resume" for --resume)

  [[nodiscard]] bool flag(const std::string& name) const { return flags.count(name) > 0; }

  [[nodiscard]] ProgressMode progress_mode() const { return parse_progress_mode(progress); }
};

// Adds the common options to a (sub)command.
void add_common_options(CLI::App& app, CommonOptions& opts);

// Loads opts.config (or `default_config` when --config is absent and it is not empty) with
// the --set overrides applied.
ConfigDoc load_config(const CommonOptions& opts, const std::string& default_config = {});

// Parses argv (help and --version print and return 0; a usage error prints one line and
// returns 2), sets up logging and the stop handlers, then runs `body`, catching every
// error once: core::Error -> its message and exit code, any other exception -> exit 1.
int run_main(const std::string& program, CLI::App& app, int argc, char** argv,
             const std::function<int()>& body);

// A boolean flag of one subcommand (--NAME), seen by the function as opts.flag(NAME).
struct SubcommandFlag {
  const char* name;
  const char* help;
};

// One subcommand of a program: its name, a one-line help, the library function it runs
// and its own flags beyond the common options.
struct Subcommand {
  const char* name;
  const char* help;
  int (*run)(const CommonOptions&);
  std::vector<SubcommandFlag> flags = {};
};

// The whole main() of a program: PROGRAM SUBCOMMAND [options], the common options on every
// subcommand, then run_main around the chosen subcommand's function.
int run_program(const std::string& program, const std::string& description, const std::vector<Subcommand>& subs,
                int argc, char** argv);

// Applies logging level/quiet and the thread count (OMP/OpenBLAS and, via `set_threads`
// when given, LibTorch's intra-op pool) of the options of the subcommand that ran.
void apply_common_options(const std::string& program, const CommonOptions& opts);

}  // namespace mlsys::core
