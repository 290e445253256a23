#!/usr/bin/env bash
# SSRM benchmark: ssrm-incremental sweep on synthetic evolving graphs, one sweep per
# (backbone, lambda_x): ER-GNN, TWP, GEM and EWC each without and with SSRM (weight 1, MMD),
# over the given seeds, everything else at the defaults (configs/ssrm-incremental/default.json:
# 10 classes x 200 nodes, 5 tasks of 2 classes, task-IL, GCN/SAGE hidden 256, 100 epochs
# per task). Writes out/<backbone>-shift<lambda>.json (the sweep's --json output) and then
# the table (table.py) into table.md.
#
# Usage: bench/ssrm/run.sh BUILD_DIR [SEEDS] [BACKBONES] [SHIFTS]
#   e.g. OMP_NUM_THREADS=1 bench/ssrm/run.sh build "0,1,2" "gcn sage" "0 1 3 6"
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
SEEDS=${2:-0,1,2,3,4}
BACKBONES=${3:-gcn sage}
SHIFTS=${4:-0 1 3 6}
BIN="$BUILD/tools/ssrm-incremental/ssrm-incremental"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$HERE/out"
for backbone in $BACKBONES; do
  for shift in $SHIFTS; do
    name="$backbone-shift$shift"
    start=$(date +%s)
    "$BIN" sweep --quiet --json --threads 1 --out "$HERE/out/$name" \
      --set model.name="$backbone" --set generate.shift="$shift" \
      --set 'sweep.frameworks=["ergnn","twp","gem","ewc"]' --set 'sweep.ssrm_weights=[0,1]' \
      --set "sweep.seeds=[$SEEDS]" > "$HERE/out/$name.json.tmp"
    mv "$HERE/out/$name.json.tmp" "$HERE/out/$name.json"
    echo "$name: $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
python3 "$HERE/table.py" "$HERE/out" > "$HERE/table.md"
cat "$HERE/table.md"
