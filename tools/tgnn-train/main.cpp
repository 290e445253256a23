// tgnn-train: memory-based temporal GNN training (TGN, JODIE, APAN, DyRep) with honest
// evaluation against EdgeBank, a memory-zeroed model and the generator's oracle.
// CLI only: each subcommand calls one function of lib/tgnn.
#include <cstdlib>  // defines __GLIBC__ on glibc
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "core/cli.hpp"
#include "tensor/threads.hpp"
#include "tgnn/commands.hpp"

int main(int argc, char** argv) {
  using namespace mlsys;
#ifdef __GLIBC__
  // Every batch allocates and frees the same few MB of activations; by default glibc maps
  // blocks over 128 KiB fresh and returns freed heap to the OS, so each batch pays page
  // faults and page clearing (~8% of a TGN epoch in perf). Keep them in the heap instead.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
  return core::run_program(
      "tgnn-train",
      "Memory-based temporal GNN training (TGN, JODIE, APAN, DyRep) on interaction streams,\n"
      "evaluated next to EdgeBank, a memory-zeroed model and the synthetic oracle",
      {
          {"generate", "write a seeded synthetic interaction stream (TGL + JODIE CSV, oracle) to OUT", tgnn::tgnn_generate},
          {"fit", "train with best-val selection; evaluate val/test next to the baselines; write OUT/model.h5",
           tgnn::tgnn_fit,
           {{"resume", "continue the run saved in OUT/checkpoint.h5 (same config and data; bit-for-bit with the same threads)"},
            {"force", "start afresh even where OUT holds an unfinished run's checkpoint (it is replaced)"}}},
          {"eval", "replay train/val with a checkpoint and report test AP/AUC/MRR; write OUT/eval.json", tgnn::tgnn_eval},
          {"embed", "replay every event with a checkpoint; write memory and embeddings to OUT/embeddings.h5",
           tgnn::tgnn_embed},
      },
      argc, argv, tensor::thread_control());
}
