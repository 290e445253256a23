#!/usr/bin/env bash
# The dropout presets on a causal LM: LoRA (all-linear, r=16) on llama2.c's stories260K
# converted by `lora-finetune convert`, trained on the seeded copy task of
# data/lora/make-copy-task.py (configs/lora-finetune/stories260k-copy.json: 200 steps of 32
# examples). Prints a markdown table of validation loss, perplexity and next-token
# accuracy at the end (mean ± std over seeds). One run at a time, single-threaded.
#
#   bench/lora/lm_copy.sh [OUT_DIR]   (env: BIN, PRESETS, SEEDS="0 1", STEPS=200)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-out/bench-lora-lm-copy}
BIN=${BIN:-build/tools/lora-finetune/lora-finetune}
PRESETS=${PRESETS:-"none lora-dropout dropkey hiddenkey-minus hiddenkey"}
SEEDS=${SEEDS:-"0 1"}
STEPS=${STEPS:-200}
mkdir -p "$OUT"
python3 data/lora/make-copy-task.py --out data/lora/copy > /dev/null
"$BIN" convert --set convert.input=tests/nn/fixtures/stories260K/stories260K.bin --out out/models/stories260K --quiet > /dev/null
for seed in $SEEDS; do
  for p in $PRESETS; do
    dir="$OUT/$p-s$seed"
    if [ ! -s "$dir/summary.json" ]; then
      mkdir -p "$dir"
      OMP_NUM_THREADS=1 "$BIN" train --config configs/lora-finetune/stories260k-copy.json --out "$dir" --seed "$seed" \
        --set dropout.preset="$p" --set train.max_steps="$STEPS" --threads 1 --json --quiet \
        > "$dir/summary.tmp" 2> "$dir/stderr.txt" && mv "$dir/summary.tmp" "$dir/summary.json"
      echo "done $p seed=$seed" >&2
    fi
  done
done
python3 - "$OUT" "$PRESETS" "$SEEDS" <<'PY'
import json, math, statistics, sys
out, presets, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def ms(v):
    return f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"
print("| preset | val loss (final) | val perplexity | next-token accuracy | train loss (final, eval mode) |")
print("| --- | --- | --- | --- | --- |")
for p in presets:
    rows = [json.load(open(f"{out}/{p}-s{s}/summary.json")) for s in seeds]
    print(f"| {p} | {ms([r['final_val_loss'] for r in rows])} | {ms([math.exp(r['final_val_loss']) for r in rows])} | "
          f"{ms([r['final_accuracy'] for r in rows])} | {ms([r['final_train_loss'] for r in rows])} |")
PY
