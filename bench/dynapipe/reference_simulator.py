#!/usr/bin/python3
"""Cross-check `dynapipe-plan simulate` (workload cost_table) against the reference DynaPipe
simulator (awslabs/optimizing-multitask-training-through-dynamic-pipelines @d8666ad,
dynapipe/schedule_opt) on the uniform case and on seeded random cost tables: the same
layers, device assignment, schedule, transfers and memory limit go to both; makespans and
per-device peaks are compared. Also times both (the reference: one scheduler call in
Python; ours: the whole program run, process start included).

Usage: /usr/bin/python3 bench/dynapipe/reference_simulator.py REFERENCE_DIR [BUILD_DIR] [TRIALS]
REFERENCE_DIR holds the reference's `dynapipe/` package ("" or "-": extracted from the
fetched mirror by reference_setup.py). Needs no numpy beyond what /usr/bin/python3 has
(notes §4.2).
"""
import json
import os
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_setup  # noqa: E402

ref_dir = reference_setup.reference_dir(sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] not in ("", "-") else None)
build = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..", "build")
trials = int(sys.argv[3]) if len(sys.argv) > 3 else 60
reference_setup.add_to_path(ref_dir)
from dynapipe.schedule_opt import AVAILABLE_SCHEDULERS  # noqa: E402
from dynapipe.schedule_opt.schedule_common import SchedulerMicrobatchSpec, SchedulerMinibatchSpec  # noqa: E402

exe = os.path.join(build, "tools", "dynapipe-plan", "dynapipe-plan")
REF_NAME = {"1f1b": "1F1B", "interleaved-1f1b": "interleaved-1F1B", "wait-free-cyclic": "wait-free-cyclic"}


def comm_us(mb, gbps, lat_us):
    return lat_us + mb * 8 / 1e3 / gbps * 1e6


def reference(table):
    """Makespan (ms) and per-device peaks (MB) of the reference simulator, or None."""
    cl = table["cluster"]
    L = len(table["device_assignment"])
    mbs = []
    for i, m in enumerate(table["micro_batches"]):
        fw_comm = [comm_us(x, cl["bandwidth_gbps"], cl["latency_us"]) for x in m["activation_mb"]]
        # bw_times are indexed from the last layer backwards in the reference.
        mbs.append(SchedulerMicrobatchSpec(
            name=str(i), fw_times=list(m["fw_us"]), fw_comm_times=fw_comm,
            fw_stored_activation_size=list(m["stored_activation_mb"]),
            fw_peak_activation_size=list(m["peak_activation_mb"]),
            activation_shapes=[((1, 1, 1),) for _ in range(L)],
            bw_times=list(reversed(m["bw_us"])), bw_comm_times=list(fw_comm)))
    spec = SchedulerMinibatchSpec("mb", mbs, list(table["device_assignment"]), list(table["model_state_mb"]))
    limit = cl.get("memory_limit_mb", float("inf"))
    kwargs = {"include_memory_stats": True, "memory_limit": limit}
    if table["schedule"] == "wait-free-cyclic":
        kwargs["max_otf_microbatches"] = table["max_in_flight"] or int(1e6)
    t0 = time.perf_counter()
    sch = AVAILABLE_SCHEDULERS[REF_NAME[table["schedule"]]](spec, **kwargs)
    sch.schedule()
    dt = time.perf_counter() - t0
    ms = sch.get_makespan()
    if ms is None or ms < 0:
        return None, dt
    peaks = {}
    for name, p in sch.get_executor_peak_memory().items():
        if name.endswith("Compute"):
            peaks[int(name.split()[1])] = p
    return (ms / 1e3, [peaks[d] for d in sorted(peaks)]), dt


def ours(table, tmp):
    path = os.path.join(tmp, "t.json")
    with open(path, "w") as f:
        json.dump(table, f)
    t0 = time.perf_counter()
    out = subprocess.run([exe, "simulate", "--quiet", "--json", "--out", tmp, "--set", "simulate.workload=cost_table",
                          "--set", "simulate.cost_table=" + path], capture_output=True, text=True, check=True)
    dt = time.perf_counter() - t0
    run = json.loads(out.stdout)["runs"][0]
    return (run["makespan_ms"], run["peak_memory_mb"]), dt


def uniform(assignment, schedule):
    return {"device_assignment": assignment, "schedule": schedule, "max_in_flight": 0,
            "model_state_mb": [0] * 8, "cluster": {"bandwidth_gbps": 100, "latency_us": 0},
            "micro_batches": [{"fw_us": [1000] * 8, "bw_us": [1000] * 8, "activation_mb": [1.25] * 7,
                               "stored_activation_mb": [1000] * 8, "peak_activation_mb": [2000] * 8}
                              for _ in range(8)]}


