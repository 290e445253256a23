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
#include "core/options.hpp"

namespace mlsys::core {

// Adds the common options to a (sub)command.
void add_common_options(CLI::App& app, CommonOptions& opts);

// Loads opts.config (or `default_config` when --config is absent and it is not empty) with
// the --set overrides applied, then --seed N as the override seed=N: the resolved config of
// every artifact records the seed that ran.
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

// A value option of one subcommand that is shorthand for a config override: --NAME VALUE
// is --set KEY=VALUE (ssrm-incremental's --ssrm-weight 0.1 is --set ssrm.weight=0.1), so
// the resolved config records it and the config reader checks it like any other value.
struct SubcommandSetting {
  const char* name;
  const char* key;
  const char* help;
};

// One subcommand of a program: its name, a one-line help, the library function it runs
// and its own flags beyond the common options.
struct Subcommand {
  const char* name;
  const char* help;
  int (*run)(const CommonOptions&);
  std::vector<SubcommandFlag> flags = {};
  // Whether it writes into --out: then run_program creates and locks the folder for the
  // run (core::OutputDir) before the subcommand starts; else --out is only checked.
  bool writes_out = true;
  // Shorthand options for config keys (applied after every --set, in command-line order).
  std::vector<SubcommandSetting> settings = {};
};

// The whole main() of a program: PROGRAM SUBCOMMAND [options], the common options on every
// subcommand, then run_main around the chosen subcommand's function.
// `threads` sets the program's thread pools from --threads (tensor::thread_control() for a
// LibTorch program) before the subcommand runs.
int run_program(const std::string& program, const std::string& description, const std::vector<Subcommand>& subs,
                int argc, char** argv, ThreadControl threads = {});

// Applies the options of the subcommand that ran, before it runs: logging level/quiet, the
// --progress and --device spellings and an --out that cannot be a folder (UsageError), and
// --threads through `threads`.
void apply_common_options(const std::string& program, const CommonOptions& opts, ThreadControl threads = {});

}  // namespace mlsys::core
