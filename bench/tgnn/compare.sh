#!/usr/bin/env bash
# Speed comparison of tgnn-train's TGN with PyTorch Geometric's TGN (bench/tgnn/pyg_tgn.py)
# on the same synthetic CSV, one epoch each, same dims (100/100/100, 2 heads, 10 most
# recent neighbours, batch 200, lr 1e-4), same thread count (OMP_NUM_THREADS and
# torch.set_num_threads / --threads). Reports wall and process-CPU seconds of the training
# epoch (CPU seconds are the steadier measure when other jobs share the cores) and the
# 1-minute load average before and after each run. Both sides are scored like for like:
# tgnn-train (this build) writes its split and fixed val/test negatives
# (--set eval.negatives_out=FILE) and pyg_tgn.py --negatives FILE trains on the same
# training events and scores the same val/test events against the same negative
# destinations (training negatives stay each side's own). Prints a Markdown table and
# writes bench/tgnn/compare.json.
# Usage: bench/tgnn/compare.sh [BUILD_DIR] [THREADS="1"] [PRESET=wiki]   (THREADS may list several: "1 2")
#   PYTHON (default python3) must import torch and torch_geometric
#   (pip install torch torch_geometric; no torch_scatter/torch_sparse needed).
#   FORMS (default "query message"): the tgnn-train variants to run, each
#   MEMORY_TIME[:PRECISION] (model.memory_time, model.precision; fp32 by default),
#   e.g. FORMS="query message message:bf16".
#   PYG (default "fp32:1"): the PyG runs, each PRECISION:EPOCHS (bf16 runs the forward
#   under torch.autocast("cpu", torch.bfloat16)); the ratios are against the first one.
#   e.g. PYG="fp32:1 bf16:1 fp32:3" (the last shows how many epochs PyG needs to reach the
#   AP tgnn-train reaches in one).
#   OTHER (optional) "label=BUILD_DIR ...": further tgnn-train builds to run in the same
#   comparison, e.g. OTHER="before=/tmp/old-build" for a before/after table.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
threads_list="${2:-1}"
preset="${3:-wiki}"
forms="${FORMS:-query message}"
pygs="${PYG:-fp32:1}"
py="${PYTHON:-python3}"
exe="$build/tools/tgnn-train/tgnn-train"
[[ -x "$exe" ]] || { echo "compare.sh: $exe not found (build first)" >&2; exit 2; }
builds=("this=$build")
for o in ${OTHER:-}; do
  [[ -x "${o#*=}/tools/tgnn-train/tgnn-train" ]] || { echo "compare.sh: ${o#*=}/tools/tgnn-train/tgnn-train not found" >&2; exit 2; }
  builds+=("$o")
