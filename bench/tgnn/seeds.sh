#!/usr/bin/env bash
# Test AP across seeds at the two training lengths compare.sh sets side by side: tgnn-train's
# TGN after EPOCHS epochs (default 1) and PyG's TGN (bench/tgnn/pyg_tgn.py) after
# PYG_EPOCHS epochs (default 3), one run per seed in SEEDS (default "1 2 3"), on one
# generated stream with the same split, training events and evaluation negatives for every
# run (tgnn-train's --set eval.negatives_out, as in compare.sh; the evaluation negatives
# have fixed seeds, so the model seed changes only initialisation, dropout and training
# negatives). A single seed's one-epoch AP moves by about a point with the seed (and with
# any change of float rounding), so "equal AP" is judged on these spreads. Prints a
# Markdown table and writes bench/tgnn/seeds.json.
# Usage: bench/tgnn/seeds.sh [BUILD_DIR] [PRESET=wiki]
#   FORM (default message): tgnn-train's model.memory_time; PYTHON as for compare.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
preset="${2:-wiki}"
seeds="${SEEDS:-1 2 3}"
epochs="${EPOCHS:-1}"
pyg_epochs="${PYG_EPOCHS:-3}"
form="${FORM:-message}"
py="${PYTHON:-python3}"
exe="$build/tools/tgnn-train/tgnn-train"
[[ -x "$exe" ]] || { echo "seeds.sh: $exe not found (build first)" >&2; exit 2; }
"$py" -c "import torch, torch_geometric" || { echo "seeds.sh: $py cannot import torch + torch_geometric" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$exe" generate --quiet --out "$tmp/data" --set generate.preset="$preset" --set 'generate.formats=["tgl"]' >&2
for s in $seeds; do
  OMP_NUM_THREADS=1 "$exe" fit --json --config "$root/configs/tgnn-train/tgn-wiki.json" --threads 1 --progress never \
    --log-level warn --seed "$s" --set data.path="$tmp/data" --set train.epochs="$epochs" \
    --set baselines.memory_zeroed=false --set baselines.edgebank=false --set model.memory_time="$form" \
    --set eval.negatives_out="$tmp/negatives.csv" --out "$tmp/ours-$s" > "$tmp/ours-$s.json"
  OMP_NUM_THREADS=1 "$py" "$here/pyg_tgn.py" --data "$tmp/data" --negatives "$tmp/negatives.csv" --threads 1 \
    --epochs "$pyg_epochs" --seed "$s" > "$tmp/pyg-$s.json"
done
"$py" - "$tmp" "$here/seeds.json" "$seeds" "$epochs" "$pyg_epochs" "$form" "$preset" <<'PY'
import json, os, sys
tmp, out, seeds, epochs, pyg_epochs, form, preset = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
rows = []
for s in seeds:
    o = json.load(open(os.path.join(tmp, "ours-%s.json" % s)))["model"]
    p = json.load(open(os.path.join(tmp, "pyg-%s.json" % s)))
    rows.append({"seed": int(s), "ours_test_ap_batch": o["test"]["ap_batch"], "ours_epoch_s": o["epoch_seconds"],
                 "pyg_test_ap_batch": p["test"]["ap_batch"], "pyg_epoch_s": p["epoch_seconds"]})
def stats(k):
    v = [r[k] for r in rows]
    return sum(v) / len(v), min(v), max(v)
summary = {"preset": preset, "memory_time": form, "epochs": int(epochs), "pyg_epochs": int(pyg_epochs), "rows": rows}
for k in ("ours_test_ap_batch", "pyg_test_ap_batch", "ours_epoch_s", "pyg_epoch_s"):
    summary[k] = dict(zip(("mean", "min", "max"), stats(k)))
json.dump(summary, open(out, "w"), indent=1)
print("| seed | tgnn-train TGN (%s, %s epoch) test AP | s/epoch | PyG TGN (%s epochs) test AP | s/epoch |" % (form, epochs, pyg_epochs))
print("|---|---|---|---|---|")
for r in rows:
    print("| %d | %.4f | %.1f | %.4f | %.1f |" % (r["seed"], r["ours_test_ap_batch"], r["ours_epoch_s"], r["pyg_test_ap_batch"], r["pyg_epoch_s"]))
m = {k: summary[k] for k in ("ours_test_ap_batch", "pyg_test_ap_batch", "ours_epoch_s", "pyg_epoch_s")}
print("| mean (min-max) | %.4f (%.4f-%.4f) | %.1f | %.4f (%.4f-%.4f) | %.1f |" % (
    m["ours_test_ap_batch"]["mean"], m["ours_test_ap_batch"]["min"], m["ours_test_ap_batch"]["max"], m["ours_epoch_s"]["mean"],
    m["pyg_test_ap_batch"]["mean"], m["pyg_test_ap_batch"]["min"], m["pyg_test_ap_batch"]["max"], m["pyg_epoch_s"]["mean"]))
PY
