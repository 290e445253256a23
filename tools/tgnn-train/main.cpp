// tgnn-train: memory-based temporal GNN training (TGN, JODIE, DyRep) with honest
// evaluation against EdgeBank, a memory-zeroed model and the generator's oracle.
// CLI only: each subcommand calls one function of lib/tgnn.
#include "core/cli.hpp"
#include "tgnn/commands.hpp"

int main(int argc, char** argv) {
  using namespace mlsys;
  return core::run_program(
      "tgnn-train",
      "Memory-based temporal GNN training (TGN, JODIE, DyRep) on interaction streams,\n"
      "evaluated next to EdgeBank, a memory-zeroed model and the synthetic oracle",
      {
          {"generate", "write a seeded synthetic interaction stream (TGL + JODIE CSV, oracle) to OUT", tgnn::tgnn_generate},
          {"fit", "train with best-val selection; evaluate val/test next to the baselines; write OUT/model.h5",
           tgnn::tgnn_fit},
          {"eval", "replay train/val with a checkpoint and report test AP/AUC/MRR; write OUT/eval.json", tgnn::tgnn_eval},
          {"embed", "replay every event with a checkpoint; write memory and embeddings to OUT/embeddings.h5",
           tgnn::tgnn_embed},
      },
      argc, argv);
}
