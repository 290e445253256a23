#!/usr/bin/env bash
# tgnn-train on wiki-size synthetic data (157,474 events, 9,227 nodes, d_e 172): TGN,
# its memory-zeroed twin, JODIE, APAN and DyRep (and DyRep with the mail carrying memory
# instead of the attention embedding), next to EdgeBank and the generator's oracle.
# Writes bench/tgnn/results.json and prints a Markdown table (wall and process-CPU seconds
# per epoch; 1-minute load average before and after each fit).
# Usage: bench/tgnn/run.sh [BUILD_DIR] [EPOCHS=3] [THREADS=1] [PRESET=wiki]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
epochs="${2:-3}"
threads="${3:-1}"
preset="${4:-wiki}"
exe="$build/tools/tgnn-train/tgnn-train"
[[ -x "$exe" ]] || { echo "run.sh: $exe not found (build first)" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$exe" generate --quiet --out "$tmp/data" --set generate.preset="$preset" --set 'generate.formats=["tgl"]' >&2
common=(--log-level info --progress never --threads "$threads" --set data.path="$tmp/data" --set train.epochs="$epochs")
load() { cut -d' ' -f1 /proc/loadavg; }
fit() {  # NAME ARGS...
  local name=$1 l0
  shift
  l0=$(load)
  "$exe" fit --json --config "$root/configs/tgnn-train/tgn-wiki.json" "${common[@]}" --out "$tmp/$name" "$@" > "$tmp/$name.json"
  echo "$l0 $(load)" > "$tmp/$name.load"
}
fit tgn
noextra=(--set baselines.memory_zeroed=false --set baselines.edgebank=false)
fit jodie --set model.name=jodie "${noextra[@]}"
fit apan --set model.name=apan "${noextra[@]}"
fit dyrep --set model.name=dyrep "${noextra[@]}"
fit dyrep-memory --set model.name=dyrep --set model.message=memory "${noextra[@]}"
python3 - "$tmp" "$here/results.json" "$epochs" "$threads" "$preset" <<'PY'
import json, sys, os
tmp, out, epochs, threads, preset = sys.argv[1:]
names = {"tgn": "TGN", "jodie": "JODIE", "apan": "APAN", "dyrep": "DyRep", "dyrep-memory": "DyRep (mail carries memory)"}
runs = {m: json.load(open(os.path.join(tmp, m + ".json"))) for m in names}
load = {m: [float(x) for x in open(os.path.join(tmp, m + ".load")).read().split()] for m in names}
meta = json.load(open(os.path.join(tmp, "data", "meta.json")))
train_events = runs["tgn"]["model"]["train_events"]
rows = []
def row(name, r, sec=None, cpu=None, ld=None):
    t, i = r["test"], r.get("test_inductive", {})
    rows.append({"model": name, "test_ap_batch": t["ap_batch"], "test_auc_batch": t["auc_batch"], "test_ap": t["ap"],
                 "test_auc": t["auc"], "test_mrr": t["mrr"], "inductive_ap_batch": i.get("ap_batch"),
                 "inductive_auc_batch": i.get("auc_batch"), "epoch_s": sec, "epoch_cpu_s": cpu,
                 "events_per_s": train_events / sec if sec else None,
                 "events_per_cpu_s": train_events / cpu if cpu else None, "load_1min": ld})
for m, r in runs.items():
    row(names[m], r["model"], r["model"]["epoch_seconds"], r["model"]["epoch_cpu_seconds"], load[m])
    if m == "tgn":
        z = r["memory_zeroed"]
        row("TGN memory zeroed", z, z["epoch_seconds"], z["epoch_cpu_seconds"], load[m])
        row("EdgeBank", r["edgebank"])
oracle = runs["tgn"].get("oracle", {})
json.dump({"preset": preset, "epochs": int(epochs), "threads": int(threads), "train_events": train_events, "data": meta,
           "rows": rows, "oracle": oracle, "runs": runs}, open(out, "w"), indent=2)
f = lambda x: "-" if x is None else ("%.4f" % x if x < 10 else "%.0f" % x)
s = lambda x: "-" if x is None else "%.1f" % x
print("| model | test AP (batch) | test AUC (batch) | test AP (global) | MRR@9 | inductive AP (batch) | inductive AUC (batch) | s/epoch | CPU s/epoch | events/s | events/CPU-s | load before/after |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    ld = "-" if r["load_1min"] is None else "%.1f / %.1f" % tuple(r["load_1min"])
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (r["model"], f(r["test_ap_batch"]), f(r["test_auc_batch"]),
          f(r["test_ap"]), f(r["test_mrr"]), f(r["inductive_ap_batch"]), f(r["inductive_auc_batch"]),
          s(r["epoch_s"]), s(r["epoch_cpu_s"]), f(r["events_per_s"]), f(r["events_per_cpu_s"]), ld))
print("| oracle (generator; its own negatives, not the evaluation ones) | %s | - | %s | - | - | - | - | - | - | - | - |" % (f(oracle.get("test_ap_batch")), f(oracle.get("test_ap"))))
PY
