#!/usr/bin/env bash
# Quality of the dropout presets on the fortunes task (all-MiniLM-L6-v2, 8 labels): for each
# preset x rank x seed, `lora-finetune train` with configs/lora-finetune/default.json (40 steps
# of 16 examples x <= 48 tokens, lr 2e-3, evaluation at steps 20 and 40), then a table of
# best and final validation accuracy and the train-validation gap (final train accuracy in
# eval mode minus final validation accuracy), mean ± std over seeds.
# Two runs at a time, each single-threaded and pinned to its own core.
#
#   bench/lora/quality.sh [OUT_DIR]   (env: BIN, PRESETS, RANKS="8", SEEDS="0 1 2", STEPS=40, JOBS=2)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-out/bench-lora-quality}
BIN=${BIN:-build/tools/lora-finetune/lora-finetune}
PRESETS=${PRESETS:-"none lora-dropout dropkey hiddencut hiddenkey-minus hiddenkey"}
RANKS=${RANKS:-8}
SEEDS=${SEEDS:-"0 1 2"}
STEPS=${STEPS:-40}
JOBS=${JOBS:-2}
mkdir -p "$OUT"
jobs_file="$OUT/jobs.txt"
: > "$jobs_file"
for seed in $SEEDS; do for r in $RANKS; do for p in $PRESETS; do echo "$p $r $seed" >> "$jobs_file"; done; done; done

worker() {  # worker K: runs jobs K, K+JOBS, ... pinned to core K
  local k=$1 i=0
  while read -r p r seed; do
    if [ $(( i % JOBS )) -eq "$k" ]; then
      local dir="$OUT/$p-r$r-s$seed"
      if [ ! -s "$dir/summary.json" ]; then
        mkdir -p "$dir"
        OMP_NUM_THREADS=1 taskset -c "$k" "$BIN" train --config configs/lora-finetune/default.json --out "$dir" \
          --seed "$seed" --set dropout.preset="$p" --set lora.r="$r" --set train.max_steps="$STEPS" \
          --threads 1 --json --quiet > "$dir/summary.tmp" 2> "$dir/stderr.txt" && mv "$dir/summary.tmp" "$dir/summary.json"
        echo "done $p r=$r seed=$seed"
      fi
    fi
    i=$(( i + 1 ))
  done < "$jobs_file"
}
for k in $(seq 0 $(( JOBS - 1 ))); do worker "$k" & done
wait
python3 bench/lora/quality_table.py "$OUT" | tee "$OUT/table.md"
