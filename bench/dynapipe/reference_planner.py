#!/usr/bin/python3
"""The reference DynaPipe planner as a peer of `dynapipe-plan plan` on identical inputs.

Both planners get the same global batches (dynapipe-plan generate, seeded; GPT: input +
target concatenated and clipped to max_seqlen, consecutive samples up to 65,536 tokens)
and the same per-layer costs: our analytical cost model written on a (micro-batch size,
sequence length) grid by `dynapipe-plan export-profile`, in the reference's profile format,
read by our planner (model.profile) and by the reference's ProfileBasedCostModel (the same
files). Both interpolate that grid linearly.

The reference runs its planner entry points per batch, as its data loader does:
DataAssignmentOptimizer.generate_microbatches (sample order, the C++ consecutive-partition
DP) and ExecutionPlanner.generate_execution_plan (every schedule of the layout, KMeans
permutation search, instruction lists and their optimizer pass), on the linear layout (the
reference plans decoder-only models only with one chunk per device). Ours runs
`dynapipe-plan plan` on the same batches, on the linear layout and, separately, on the
layouts it picks from (linear, interleaved, zig-zag).

Makespans: every plan (its micro-batch shapes in its chosen order, its schedule, its
layer -> device assignment) is re-simulated by the reference's simulator from the
reference's cost model, so both are judged by one simulator; each planner's own figure is
reported beside it. Planning time: wall time per batch inside each process (ours: the
`planning_ms` plan.json records; the reference: the two calls above), one thread, both
pinned to one core, runs alternating (ours, reference, ours, ...), median and spread
over the repeats.

Setup adaptations (not changes to the reference's algorithms):
* the reference multiplies profiled parameter MB by 8 (fp16 Adam); ours by 4 for a
  profile. export-profile writes parameter MB = analytical state / 4, and the reference's
  factor is set to 4 here, so both charge the analytical model state.
* permutation search draws from numpy's global generator, unseeded in the reference; it
  is seeded here (np.random.seed(batch index)) so reruns pick the same plans.

Usage: /usr/bin/python3 bench/dynapipe/reference_planner.py [BUILD_DIR] [BATCHES] [REPEATS] [STAGES...]
Environment: REFERENCE_DIR (a folder holding the reference's dynapipe/; default: extracted
from the mirror by reference_setup.py), MAX_SEQLEN (2048), RESULTS (a JSON file to write).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import reference_setup  # noqa: E402

reference_setup.one_thread()
build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "build")
batches = int(sys.argv[2]) if len(sys.argv) > 2 else 8
repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
stages_list = [int(x) for x in sys.argv[4:]] or [4, 8]
max_seqlen = int(os.environ.get("MAX_SEQLEN", "2048"))
reference_setup.add_to_path(reference_setup.reference_dir(os.environ.get("REFERENCE_DIR")), planner=True)

import numpy as np  # noqa: E402
from dynapipe.data_opt.cost_models import ProfileBasedCostModel, ProfileBasedCostModelWithRC  # noqa: E402
from dynapipe.data_opt.optimizer import DataAssignmentOptimizer  # noqa: E402
from dynapipe.model import DynaPipeCluster, TransformerModelSpec, get_simulator  # noqa: E402
from dynapipe.schedule_opt.execution_planner import ExecutionPlanner, construct_minibatch_spec  # noqa: E402

exe = os.path.join(build, "tools", "dynapipe-plan", "dynapipe-plan")
# Our defaults (configs/dynapipe-plan/default.json): GPT, hidden 4096, 32 x 128 heads, FFN
# 16384, 4 layers per stage, 80 GB devices, 100 Gb/s links with 5 us latency.
HIDDEN, HEADS, KV, FFN, LAYERS_PER_STAGE = 4096, 32, 128, 16384, 4
MEMORY_MB, GBPS, LATENCY_US = 80000, 100, 5
GRID_MBS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
GRID_SEQ = [8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048]
REF_SCHEDULE = {"1f1b": "1F1B", "interleaved-1f1b": "interleaved-1F1B", "wait-free-cyclic": "wait-free-cyclic"}


def run(args):
    return subprocess.run([exe] + args, capture_output=True, text=True, check=True).stdout


def round8(n):
    return (n + 7) // 8 * 8


def load_batches(plan):
    """Sample indices of each global batch (the union of its micro-batches' samples)."""
    return [sorted(i for mb in b["microbatches"] for i in mb["samples"]) for b in plan["batches"]]


def clipped_lengths(path):
    """GPT sample lengths as dynapipe-plan clips them (lib/plan/length_dataset.cpp)."""
    out = []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            t = min(r["target"], max_seqlen - 1)
            out.append(min(r["input"], max_seqlen - t) + t)
    return out


def reference_cost_model(folder):
    paths = [os.path.join(folder, x) for x in sorted(os.listdir(folder)) if x.endswith(".txt")]
    single = ProfileBasedCostModel(paths)
    single._get_param_factor = lambda n_shards=1, zero_stage=0: 4.0  # ours: 4 x parameter MB
    cm = ProfileBasedCostModelWithRC.__new__(ProfileBasedCostModelWithRC)
    cm.cost_models = {(1, "none"): single}
    return cm


def device_assignment(layout, n_layers, stages):
    """Layer -> device of our layouts (man page: planner.layouts)."""
    if layout == "linear":
        return [l * stages // n_layers for l in range(n_layers)]
    per_chunk = n_layers // (2 * stages)
    chunk_dev = [c % stages for c in range(2 * stages)] if layout == "interleaved" else \
        [c if c < stages else 2 * stages - 1 - c for c in range(2 * stages)]
    return [chunk_dev[l // per_chunk] for l in range(n_layers)]


def simulate(model_spec, cm, cluster, assignment, schedule, shapes):
    """Makespan (ms) and highest device peak (MB) of one plan in the reference simulator,
    as its optimize_schedule runs it (no scheduler memory limit first; wait-free-cyclic
    retried under the limit if that breaks it)."""
    spec = construct_minibatch_spec(model_spec, cm, shapes, "none")
    for limit in (float("inf"), MEMORY_MB):
        sim = get_simulator(REF_SCHEDULE[schedule], spec, cluster, assignment, include_memory_stats=True,
                            memory_limit=limit)
        sim.schedule()
        ms = sim.get_makespan()
        peak = max(sim.get_executor_peak_memory().values())
        if ms is not None and (peak <= MEMORY_MB or schedule != "wait-free-cyclic"):
            break
    return (None if ms is None else ms / 1e3), peak


class Reference:
    def __init__(self, cm, stages):
        n_layers = LAYERS_PER_STAGE * stages
        self.model = TransformerModelSpec(n_layers, 0, HIDDEN, HEADS, FFN, KV)
        self.cluster = DynaPipeCluster({i: i for i in range(stages)}, [MEMORY_MB] * stages, GBPS, GBPS,
                                       LATENCY_US, LATENCY_US)
        self.assignment = device_assignment("linear", n_layers, stages)
        self.dataopt = DataAssignmentOptimizer(cm, self.model, stages, LAYERS_PER_STAGE, device_memory_limit=MEMORY_MB,
                                               round_seqlen_multiple=8, seqlen_offset=0)
        self.planner = ExecutionPlanner(self.cluster, self.model, self.assignment, MEMORY_MB, cm)

    def plan(self, lengths, seed):
        """(micro-batch shapes in the chosen order, schedule, its makespan ms, seconds)."""
        np.random.seed(seed)
        t0 = time.perf_counter()
        _, mbs, _, rc, _ = self.dataopt.generate_microbatches(lengths, available_rc_types=["none"],
                                                              partition_method="dp")
        if mbs is None:
            raise RuntimeError("reference: no feasible micro-batch split")
        shapes = [(len(mb), round8(max(lengths[i] for s in mb for i in s)), 0) for mb in mbs[0]]
        _, cost, stats, _, sch = self.planner.generate_execution_plan(shapes, limit_rc_type=["none"])
        dt = time.perf_counter() - t0
        return [shapes[i] for i in stats[0]], sch, cost, dt


def main():
    os.sched_setaffinity(0, {0})  # both planners on one core (ours inherits it)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run(["generate", "--quiet", "--out", tmp])
        data = os.path.join(tmp, "lengths.jsonl")
        lengths_all = clipped_lengths(data)
        grid = ["--set", "profile.microbatch_sizes=" + json.dumps(GRID_MBS), "--set",
                "profile.seqlens=" + json.dumps(GRID_SEQ), "--set", "profile.folder=aprof"]
        run(["export-profile", "--quiet", "--out", tmp] + grid)
        prof = os.path.join(tmp, "aprof")
        cm = reference_cost_model(prof)
        for stages in stages_list:
            common = ["plan", "--quiet", "--json", "--out", tmp, "--set", "data.path=" + data,
                      "--set", "data.batches=%d" % batches, "--set", "data.max_seqlen=%d" % max_seqlen,
                      "--set", "model.profile=" + prof, "--set", 'planner.recompute=["none"]',
                      "--set", "cluster.stages=%d" % stages,
                      "--set", "model.encoder_layers=%d" % (LAYERS_PER_STAGE * stages)]
            ref = Reference(cm, stages)
            ours_t = {"linear": [[] for _ in range(batches)], "all": [[] for _ in range(batches)]}
            ref_t = [[] for _ in range(batches)]
            plans = {}
            ref_plans = [None] * batches
            for rep in range(repeats):
                for variant, extra in (("linear", ["--set", 'planner.layouts=["linear"]']), ("all", [])):
                    run(common + extra)
                    with open(os.path.join(tmp, "plan.json")) as f:
                        plans[variant] = json.load(f)
                    for b, bp in enumerate(plans[variant]["batches"]):
                        ours_t[variant][b].append(bp["planning_ms"])
                batch_samples = load_batches(plans["linear"])
                for b, samples in enumerate(batch_samples):
                    shapes, sch, cost, dt = ref.plan([lengths_all[i] for i in samples], b)
                    ref_t[b].append(dt * 1e3)
                    ref_plans[b] = (shapes, sch, cost)
            n_layers = LAYERS_PER_STAGE * stages
            for b in range(len(ref_plans)):
                shapes, sch, cost = ref_plans[b]
                ref_sim, ref_peak = simulate(ref.model, cm, ref.cluster, ref.assignment, sch, shapes)
                row = {"stages": stages, "batch": b, "samples": len(load_batches(plans["linear"])[b]),
                       "reference": {"microbatches": len(shapes), "schedule": sch, "own_ms": cost,
                                     "sim_ms": ref_sim, "peak_mb": ref_peak,
                                     "planning_ms": statistics.median(ref_t[b]),
                                     "planning_ms_range": [min(ref_t[b]), max(ref_t[b])]}}
                for variant in ("linear", "all"):
                    bp = plans[variant]["batches"][b]
                    rp = bp["replicas"][0]
                    mbs = bp["microbatches"]
                    our_shapes = [tuple(mbs[i]["shape"]) for i in rp["order"]]
                    asg = device_assignment(bp["layout"], n_layers, stages)
                    sim, peak = simulate(ref.model, cm, ref.cluster, asg, rp["schedule"], our_shapes)
                    row[variant] = {"microbatches": len(mbs), "layout": bp["layout"], "schedule": rp["schedule"],
                                    "own_ms": bp["makespan_ms"], "sim_ms": sim, "peak_mb": peak,
                                    "planning_ms": statistics.median(ours_t[variant][b]),
                                    "planning_ms_range": [min(ours_t[variant][b]), max(ours_t[variant][b])]}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    if os.environ.get("RESULTS"):
        with open(os.environ["RESULTS"], "w") as f:
            json.dump(rows, f, indent=1)
    report(rows)
    return 0


def report(rows):
    def t(x):
        return "%.2f (%.2f-%.2f)" % (x["planning_ms"], *x["planning_ms_range"])

    print("| stages | batch | samples | reference: mbs, schedule, makespan ms (own sim) | ours linear: mbs, schedule, "
          "makespan ms (own sim) | ours linear / reference | ours all layouts: layout, schedule, makespan ms | "
          "all / reference | planning ms reference | planning ms ours linear | ours all | speed-up linear |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ref, lin, al = r["reference"], r["linear"], r["all"]
        print("| %d | %d | %d | %d, %s, %.2f (%.2f) | %d, %s, %.2f (%.2f) | %.4f | %s, %s, %.2f | %.4f | %s | %s | %s | "
              "%.0fx |" % (r["stages"], r["batch"], r["samples"], ref["microbatches"], ref["schedule"], ref["sim_ms"],
                          ref["own_ms"], lin["microbatches"], lin["schedule"], lin["sim_ms"], lin["own_ms"],
                          lin["sim_ms"] / ref["sim_ms"], al["layout"], al["schedule"], al["sim_ms"],
                          al["sim_ms"] / ref["sim_ms"], t(ref), t(lin), t(al), ref["planning_ms"] / lin["planning_ms"]))
    for s in sorted({r["stages"] for r in rows}):
        rs = [r for r in rows if r["stages"] == s]
        worse = [r["batch"] for r in rs if r["linear"]["sim_ms"] > r["reference"]["sim_ms"] * (1 + 1e-9)]
        print("\nstages %d: ours (linear) / reference makespan: mean %.4f, max %.4f; worse on batches %s; "
              "planning speed-up (median per batch): min %.0fx, median %.0fx" % (
                  s, statistics.mean(r["linear"]["sim_ms"] / r["reference"]["sim_ms"] for r in rs),
                  max(r["linear"]["sim_ms"] / r["reference"]["sim_ms"] for r in rs), worse or "none",
                  min(r["reference"]["planning_ms"] / r["linear"]["planning_ms"] for r in rs),
                  statistics.median(r["reference"]["planning_ms"] / r["linear"]["planning_ms"] for r in rs)))


if __name__ == "__main__":
    sys.exit(main())
