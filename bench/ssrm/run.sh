#!/usr/bin/env bash
# SSRM benchmark: ssrm-incremental sweep on synthetic evolving graphs, one sweep per
# (backbone, lambda_x): the frameworks (default ER-GNN, TWP, GEM, EWC) each without SSRM
# (weight 0) and with it at each weight of WEIGHTS (MMD, recomputed target), over the
# given seeds, everything else at the defaults (configs/ssrm-incremental/default.json:
# 10 classes x 200 nodes, 5 tasks of 2 classes, task-IL, GCN/SAGE hidden 256, 100 epochs
# per task, full batch). Writes out/<PREFIX><backbone>-shift<lambda>.json (the sweep's
# --json output) and then the tables (table.py) into table.md.
#
# Usage: bench/ssrm/run.sh BUILD_DIR [SEEDS] [BACKBONES] [SHIFTS]
#   e.g. OMP_NUM_THREADS=1 bench/ssrm/run.sh build "0,1,2,3,4" "gcn sage" "0 1 3 6"
# Environment: WEIGHTS (default "0,0.01,0.1,1"), FRAMEWORKS (default ergnn,twp,gem,ewc, as
# JSON strings), PREFIX (file name prefix, default ""), EXTRA (more ssrm-incremental
# options, e.g. "--set train.batch_size=64" for the mini-batch rows, with PREFIX=mb-).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
SEEDS=${2:-0,1,2,3,4}
BACKBONES=${3:-gcn sage}
SHIFTS=${4:-0 1 3 6}
WEIGHTS=${WEIGHTS:-0,0.01,0.1,1}
FRAMEWORKS=${FRAMEWORKS:-\"ergnn\",\"twp\",\"gem\",\"ewc\"}
PREFIX=${PREFIX:-}
EXTRA=${EXTRA:-}
BIN="$BUILD/tools/ssrm-incremental/ssrm-incremental"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$HERE/out"
for backbone in $BACKBONES; do
  for shift in $SHIFTS; do
    name="$PREFIX$backbone-shift$shift"
    start=$(date +%s)
    # shellcheck disable=SC2086  # EXTRA is a list of options
    "$BIN" sweep --quiet --json --threads 1 --out "$HERE/out/$name" \
      --set model.name="$backbone" --set generate.shift="$shift" \
      --set "sweep.frameworks=[$FRAMEWORKS]" --set "sweep.ssrm_weights=[$WEIGHTS]" \
      --set "sweep.seeds=[$SEEDS]" $EXTRA > "$HERE/out/$name.json.tmp"
    mv "$HERE/out/$name.json.tmp" "$HERE/out/$name.json"
    echo "$name: $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
python3 "$HERE/table.py" "$HERE/out" > "$HERE/table.md"
cat "$HERE/table.md"
