// dynapipe-plan: DynaPipe dynamic micro-batching and pipeline schedules (arXiv 2311.10418).
// CLI only: each subcommand calls one function of lib/plan.
#include "core/cli.hpp"
#include "plan/dynapipe_commands.hpp"
#ifdef MLSYS_DYNAPIPE_EXEC
#include "plan_exec/exec_commands.hpp"
#include "tensor/threads.hpp"
#endif

int main(int argc, char** argv) {
  using namespace mlsys;
  return core::run_program(
      "dynapipe-plan",
      "DynaPipe: dynamic micro-batching of variable-length multi-task data and pipeline schedules,\n"
      "compared with padding and packing (arXiv 2311.10418)",
      {
          {"generate", "write a seeded FLANv2-like length data set to OUT/lengths.jsonl", plan::dynapipe_generate},
          {"plan", "plan micro-batches, schedules and per-rank instructions; write OUT/plan.json", plan::dynapipe_plan},
          {"simulate", "simulate 1F1B and wait-free-cyclic on the planned micro-batches (or the uniform case)",
           plan::dynapipe_simulate},
          {"compare", "DynaPipe vs padding/packing/fixed-size/token-budget baselines; write OUT/compare.json",
           plan::dynapipe_compare},
          {"explain", "draw the pipeline timeline of one planned iteration (SVG + text)", plan::dynapipe_explain},
          {"export-profile", "write the analytical cost model on the profile grid as a profile folder OUT/<profile.folder>",
           plan::dynapipe_export_profile},
#ifdef MLSYS_DYNAPIPE_EXEC
          {"profile", "measure a layer and the LM head on a (micro-batch, seqlen) grid; write OUT/<profile.folder>",
           plan::dynapipe_profile},
          {"run", "execute DynaPipe's and the baselines' plans on local processes; write OUT/run.json (measured vs simulated)",
           plan::dynapipe_run},
#endif
      },
      argc, argv
#ifdef MLSYS_DYNAPIPE_EXEC
      , tensor::thread_control()
#endif
  );
}
