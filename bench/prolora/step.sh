#!/usr/bin/env bash
# Step time of PRoLoRA against LoRA at equal rank (r=8): `lora-finetune bench` (LoRA) and
# `prolora-finetune bench` with the chunked forward (prolora.forward=chunked, the default:
# rolled shared chunks by index_select, no A_full/B_full per step) and with the
# materialised one (A_full and B_full built by index gathers every step), u=1, m=n=2, on
# all-MiniLM-L6-v2 with the fixed batch of lora-finetune bench (32 rows x 64 real tokens,
# dropout preset none, AdamW, clip 1.0), for the targets query,value and all-linear.
# Single-threaded: OMP/OPENBLAS/MKL_NUM_THREADS=1, --threads 1, pinned to core 0. The three
# programs alternate within each repetition, so background load hits them alike; a row's
# ratio is each repetition's median step over LoRA's median step of the same repetition,
# then mean ± std over repetitions.
#
#   bench/prolora/step.sh [OUT_DIR]   (env: REPS=3, WARMUP=2, STEPS=5, TARGETS="qv all")
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-out/bench-prolora-step}
LORA=${LORA:-build/tools/lora-finetune/lora-finetune}
PROLORA=${PROLORA:-build/tools/prolora-finetune/prolora-finetune}
REPS=${REPS:-3}
WARMUP=${WARMUP:-2}
STEPS=${STEPS:-5}
TARGETS=${TARGETS:-"qv all"}
mkdir -p "$OUT"
RES="$OUT/results.jsonl"
: > "$RES"
for rep in $(seq 1 "$REPS"); do
  for tg in $TARGETS; do
    if [ "$tg" = all ]; then targets='["all-linear"]'; else targets='["query","value"]'; fi
    for impl in lora chunked materialized; do
      case "$impl" in
        lora) cmd=("$LORA" bench) ;;
        *) cmd=("$PROLORA" bench --set prolora.u=1 --set prolora.m=2 --set prolora.n=2 --set prolora.forward=$impl) ;;
      esac
      OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 "${cmd[@]}" \
        --config configs/lora-finetune/default.json --threads 1 --set "lora.targets=$targets" --set lora.r=8 \
        --set train.batch_size=32 --set bench.length=64 --set dropout.preset=none \
        --set bench.warmup="$WARMUP" --set bench.steps="$STEPS" --quiet |
        python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d.update(rep=int(sys.argv[1]), impl=sys.argv[2], tg=sys.argv[3]); print(json.dumps(d))' \
          "$rep" "$impl" "$tg" >> "$RES"
      tail -n 1 "$RES" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("rep %d %-4s %-13s median step %.3f s, %d trainable" % (d["rep"], d["tg"], d["impl"], d["median_step_s"], d["trainable_parameters"]))'
    done
  done
done
python3 - "$RES" <<'PY' | tee "$OUT/table.md"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def ms(v):
    return f"{statistics.mean(v):.3f} ± {statistics.stdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"
print("| targets | implementation | trainable (adapter + head) | median step (s), mean ± std over reps | ratio to LoRA (paired per rep) |")
print("| --- | --- | ---: | ---: | ---: |")
for tg in dict.fromkeys(r["tg"] for r in rows):
    lora = {r["rep"]: r["median_step_s"] for r in rows if r["tg"] == tg and r["impl"] == "lora"}
    for impl in ["lora", "chunked", "materialized"]:
        rs = [r for r in rows if r["tg"] == tg and r["impl"] == impl]
        ratios = [r["median_step_s"] / lora[r["rep"]] for r in rs]
        name = {"lora": "LoRA r=8 (lora-finetune)", "chunked": "PRoLoRA r=8 u=1 m=n=2, chunked",
                "materialized": "PRoLoRA r=8 u=1 m=n=2, materialised"}[impl]
        print(f"| {'query,value' if tg == 'qv' else 'all-linear'} | {name} | {rs[0]['trainable_parameters']:,} | "
              f"{ms([r['median_step_s'] for r in rs])} | {ms(ratios) if impl != 'lora' else '1'} |")
PY
