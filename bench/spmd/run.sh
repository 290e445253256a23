#!/usr/bin/env bash
# spmd-plan (HAP) benchmarks; every number is printed by spmd-plan itself:
#  1. predicted iteration time of HAP vs DP-even, DP-proportional and TP on the paper's
#     heterogeneous cluster and on a homogeneous one (configs/spmd-plan/cluster-*.json),
#     for VGG19, ViT, BERT-base and BERT-MoE (spmd-plan compare);
#  2. synthesis time and A* vs uniform-cost nodes for BERT with 6 / 12 / 24 layers on 64 devices;
#  3. the executor on this machine: profile 2 and 3 processes (a cluster file), then run a
#     small BERT synthesized for that cluster: measured vs predicted iteration time.
# Writes bench/spmd/results.json and prints Markdown tables.
# Usage: bench/spmd/run.sh [BUILD_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${1:-$root/build}"
exe="$build/tools/spmd-plan/spmd-plan"
[[ -x "$exe" ]] || { echo "run.sh: $exe not found (build first)" >&2; exit 2; }
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
cd "$root"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
rows="$tmp/rows.jsonl"
: > "$rows"
# 1. Speedups. Sizes as HAP's configs: 32 samples per device (batch 2048), 12 layers, hidden
# 768; ViT on 256x256 images in 32x32 patches (sequence 64); BERT-MoE with every other FFN a
# top-2 MoE (16 experts here; HAP used 2 per device). Also 2 samples per device (batch 128).
for setting in het:2048 homo:2048 het:128; do
  cluster=${setting%%:*} batch=${setting##*:}
  for model in vgg19 vit bert bert_moe; do
    extra=()
    case $model in
      vit) extra=(--set model.image=256 --set model.patch=32) ;;
      bert_moe) extra=(--set model.experts=16) ;;
    esac
    "$exe" compare --json --quiet --out "$tmp/o" --set cluster.file=configs/spmd-plan/cluster-$cluster.json \
      --set model.generator=$model --set model.batch=$batch --set compare.ucs=false "${extra[@]}" > "$tmp/r.json"
    python3 - "$tmp/r.json" "$cluster" "$model" "$batch" >> "$rows" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
b = {x["method"]: x for x in r["baselines"]}
print(json.dumps({"table": "speedup", "cluster": sys.argv[2], "model": sys.argv[3], "batch": int(sys.argv[4]),
                  "hap_ms": r["hap"]["iteration_ms"], "hap_compute_ms": r["hap"]["compute_ms"], "hap_comm_ms": r["hap"]["comm_ms"],
                  "hap_fits": r["hap"]["fits_memory"],
                  **{k + "_ms": v["iteration_ms"] for k, v in b.items()},
                  **{k + "_fits": v["fits_memory"] for k, v in b.items()},
                  "synthesis_s": r["synthesis_s"]}))
PY
  done
done
# 2. Synthesis time and search effort.
for layers in 6 12 24; do
  "$exe" compare --json --quiet --out "$tmp/o" --set cluster.file=configs/spmd-plan/cluster-het.json \
    --set model.generator=bert --set model.layers=$layers --set model.batch=2048 --set baselines='[]' > "$tmp/r.json"
  python3 - "$tmp/r.json" "$layers" >> "$rows" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s = r["search"]
print(json.dumps({"table": "search", "layers": int(sys.argv[2]), "synthesis_s": r["synthesis_s"],
                  "astar_expanded": s["astar"]["expanded"], "astar_s": s["astar"]["seconds"], "astar_ms": s["astar"]["cost_ms"],
                  "ucs_expanded": s["uniform_cost"]["expanded"], "ucs_s": s["uniform_cost"]["seconds"], "ucs_ms": s["uniform_cost"]["cost_ms"]}))
PY
done
# 3. Executor: measured vs predicted on this machine (a profiled cluster file per world size).
for procs in 2 3; do
  "$exe" profile --config configs/spmd-plan/cpu-run.json --set profile.processes=$procs --threads 1 \
    --quiet --out "$tmp/prof$procs" > /dev/null
  "$exe" run --config configs/spmd-plan/cpu-run.json --set cluster.file="$tmp/prof$procs/cluster.json" \
    --threads 1 --json --quiet --progress never --out "$tmp/run$procs" > "$tmp/r.json"
  python3 - "$tmp/r.json" "$procs" >> "$rows" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({"table": "executor", "processes": int(sys.argv[2]), "ratios": r["ratios"], "equivalent": r["equivalent"],
                  "measured_ms": r["measured_iteration_ms"], "predicted_ms": r["predicted_iteration_ms"],
                  "predicted_compute_ms": r["predicted_compute_ms"], "predicted_comm_ms": r["predicted_comm_ms"]}))
PY
done
python3 - "$rows" "$here/results.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
json.dump(rows, open(sys.argv[2], "w"), indent=1)
print("| cluster | model | batch | HAP ms (compute + comm) | DP-even | DP-prop. | TP | vs DP-even | vs DP-prop. | vs TP | synth s |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    if r["table"] != "speedup": continue
    tp = "%.0f%s" % (r["tp_ms"], "" if r["tp_fits"] else " (OOM)")
    print("| %s | %s | %d | %.1f (%.1f + %.1f) | %.1f | %.1f | %s | %.2fx | %.2fx | %.2fx | %.3f |" % (
        r["cluster"], r["model"], r["batch"], r["hap_ms"], r["hap_compute_ms"], r["hap_comm_ms"], r["dp-even_ms"], r["dp-proportional_ms"], tp,
        r["dp-even_ms"] / r["hap_ms"], r["dp-proportional_ms"] / r["hap_ms"], r["tp_ms"] / r["hap_ms"], r["synthesis_s"]))
print()
print("| BERT layers (64 devices) | synthesis s | A* nodes | A* s | uniform-cost nodes | UCS s | same cost |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    if r["table"] != "search": continue
    print("| %d | %.3f | %d | %.3f | %d | %.3f | %s |" % (r["layers"], r["synthesis_s"], r["astar_expanded"], r["astar_s"],
          r["ucs_expanded"], r["ucs_s"], "yes" if abs(r["astar_ms"] - r["ucs_ms"]) <= 1e-9 * r["ucs_ms"] else "NO"))
print()
print("| processes | ratios | equivalent | measured ms | predicted ms (compute + comm) | measured / predicted |")
print("|---|---|---|---|---|---|")
for r in rows:
    if r["table"] != "executor": continue
    print("| %d | %s | %s | %.2f | %.2f (%.2f + %.2f) | %.2f |" % (r["processes"], ", ".join("%.3f" % x for x in r["ratios"]),
          "yes" if r["equivalent"] else "NO", r["measured_ms"], r["predicted_ms"], r["predicted_compute_ms"], r["predicted_comm_ms"],
          r["measured_ms"] / r["predicted_ms"]))
PY
