// tgnn-train: memory-based temporal GNN training (TGN, JODIE, DyRep) with honest
// evaluation against EdgeBank, a memory-zeroed model and the generator's oracle.
// CLI only: each subcommand calls one function of lib/tgnn.
#include <CLI/CLI.hpp>

#include "core/cli.hpp"
#include "tgnn/commands.hpp"

int main(int argc, char** argv) {
  using namespace mlsys;
  const std::string program = "tgnn-train";
  CLI::App app{"Memory-based temporal GNN training (TGN, JODIE, DyRep) on interaction streams,\n"
               "evaluated next to EdgeBank, a memory-zeroed model and the synthetic oracle",
               program};
  app.require_subcommand(1);
  core::CommonOptions opts;
  struct Sub {
    const char* name;
    const char* help;
    int (*run)(const core::CommonOptions&);
  };
  const Sub subs[] = {
      {"generate", "write a seeded synthetic interaction stream (TGL + JODIE CSV, oracle) to OUT", tgnn::tgnn_generate},
      {"fit", "train with best-val selection; evaluate val/test next to the baselines; write OUT/model.h5",
       tgnn::tgnn_fit},
      {"eval", "replay train/val with a checkpoint and report test AP/AUC/MRR; write OUT/eval.json", tgnn::tgnn_eval},
      {"embed", "replay every event with a checkpoint; write memory and embeddings to OUT/embeddings.h5",
       tgnn::tgnn_embed},
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
