#!/usr/bin/env bash
# A PRoLoRA adapter exported in the PEFT layout loads in Python PEFT and gives the same
# outputs: trains PRoLoRA (r=8, u=1, m=n=2; configs/lora-finetune/default.json, i.e. 40
# steps on the fortunes task) into OUT unless OUT/adapter.h5 exists, exports it
# (materialised as LoRA) to OUT/peft, predicts the first 8 test texts with
# prolora-finetune (chunked PRoLoRA forward), then loads OUT/peft on all-MiniLM-L6-v2 with
# transformers + peft (scripts/lora-fixtures.py check-export, lora-finetune's check) and
# compares the class probabilities: exit 1 above 1e-4.
#
#   bench/prolora/check_export.sh [OUT_DIR]   (env: PYTHON with torch + transformers + peft, see bench/lora/README.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-out/prolora-check-export}
PYTHON=${PYTHON:-python3}
BIN=${BIN:-build/tools/prolora-finetune/prolora-finetune}
CFG=configs/lora-finetune/default.json
mkdir -p "$OUT"
python3 data/lora/make-fortunes.py --out data/lora/fortunes > /dev/null
[ -s "$OUT/adapter.h5" ] || "$BIN" train --config "$CFG" --out "$OUT" --progress never --quiet
"$BIN" export --config "$CFG" --out "$OUT"
head -n 8 data/lora/fortunes/test.jsonl > "$OUT/texts.jsonl"
"$BIN" predict --config "$CFG" --out "$OUT" --set data.predict="$OUT/texts.jsonl" --quiet > /dev/null
max_length=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"]["max_length"])' "$CFG")
"$PYTHON" scripts/lora-fixtures.py check-export "$OUT/peft" --texts "$OUT/texts.jsonl" --max-length "$max_length" 2>/dev/null |
  tail -n 1
