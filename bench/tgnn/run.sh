#!/usr/bin/env bash
# tgnn-train on wiki-size synthetic data (157,474 events, 9,227 nodes, d_e 172): TGN,
# its memory-zeroed twin, JODIE and DyRep, next to EdgeBank and the generator's oracle.
# Writes bench/tgnn/results.json and prints a Markdown table.
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
"$exe" fit --json --config "$root/configs/tgnn-train/tgn-wiki.json" "${common[@]}" --out "$tmp/tgn" > "$tmp/tgn.json"
for m in jodie dyrep; do
  "$exe" fit --json --config "$root/configs/tgnn-train/tgn-wiki.json" "${common[@]}" --out "$tmp/$m" \
    --set model.name=$m --set baselines.memory_zeroed=false --set baselines.edgebank=false > "$tmp/$m.json"
done
python3 - "$tmp" "$here/results.json" "$epochs" "$threads" "$preset" <<'PY'
import json, sys, os
tmp, out, epochs, threads, preset = sys.argv[1:]
runs = {m: json.load(open(os.path.join(tmp, m + ".json"))) for m in ("tgn", "jodie", "dyrep")}
meta = json.load(open(os.path.join(tmp, "data", "meta.json")))
rows = []
len_train = runs["tgn"]["model"]["events_per_s"] * runs["tgn"]["model"]["epoch_seconds"]  # training events per epoch
def row(name, r, sec=None, eps=None):
    t, i = r["test"], r.get("test_inductive", {})
    rows.append({"model": name, "test_ap_batch": t["ap_batch"], "test_auc_batch": t["auc_batch"], "test_ap": t["ap"],
                 "test_auc": t["auc"], "test_mrr": t["mrr"], "inductive_ap_batch": i.get("ap_batch"),
                 "inductive_auc_batch": i.get("auc_batch"), "epoch_s": sec, "events_per_s": eps})
for m, r in runs.items():
    row(m.upper() if m != "dyrep" else "DyRep", r["model"], r["model"]["epoch_seconds"], r["model"]["events_per_s"])
    if m == "tgn":
        z = r["memory_zeroed"]
        row("TGN memory zeroed", z, z["epoch_seconds"], len_train / z["epoch_seconds"])
        row("EdgeBank", r["edgebank"])
oracle = runs["tgn"].get("oracle", {})
json.dump({"preset": preset, "epochs": int(epochs), "threads": int(threads), "data": meta, "rows": rows,
           "oracle": oracle, "runs": runs}, open(out, "w"), indent=2)
f = lambda x: "-" if x is None else ("%.4f" % x if x < 10 else "%.0f" % x)
print("| model | test AP (batch) | test AUC (batch) | test AP (global) | MRR@9 | inductive AP | inductive AUC | s/epoch | events/s |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (r["model"], f(r["test_ap_batch"]), f(r["test_auc_batch"]),
          f(r["test_ap"]), f(r["test_mrr"]), f(r["inductive_ap_batch"]), f(r["inductive_auc_batch"]),
          "-" if r["epoch_s"] is None else "%.1f" % r["epoch_s"], f(r["events_per_s"])))
print("| oracle (generator; its own negatives, not the evaluation ones) | %s | - | %s | - | - | - | - | - |" % (f(oracle.get("test_ap_batch")), f(oracle.get("test_ap"))))
PY