def random_table(rng):
    L = rng.randint(2, 12)
    D = rng.randint(2, min(L, 5))
    kind = rng.choice(["linear", "interleaved", "zigzag", "random"])
    if kind == "linear":
        asg = sorted(l * D // L for l in range(L))
    elif kind == "interleaved" and L % D == 0 and L > D:
        asg = [l % D for l in range(L)]
    elif kind == "zigzag" and L == 2 * D:
        asg = list(range(D)) + list(reversed(range(D)))
    else:
        asg = list(range(D)) + [rng.randrange(D) for _ in range(L - D)]
        rng.shuffle(asg)
    M = rng.randint(1, 12)
    scheds = ["wait-free-cyclic"]
    if asg == list(range(D)) or asg == sorted(asg) and len(set(asg)) == D:
        scheds.append("1f1b")
    if len(asg) % D == 0 and len(asg) > D and asg == [l % D for l in range(L)] and M % D == 0:
        scheds.append("interleaved-1f1b")
    mbs = []
    for _ in range(M):
        act = round(rng.uniform(0, 20), 3)  # one size per micro-batch (see README: reference quirk)
        stored = [round(rng.uniform(0, 100), 3) for _ in range(L)]
        mbs.append({"fw_us": [round(rng.uniform(50, 3000), 1) for _ in range(L)],
                    "bw_us": [round(rng.uniform(50, 6000), 1) for _ in range(L)],
                    "activation_mb": [act] * (L - 1), "stored_activation_mb": stored,
                    "peak_activation_mb": [round(s + rng.uniform(0, 50), 3) for s in stored]})
    cluster = {"bandwidth_gbps": rng.choice([10, 100, 400]), "latency_us": round(rng.uniform(0, 50), 2)}
    if rng.random() < 0.5:
        cluster["memory_limit_mb"] = round(rng.uniform(200, 1200), 1)
    return {"device_assignment": asg, "schedule": rng.choice(scheds), "max_in_flight": 0,
            "model_state_mb": [round(rng.uniform(0, 10), 2) for _ in range(L)], "cluster": cluster,
            "micro_batches": mbs}


def main():
    rng = random.Random(2311)
    cases = [("uniform " + ",".join(map(str, a)), uniform(a, s)) for a, s in [
        ([0, 0, 1, 1, 2, 2, 3, 3], "1f1b"), ([0, 0, 1, 1, 2, 2, 3, 3], "wait-free-cyclic"),
        ([0, 1, 2, 3, 0, 1, 2, 3], "interleaved-1f1b"), ([0, 1, 2, 3, 0, 1, 2, 3], "wait-free-cyclic"),
        ([0, 1, 2, 3, 3, 2, 1, 0], "wait-free-cyclic")]]
    cases += [("random %d" % i, random_table(rng)) for i in range(trials)]
    agree = disagree = ref_none = 0
    t_ref = t_ours = 0.0
    print("| case | schedule | reference ms / peak MB | dynapipe-plan ms / peak MB | agree |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, table in cases:
            r, dr = reference(table)
            o, do = ours(table, tmp)
            t_ref += dr
            t_ours += do
            if r is None:
                # The reference finds no cyclic schedule within the memory limit; ours completes
                # the order and must then break the limit (the planner rejects such plans).
                limit = table["cluster"].get("memory_limit_mb", float("inf"))
                ok = max(o[1]) > limit
                ref_none += 1
                cell = "no schedule"
            else:
                ok = abs(r[0] - o[0]) <= 1e-6 * max(1, r[0]) and all(
                    abs(a - b) <= 1e-6 * max(1, a) for a, b in zip(r[1], o[1]))
                cell = "%.3f / %.0f" % (r[0], max(r[1]))
            agree += ok
            disagree += not ok
            if name.startswith("uniform") or not ok:
                print("| %s | %s | %s | %.3f / %.0f | %s |" % (name, table["schedule"], cell, o[0], max(o[1]),
                                                             "yes" if ok else "NO"))
    print()
    print("%d cases: %d agree, %d disagree (%d where the reference finds no schedule within the memory limit)"
          % (len(cases), agree, disagree, ref_none))
    print("simulation time: reference %.1f ms per case (Python, in process); dynapipe-plan %.1f ms per case "
          "(whole program run incl. process start)" % (1e3 * t_ref / len(cases), 1e3 * t_ours / len(cases)))
    return 0 if disagree == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
