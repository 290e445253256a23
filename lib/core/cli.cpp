#include "core/cli.hpp"

#include <exception>
#include <iostream>

#include "core/build_info.hpp"
#include "core/device_spec.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/output_dir.hpp"
#include "core/signals.hpp"

namespace mlsys::core {

void add_common_options(CLI::App& app, CommonOptions& opts) {
  app.add_option("--config", opts.config, "JSON config file (default: the program's built-in default config)");
  app.add_option("--set", opts.sets, "override a config field: key.path=value (repeatable)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);  // one value per --set: a later positional stays positional
  app.add_option("--out", opts.out, "output folder")->capture_default_str();
  app.add_option("--seed", opts.seed, "random seed (overrides the config's)");
  app.add_option("--device", opts.device, "cpu | cuda | cuda:N")->capture_default_str();
  app.add_option("--threads", opts.threads, "CPU threads (0 = library default)")->check(CLI::Range(0, 4096));
  app.add_option("--log-level", opts.log_level, "trace|debug|info|warn|error|off")->capture_default_str();
  app.add_flag("--quiet,-q", opts.quiet, "only warnings and errors on stderr; no progress");
  app.add_option("--progress", opts.progress, "auto|always|never")->capture_default_str();
  app.add_flag("--json", opts.json, "print the result as JSON on stdout instead of a table");
}

ConfigDoc load_config(const CommonOptions& opts, const std::string& default_config) {
  const std::string& file = opts.config.empty() ? default_config : opts.config;
  std::vector<std::string> overrides = opts.sets;
  overrides.insert(overrides.end(), opts.settings.begin(), opts.settings.end());
  if (opts.seed) overrides.push_back("seed=" + std::to_string(*opts.seed));
  ConfigDoc doc = load_config(file, overrides);
  if (opts.seed) doc.override_of["seed"] = "--seed " + std::to_string(*opts.seed);
  return doc;
}

void apply_common_options(const std::string& program, const CommonOptions& opts, ThreadControl threads) {
  setup_logging(program, opts.log_level, opts.quiet);
  (void)parse_progress_mode(opts.progress);
  (void)parse_device_spec(opts.device);
  check_output_path(opts.out);
  if (opts.threads > 0 && threads.set_threads != nullptr) threads.set_threads(opts.threads);
}

int run_main(const std::string& program, CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  app.set_version_flag("--version", program + " (mlsys-tools) " + std::string(version()) + " (" +
                                        std::string(git_commit()) + ")");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << program << ": error: " << one_line(e.what()) << " (see " << program << " --help)\n";
    return static_cast<int>(ExitCode::usage);
  }
  install_stop_handlers();
  try {
    return body();
  } catch (const Error& e) {
    std::cerr << program << ": error: " << one_line(e.what()) << "\n";
    return static_cast<int>(e.code());
  } catch (const std::bad_alloc&) {
    std::cerr << program << ": error: out of memory\n";
    return static_cast<int>(ExitCode::runtime);
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << one_line(e.what()) << "\n";
    return static_cast<int>(ExitCode::runtime);
  }
}

int run_program(const std::string& program, const std::string& description, const std::vector<Subcommand>& subs,
                int argc, char** argv, ThreadControl threads) {
  CLI::App app{description, program};
  app.require_subcommand(1);
  CommonOptions opts;
  opts.program = program;
  for (int i = 0; i < argc; ++i) opts.command_line += (i ? " " : "") + std::string(argv[i]);
  const Subcommand* chosen = nullptr;
  for (const auto& s : subs) {
    CLI::App* sub = app.add_subcommand(s.name, s.help);
    add_common_options(*sub, opts);
    for (const auto& f : s.flags) {
      sub->add_flag_callback(std::string("--") + f.name, [&opts, name = std::string(f.name)] { opts.flags.insert(name); },
                             f.help);
    }
    for (const auto& st : s.settings) {
      sub->add_option_function<std::string>(
             std::string("--") + st.name,
             [&opts, key = std::string(st.key)](const std::string& v) { opts.settings.push_back(key + "=" + v); },
             std::string(st.help) + " (the same as --set " + st.key + "=VALUE)")
          ->type_name("VALUE");
    }
    sub->callback([&chosen, &opts, &s] {
      chosen = &s;
      opts.command = s.name;
    });
  }
  return run_main(program, app, argc, argv, [&] {
    apply_common_options(program, opts, threads);
    std::optional<OutputDir> out;
    if (chosen->writes_out) out.emplace(opts.out);
    return chosen->run(opts);
  });
}

}  // namespace mlsys::core
