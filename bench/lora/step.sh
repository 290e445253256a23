#!/usr/bin/env bash
# Throughput and peak memory of one LoRA training step on all-MiniLM-L6-v2 (batch 32 x 64
# real tokens, r=8 on query,value, AdamW, clip 1.0): `lora-finetune bench` against PyTorch
# eager + PEFT (bench/lora/peft_step.py), both in this one run, same thread count
# (OMP_NUM_THREADS, MKL_NUM_THREADS, --threads / torch.set_num_threads), pinned with taskset
# to cores 0..N-1, interleaved so that background load hits both alike. Warm-up steps are
# excluded; the median of the timed steps is reported. Peak memory: max RSS of the whole
# process (/usr/bin/time %M), which includes loading the libraries and the model.
#
#   bench/lora/step.sh [OUT_DIR]      (env: PYTHON, BIN, THREADS="1 2", WARMUP=2, STEPS=5)
#
# Needs a built lora-finetune, the model in .deps/models/all-MiniLM-L6-v2, the fortunes data
# (data/lora/make-fortunes.py) and a Python with torch + transformers + peft.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-out/bench-lora-step}
PYTHON=${PYTHON:-python3}
BIN=${BIN:-build/tools/lora-finetune/lora-finetune}
THREADS=${THREADS:-"1 2"}
WARMUP=${WARMUP:-2}
STEPS=${STEPS:-5}
mkdir -p "$OUT"
RES="$OUT/results.jsonl"
: > "$RES"

run() {  # run THREADS LABEL CMD...: appends the JSON line plus the external max RSS
  local t=$1 label=$2
  shift 2
  local cores=$(( t - 1 ))
  local log="$OUT/$label-t$t.log"
  OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t /usr/bin/time -f "MAXRSS_KB=%M" -o "$OUT/time.txt" \
    taskset -c 0-$cores "$@" > "$log" 2>"$OUT/$label-t$t.err"
  local rss
  rss=$(sed -n 's/^MAXRSS_KB=//p' "$OUT/time.txt")
  tail -n 1 "$log" | "$PYTHON" -c 'import json,sys; d=json.loads(sys.stdin.read()); d["label"]=sys.argv[1]; d["time_maxrss_mib"]=int(sys.argv[2])/1024; print(json.dumps(d))' "$label" "$rss" >> "$RES"
  tail -n 1 "$RES" | "$PYTHON" -c 'import json,sys; d=json.loads(sys.stdin.read()); print("%22s threads %d: median step %.3f s, %.0f tok/s, max RSS %.0f MiB" % (d["label"], d["threads"], d["median_step_s"], d["tokens_per_s"], d["time_maxrss_mib"]))'
}

for t in $THREADS; do
  for preset in none hiddenkey; do
    run "$t" "cpp-$preset" "$BIN" bench --config configs/lora-finetune/default.json --threads "$t" --out "$OUT/tmp" \
      --set train.batch_size=32 --set bench.length=64 --set lora.r=8 --set dropout.preset=$preset \
      --set bench.warmup="$WARMUP" --set bench.steps="$STEPS" --quiet
    if [ "$preset" = none ]; then
      run "$t" "peft-none-sdpa" "$PYTHON" bench/lora/peft_step.py --preset none --attn sdpa --threads "$t" --warmup "$WARMUP" --steps "$STEPS"
      run "$t" "peft-none-eager" "$PYTHON" bench/lora/peft_step.py --preset none --attn eager --threads "$t" --warmup "$WARMUP" --steps "$STEPS"
    else
      run "$t" "peft-hiddenkey" "$PYTHON" bench/lora/peft_step.py --preset hiddenkey --threads "$t" --warmup "$WARMUP" --steps "$STEPS"
    fi
  done
done
"$PYTHON" bench/lora/step_table.py "$RES" | tee "$OUT/table.md"
