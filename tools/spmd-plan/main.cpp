// spmd-plan: HAP, program synthesis for SPMD training on heterogeneous clusters
// (arXiv 2401.05965). CLI only: each subcommand calls one function of lib/plan (or of
// lib/plan_exec for the LibTorch subcommands profile and run).
#include "core/cli.hpp"
#include "plan/spmd_commands.hpp"
#ifdef MLSYS_SPMD_EXEC
#include "plan_exec/spmd_exec_commands.hpp"
#include "tensor/threads.hpp"
#endif

int main(int argc, char** argv) {
  using namespace mlsys;
  return core::run_program(
      "spmd-plan",
      "HAP: synthesize SPMD training programs for heterogeneous clusters (A* over a distributed\n"
      "instruction set, LP sharding ratios, collective choice), compared with DP and TP (arXiv 2401.05965)",
      {
          {"synth", "synthesize the plan and the baselines; write OUT/plan.json (per-rank programs) and OUT/listing.txt",
           plan::spmd_synth},
          {"explain", "the synthesized program instruction by instruction, per-device costs, OUT/<explain.svg>",
           plan::spmd_explain},
          {"simulate", "re-predict the program of simulate.plan (a plan.json); write OUT/simulate.json", plan::spmd_simulate},
          {"compare", "HAP vs DP-even, DP-proportional and TP; A* vs uniform-cost search; write OUT/compare.json",
           plan::spmd_compare},
#ifdef MLSYS_SPMD_EXEC
          {"profile", "measure this machine's FLOP/s and loopback collectives; write OUT/<profile.file> (a cluster file)",
           plan::spmd_profile},
          {"run", "execute a plan on local processes (c10d Gloo), check loss and gradients against one process; "
                  "write OUT/run.json",
           plan::spmd_run},
#endif
      },
      argc, argv
#ifdef MLSYS_SPMD_EXEC
      , tensor::thread_control()
#endif
  );
}
