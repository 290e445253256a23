#!/usr/bin/env bash
# Validation accuracy and trainable parameters of LoRA against PRoLoRA on the fortunes task
# (all-MiniLM-L6-v2, 8 labels, adapters on query,value, α=16, dropout preset none), in two
# regimes, for each adapter x seed:
#   full: configs/lora-finetune/default.json (1002 training examples, 40 steps of 16,
#         lr 2e-3, evaluation at steps 20 and 40)
#   low:  the first 128 training examples only, 160 steps of 16 (20 epochs), evaluation
#         every 20 steps: train accuracy reaches 1 and validation accuracy peaks early
# Adapters (ADAPTERS, label=overrides):
#   lora-r8            LoRA r=8 (lora-finetune)
#   prolora-r8-u1-m2   PRoLoRA r=8, u=1, m=n=2: same rank, 0.56 of LoRA's parameters
#   rolora-r16-m2      r=16, u=0, m=n=2: LoRA r=8's budget exactly, twice its rank
#                      (plan's pick at r=16 for that budget)
#   rolora-r8-m2       ablation: broadcast + rotation, u=0
#   clora-r8-m2        ablation: broadcast only
# Two runs at a time, each single-threaded (OMP/OPENBLAS/MKL threads 1, --threads 1) and
# pinned to its own core. Then bench/prolora/quality_table.py prints the table.
#
#   bench/prolora/quality.sh [OUT_DIR]   (env: SEEDS="0 1 2 3 4", REGIMES="full low", ADAPTERS, JOBS=2)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-out/bench-prolora-quality}
LORA=${LORA:-build/tools/lora-finetune/lora-finetune}
PROLORA=${PROLORA:-build/tools/prolora-finetune/prolora-finetune}
SEEDS=${SEEDS:-"0 1 2 3 4"}
REGIMES=${REGIMES:-"full low"}
JOBS=${JOBS:-2}
ADAPTERS=${ADAPTERS:-"lora-r8 prolora-r8-u1-m2 rolora-r16-m2 rolora-r8-m2 clora-r8-m2"}
mkdir -p "$OUT"
head -n 128 data/lora/fortunes/train.jsonl > "$OUT/train-128.jsonl"

program_of() { case "$1" in lora-*) echo "$LORA" ;; *) echo "$PROLORA" ;; esac; }
adapter_args() {  # the overrides of an adapter label
  case "$1" in
    lora-r8) echo "--set lora.r=8" ;;
    prolora-r8-u1-m2) echo "--set lora.r=8 --set prolora.u=1 --set prolora.m=2 --set prolora.n=2" ;;
    rolora-r16-m2) echo "--set lora.r=16 --set prolora.variant=rolora --set prolora.m=2 --set prolora.n=2" ;;
    rolora-r8-m2) echo "--set lora.r=8 --set prolora.variant=rolora --set prolora.m=2 --set prolora.n=2" ;;
    clora-r8-m2) echo "--set lora.r=8 --set prolora.variant=clora --set prolora.m=2 --set prolora.n=2" ;;
    *) echo "unknown adapter $1" >&2; exit 2 ;;
  esac
}
regime_args() {
  case "$1" in
    full) echo "--set train.max_steps=40 --set train.eval_every=20" ;;
    low) echo "--set data.train=$OUT/train-128.jsonl --set train.max_steps=160 --set train.eval_every=20" ;;
  esac
}

jobs_file="$OUT/jobs.txt"
: > "$jobs_file"
for seed in $SEEDS; do for g in $REGIMES; do for a in $ADAPTERS; do echo "$g $a $seed" >> "$jobs_file"; done; done; done

worker() {  # worker K: runs jobs K, K+JOBS, ... pinned to core K
  local k=$1 i=0
  while read -r g a seed; do
    if [ $(( i % JOBS )) -eq "$k" ]; then
      local dir="$OUT/$g/$a-s$seed"
      if [ ! -s "$dir/summary.json" ]; then
        mkdir -p "$dir"
        # shellcheck disable=SC2046
        OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c "$k" "$(program_of "$a")" train \
          --config configs/lora-finetune/default.json $(adapter_args "$a") --set dropout.preset=none $(regime_args "$g") \
          --out "$dir" --seed "$seed" --threads 1 --json --quiet > "$dir/summary.tmp" 2> "$dir/stderr.txt" &&
          mv "$dir/summary.tmp" "$dir/summary.json" && echo "done $g $a seed=$seed" ||
          echo "FAILED $g $a seed=$seed: $(tail -n 1 "$dir/stderr.txt")"
      fi
    fi
    i=$(( i + 1 ))
  done < "$jobs_file"
}
for k in $(seq 0 $(( JOBS - 1 ))); do worker "$k" & done
wait
python3 bench/prolora/quality_table.py "$OUT" | tee "$OUT/table.md"