done
"$py" -c "import torch, torch_geometric" || { echo "compare.sh: $py cannot import torch + torch_geometric" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
load() { cut -d' ' -f1 /proc/loadavg; }
"$exe" generate --quiet --out "$tmp/data" --set generate.preset="$preset" --set 'generate.formats=["tgl"]' >&2
for th in $threads_list; do
  for b in "${builds[@]}"; do
    for mt in $forms; do
      negs=()
      # only this build is known to have eval.negatives_out (OTHER builds may predate it)
      [[ "${b%%=*}" == this ]] && negs=(--set eval.negatives_out="$tmp/negatives.csv")
      l0=$(load)
      prec=()
      [[ "$mt" == *:* ]] && prec=(--set model.precision="${mt#*:}")
      OMP_NUM_THREADS=$th "${b#*=}/tools/tgnn-train/tgnn-train" fit --json --config "$root/configs/tgnn-train/tgn-wiki.json" \
        --threads "$th" --progress never --log-level warn --set data.path="$tmp/data" --set train.epochs=1 \
        --set baselines.memory_zeroed=false --set baselines.edgebank=false --set model.memory_time="${mt%%:*}" "${prec[@]}" "${negs[@]}" \
        --out "$tmp/ours-${b%%=*}-$mt-$th" > "$tmp/ours-${b%%=*}-$mt-$th.json"
      echo "$l0 $(load)" > "$tmp/ours-${b%%=*}-$mt-$th.load"
    done
  done
  for pv in $pygs; do
    pprec=()
    [[ "${pv%%:*}" == bf16 ]] && pprec=(--bf16)
    l0=$(load)
    OMP_NUM_THREADS=$th "$py" "$here/pyg_tgn.py" --data "$tmp/data" --negatives "$tmp/negatives.csv" --threads "$th" \
      --epochs "${pv#*:}" "${pprec[@]}" > "$tmp/pyg-$pv-$th.json"
    echo "$l0 $(load)" > "$tmp/pyg-$pv-$th.load"
  done
done
labels="${builds[*]}"
"$py" - "$tmp" "$here/compare.json" "$preset" "$threads_list" "$forms" "$labels" "$pygs" <<'PY'
import json, sys, os
tmp, out, preset = sys.argv[1], sys.argv[2], sys.argv[3]
threads, forms, labels = sys.argv[4].split(), sys.argv[5].split(), [b.split("=")[0] for b in sys.argv[6].split()]
pygs = sys.argv[7].split()
load = lambda f: [float(x) for x in open(os.path.join(tmp, f)).read().split()]
rows = []
for th in threads:
    pyg_runs = [(pv, json.load(open(os.path.join(tmp, "pyg-%s-%s.json" % (pv, th))))) for pv in pygs]
    pyg = pyg_runs[0][1]  # the reference of the ratios
    group = []
    for lb in labels:
        for mt in forms:
            name = "ours-%s-%s-%s" % (lb, mt, th)
            m = json.load(open(os.path.join(tmp, name + ".json")))["model"]
            mtime, _, prec = mt.partition(":")
            group.append({"impl": "tgnn-train TGN (%smemory_time=%s)" % ("" if lb == "this" else lb + ", ", mtime),
                          "precision": prec or "fp32", "epochs": 1,
                          "threads": int(th), "epoch_s": m["epoch_seconds"], "events_per_s": m["events_per_s"],
                          "epoch_cpu_s": m.get("epoch_cpu_seconds"), "events_per_cpu_s": m.get("events_per_cpu_s"),
                          "train_events": round(m["events_per_s"] * m["epoch_seconds"]),
                          "val_ap_batch": m["val"]["ap_batch"], "val_events": m["val"]["events"],
                          "test_events": m["test"]["events"],
                          "test_ap_batch": m["test"]["ap_batch"], "test_auc_batch": m["test"]["auc_batch"],
                          "stage_times": m["stage_times"], "load_1min": load(name + ".load")})
    for pv, p in pyg_runs:
        group.append({"impl": "PyG TGN (torch %s)" % p["torch"], "precision": pv.split(":")[0],
                      "epochs": p["epochs"], "threads": int(th), "epoch_s": p["epoch_seconds"],
                      "events_per_s": p["events_per_s"], "epoch_cpu_s": p.get("epoch_cpu_seconds"),
                      "events_per_cpu_s": p.get("events_per_cpu_s"), "train_events": p["train_events"],
                      "val_ap_batch": p["val"]["ap_batch"], "val_events": p["val"]["events"],
                      "test_events": p["test"]["events"], "test_ap_batch": p["test"]["ap_batch"],
                      "test_auc_batch": p["test"]["auc_batch"], "load_1min": load("pyg-%s-%s.load" % (pv, th))})
    for r in group:
        r["ratio_vs_pyg"] = r["events_per_s"] / pyg["events_per_s"]
        r["cpu_ratio_vs_pyg"] = (r["events_per_cpu_s"] / pyg["events_per_cpu_s"]
                                 if r["events_per_cpu_s"] and pyg.get("events_per_cpu_s") else None)
    rows += group
json.dump({"preset": preset, "eval_negatives": "shared (tgnn-train's eval.negatives_out, read by pyg_tgn.py)",
           "rows": rows}, open(out, "w"), indent=2)
f = lambda x, fmt: "-" if x is None else fmt % x
print("| implementation | precision | epochs | threads | train events | s/epoch (wall) | events/s (wall) | ratio vs PyG (wall) | CPU s/epoch | events/CPU-s | ratio vs PyG (CPU) | val AP (batch) | test AP (batch) | test AUC (batch) | load 1-min before/after |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| %s | %s | %d | %d | %d | %.1f | %.0f | %.2f | %s | %s | %s | %.4f | %.4f | %.4f | %.1f / %.1f |" % (
        r["impl"], r["precision"], r["epochs"], r["threads"], r["train_events"], r["epoch_s"], r["events_per_s"], r["ratio_vs_pyg"], f(r["epoch_cpu_s"], "%.1f"),
        f(r["events_per_cpu_s"], "%.0f"), f(r["cpu_ratio_vs_pyg"], "%.2f"), r["val_ap_batch"], r["test_ap_batch"],
        r["test_auc_batch"], r["load_1min"][0], r["load_1min"][1]))
ev = {(r["val_events"], r["test_events"]) for r in rows}
print("\nval/test events scored: %s (the same events and negatives on every row)" % sorted(ev))
PY
