#!/usr/bin/env bash
# DynaPipe vs the padding/packing baselines over max sequence lengths, GPT and T5 shapes,
# 4 and 8 stages (simulated; analytical cost model). Writes bench/dynapipe/results.json and
# prints a Markdown table. Usage: bench/dynapipe/run.sh [BUILD_DIR] [BATCHES]
# Extra dynapipe-plan options for every run: BENCH_ARGS (e.g. BENCH_ARGS='--set
# planner.layouts=["linear"]' for DynaPipe on the linear layout only).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
batches="${2:-8}"
exe="$build/tools/dynapipe-plan/dynapipe-plan"
[[ -x "$exe" ]] || { echo "run.sh: $exe not found (build first)" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
rows="$tmp/rows.jsonl"
: > "$rows"
for model in gpt t5; do
  for stages in 4 8; do
    for seqlen in 512 1024 2048 4096 8192; do
      if [[ $model == gpt ]]; then
        cfg="$root/configs/dynapipe-plan/default.json"
        shape=(--set model.encoder_layers=$((4 * stages)))
      else
        cfg="$root/configs/dynapipe-plan/t5.json"
        shape=(--set model.encoder_layers=$((2 * stages)) --set model.decoder_layers=$((2 * stages)))
      fi
      taskset -c 0 "$exe" compare --config "$cfg" --json --quiet --out "$tmp/out" \
        --set cluster.stages=$stages "${shape[@]}" \
        --set data.max_seqlen=$seqlen --set data.batches=$batches \
        --set data.generate.input_max=8192 ${BENCH_ARGS:-} > "$tmp/r.json"
      python3 - "$tmp/r.json" "$model" "$stages" "$seqlen" >> "$rows" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
m = {x["method"]: x for x in r["methods"]}
d = m["dynapipe"]
best = max((x for x in r["methods"][1:] if x.get("feasible")), key=lambda x: x["throughput_tokens_per_s"])
print(json.dumps({
    "model": sys.argv[2], "stages": int(sys.argv[3]), "max_seqlen": int(sys.argv[4]),
    "dynapipe_tokens_per_s": d["throughput_tokens_per_s"],
    "speedup_vs_packing": r["speedup_vs_packing"],
    "speedup_vs_best_baseline": r["speedup_vs_best_baseline"], "best_baseline": best["method"],
    "pad_eff_dynapipe": d["padding_efficiency"],
    "pad_eff_packing": m["packing"].get("padding_efficiency"),
    "planning_ms_mean": d["planning_ms_mean"], "planning_ms_max": d["planning_ms_max"],
}))
PY
    done
  done
done
python3 - "$rows" "$here/results.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
json.dump(rows, open(sys.argv[2], "w"), indent=1)
def f(x, p=2):
    return "-" if x is None else f"{x:.{p}f}"
print("| model | stages | max_seqlen | DynaPipe tokens/s | vs packing | vs best baseline (which) | pad eff DynaPipe / packing | planning ms mean / max |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['model']} | {r['stages']} | {r['max_seqlen']} | {r['dynapipe_tokens_per_s']:.0f} | "
          f"{f(r['speedup_vs_packing']) + 'x' if r['speedup_vs_packing'] is not None else '- (packing does not fit)'} | {f(r['speedup_vs_best_baseline'])}x ({r['best_baseline']}) | "
          f"{f(r['pad_eff_dynapipe'], 3)} / {f(r['pad_eff_packing'], 3)} | "
          f"{f(r['planning_ms_mean'])} / {f(r['planning_ms_max'])} |")
PY
