// dynapipe-plan: DynaPipe dynamic micro-batching and pipeline schedules (arXiv 2311.10418).
// CLI only: each subcommand calls one function of lib/plan.
#include <CLI/CLI.hpp>

#include "core/cli.hpp"
#include "plan/dynapipe_commands.hpp"

int main(int argc, char** argv) {
  using namespace mlsys;
  const std::string program = "dynapipe-plan";
  CLI::App app{"DynaPipe: dynamic micro-batching of variable-length multi-task data and pipeline schedules,\n"
               "compared with padding and packing (arXiv 2311.10418)",
               program};
  app.require_subcommand(1);
  core::CommonOptions opts;
  struct Sub {
    const char* name;
    const char* help;
    int (*run)(const core::CommonOptions&);
  };
  const Sub subs[] = {
      {"generate", "write a seeded FLANv2-like length data set to OUT/lengths.jsonl", plan::dynapipe_generate},
      {"plan", "plan micro-batches, schedules and per-rank instructions; write OUT/plan.json", plan::dynapipe_plan},
      {"simulate", "simulate 1F1B and wait-free-cyclic on the planned micro-batches (or the uniform case)",
       plan::dynapipe_simulate},
      {"compare", "DynaPipe vs padding/packing/fixed-size/token-budget baselines; write OUT/compare.json",
       plan::dynapipe_compare},
      {"explain", "draw the pipeline timeline of one planned iteration (SVG + text)", plan::dynapipe_explain},
  };
  int (*chosen)(const core::CommonOptions&) = nullptr;
  for (const auto& s : subs) {
    CLI::App* sub = app.add_subcommand(s.name, s.help);
    core::add_common_options(*sub, opts);
    sub->callback([&chosen, run = s.run] { chosen = run; });
  }
  return core::run_main(program, app, argc, argv, [&] {
    core::apply_common_options(program, opts);
    return chosen(opts);
  });
}
