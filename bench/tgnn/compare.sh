#!/usr/bin/env bash
# Speed comparison of tgnn-train's TGN with PyTorch Geometric's TGN (bench/tgnn/pyg_tgn.py)
# on the same synthetic CSV, one epoch each, same dims (100/100/100, 2 heads, 10 most
# recent neighbours, batch 200, lr 1e-4), same thread count (OMP_NUM_THREADS and
# torch.set_num_threads / --threads). Prints a Markdown table and writes
# bench/tgnn/compare.json.
# Usage: bench/tgnn/compare.sh [BUILD_DIR] [THREADS="1"] [PRESET=wiki]   (THREADS may list several: "1 2")
#   PYTHON (default python3) must import torch and torch_geometric
#   (pip install torch torch_geometric; no torch_scatter/torch_sparse needed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
threads_list="${2:-1}"
preset="${3:-wiki}"
py="${PYTHON:-python3}"
exe="$build/tools/tgnn-train/tgnn-train"
[[ -x "$exe" ]] || { echo "compare.sh: $exe not found (build first)" >&2; exit 2; }
"$py" -c "import torch, torch_geometric" || { echo "compare.sh: $py cannot import torch + torch_geometric" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$exe" generate --quiet --out "$tmp/data" --set generate.preset="$preset" --set 'generate.formats=["tgl"]' >&2
for th in $threads_list; do
  for mt in query message; do
    OMP_NUM_THREADS=$th "$exe" fit --json --config "$root/configs/tgnn-train/tgn-wiki.json" --threads "$th" --progress never \
      --log-level warn --set data.path="$tmp/data" --set train.epochs=1 --set baselines.memory_zeroed=false \
      --set baselines.edgebank=false --set model.memory_time=$mt --out "$tmp/ours-$mt-$th" > "$tmp/ours-$mt-$th.json"
  done
  OMP_NUM_THREADS=$th "$py" "$here/pyg_tgn.py" --data "$tmp/data" --threads "$th" --epochs 1 > "$tmp/pyg-$th.json"
done
"$py" - "$tmp" "$here/compare.json" "$preset" "$threads_list" <<'PY'
import json, sys, os
tmp, out, preset, threads = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()
rows = []
for th in threads:
    pyg = json.load(open(os.path.join(tmp, "pyg-%s.json" % th)))
    for mt in ("query", "message"):
        m = json.load(open(os.path.join(tmp, "ours-%s-%s.json" % (mt, th))))["model"]
        rows.append({"impl": "tgnn-train TGN (memory_time=%s)" % mt, "threads": int(th), "epoch_s": m["epoch_seconds"],
                     "events_per_s": m["events_per_s"], "test_ap_batch": m["test"]["ap_batch"],
                     "stage_times": m["stage_times"]})
    rows.append({"impl": "PyG TGN (torch %s)" % pyg["torch"], "threads": int(th), "epoch_s": pyg["epoch_seconds"],
                 "events_per_s": pyg["events_per_s"], "test_ap_batch": pyg["test"]["ap_batch"]})
    for r in rows[-3:]:
        r["ratio_vs_pyg"] = r["events_per_s"] / pyg["events_per_s"]
json.dump({"preset": preset, "rows": rows}, open(out, "w"), indent=2)
print("| implementation | threads | s/epoch | events/s | ratio vs PyG | test AP (batch) |")
print("|---|---|---|---|---|---|")
for r in rows:
    print("| %s | %d | %.1f | %.0f | %.2f | %.4f |" % (r["impl"], r["threads"], r["epoch_s"], r["events_per_s"],
                                                    r["ratio_vs_pyg"], r["test_ap_batch"]))
PY
