#!/usr/bin/env bash
# Real execution on this machine: profile the small GPT-like model of
# configs/dynapipe-plan/cpu-run.json (4 layers, hidden 128) on one thread, then execute
# DynaPipe's plans and the packing / fixed-token baselines on 2 processes x 1 thread
# (Gloo on loopback), methods alternating per global batch; prints measured against
# simulated iteration times and writes OUT/run.json. Usage: bench/dynapipe/run-real.sh [BUILD] [OUT] [ITERATIONS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-build}
OUT=${2:-$ROOT/out/bench-dynapipe-real}
ITER=${3:-3}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
cd "$ROOT"
EXE="$BUILD/tools/dynapipe-plan/dynapipe-plan"
"$EXE" profile --config configs/dynapipe-plan/cpu-run.json --threads 1 --out "$OUT" --progress never
"$EXE" run --config configs/dynapipe-plan/cpu-run.json --set model.profile="$OUT/profile" \
  --set run.iterations="$ITER" --threads 1 --out "$OUT" --progress never
