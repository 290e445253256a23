// ssrm-incremental: node-wise graph incremental learning (class-incremental tasks on an
// evolving graph) with the SSRM structural-shift regulariser on top of fine-tune, joint,
// ER-GNN, EWC, MAS, TWP, GEM and LwF. CLI only: each subcommand calls one function of lib/gil.
#include "core/cli.hpp"
#include "gil/ssrm_commands.hpp"
#include "tensor/threads.hpp"

int main(int argc, char** argv) {
  using namespace mlsys;
  const std::vector<core::SubcommandSetting> ssrm_options = {
      {"ssrm-weight", "ssrm.weight", "SSRM weight beta (0 = off)"},
      {"ssrm-distance", "ssrm.distance", "SSRM distance: mmd | cmd"},
  };
  return core::run_program(
      "ssrm-incremental",
      "Node-wise graph incremental learning with the SSRM structural-shift regulariser (arXiv 2402.12987)\n"
      "on fine-tune, joint, ER-GNN, EWC, MAS, TWP, GEM and LwF, on an evolving graph",
      {
          {"generate", "write a seeded synthetic evolving graph (labels.csv, edges.csv, features.npy) to OUT",
           gil::ssrm_generate},
          {"run", "learn the task sequence with one framework (+ SSRM); write OUT/results.h5", gil::ssrm_run, {}, true,
           ssrm_options},
          {"eval", "evaluate the model of a run's results.h5 on every task; write OUT/eval.h5", gil::ssrm_eval},
          {"sweep", "frameworks x SSRM weights x seeds on one graph; write OUT/sweep.h5", gil::ssrm_sweep, {}, true,
           {{"ssrm-distance", "ssrm.distance", "SSRM distance: mmd | cmd"}}},
      },
      argc, argv, tensor::thread_control());
}
