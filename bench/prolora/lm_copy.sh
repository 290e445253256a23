#!/usr/bin/env bash
# PRoLoRA against LoRA on a causal LM: llama2.c's stories260K (converted by `lora-finetune
# convert`), adapters on all linear modules but lm_head, the seeded copy task of
# data/lora/make-copy-task.py (configs/lora-finetune/stories260k-copy.json: 200 steps of 32
# examples, α=32, lr 5e-3, dropout preset none). Adapters: LoRA r=8 (46,240 parameters),
# RoLoRA r=16 with m=n=2 (u=0; the same 46,240: plan's pick at r=16 for LoRA r=8's budget),
# PRoLoRA r=8, u=1, m=n=2 (26,010: same rank, 0.56 of the parameters), LoRA r=16 (92,480).
# A markdown table of the final validation loss, perplexity and next-token accuracy (mean ±
# std over seeds). One run at a time, single-threaded (OMP/OPENBLAS/MKL threads 1).
#
#   bench/prolora/lm_copy.sh [OUT_DIR]   (env: SEEDS="0 1", STEPS=200)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-out/bench-prolora-lm-copy}
LORA=${LORA:-build/tools/lora-finetune/lora-finetune}
PROLORA=${PROLORA:-build/tools/prolora-finetune/prolora-finetune}
SEEDS=${SEEDS:-"0 1"}
STEPS=${STEPS:-200}
ADAPTERS="lora-r8 rolora-r16-m2 prolora-r8-u1-m2 lora-r16"
mkdir -p "$OUT"
python3 data/lora/make-copy-task.py --out data/lora/copy > /dev/null
"$LORA" convert --set convert.input=tests/nn/fixtures/stories260K/stories260K.bin --out out/models/stories260K --quiet > /dev/null
for seed in $SEEDS; do
  for a in $ADAPTERS; do
    case "$a" in
      lora-r8) cmd=("$LORA" train --set lora.r=8) ;;
      lora-r16) cmd=("$LORA" train --set lora.r=16) ;;
      rolora-r16-m2) cmd=("$PROLORA" train --set lora.r=16 --set prolora.variant=rolora --set prolora.m=2 --set prolora.n=2) ;;
      prolora-r8-u1-m2) cmd=("$PROLORA" train --set lora.r=8 --set prolora.u=1 --set prolora.m=2 --set prolora.n=2) ;;
    esac
    dir="$OUT/$a-s$seed"
    if [ ! -s "$dir/summary.json" ]; then
      mkdir -p "$dir"
      OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 "${cmd[@]}" \
        --config configs/lora-finetune/stories260k-copy.json --set model.path=out/models/stories260K \
        --set dropout.preset=none --set train.max_steps="$STEPS" --out "$dir" --seed "$seed" --threads 1 --json --quiet \
        > "$dir/summary.tmp" 2> "$dir/stderr.txt" && mv "$dir/summary.tmp" "$dir/summary.json"
      echo "done $a seed=$seed" >&2
    fi
  done
done
python3 - "$OUT" "$ADAPTERS" "$SEEDS" <<'PY'
import json, math, statistics, sys
out, adapters, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
lora = {"lora-r8": 46240, "lora-r16": 92480}
def ms(v):
    return f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"
print("| adapter | adapter params | val loss (final) | val perplexity | next-token accuracy | train loss (final, eval mode) | s/run |")
print("| --- | ---: | --- | --- | --- | --- | ---: |")
for a in adapters:
    rows = [json.load(open(f"{out}/{a}-s{s}/summary.json")) for s in seeds]
    p = rows[0]["adapter_report"]["parameters"] if "adapter_report" in rows[0] else lora[a]
    print(f"| {a} | {p:,} | {ms([r['final_val_loss'] for r in rows])} | {ms([math.exp(r['final_val_loss']) for r in rows])} | "
          f"{ms([r['final_accuracy'] for r in rows])} | {ms([r['final_train_loss'] for r in rows])} | "
          f"{statistics.mean(r['seconds'] for r in rows):.0f} |")
PY
