#!/usr/bin/env bash
# gnnflow-stream on the notes' 20M-edge preset M (1M nodes, seed 1), pinned to one core:
#  1. bench: block store vs T-CSR rebuilt per increment, BENCH_REPEATS (3) alternating repeats;
#  2. ingest with store.huge_pages false / true, alternating, RUNS (2) each;
#  3. sample (recent and uniform k = 10, endpoints of the last 500k events) with
#     sample.prefetch true / false, alternating, RUNS each.
# About 8 minutes and 4 GB of memory. Writes bench/gnnflow/results-M.json and prints
# Markdown tables. Not part of `make bench` (too long). Usage: bench/gnnflow/run-M.sh [BUILD_DIR]
set -euo pipefail
repeats="${BENCH_REPEATS:-3}"
runs="${RUNS:-2}"
script=run-M.sh
# shellcheck source=bench/gnnflow/common.sh
source "$(cd "$(dirname "$0")" && pwd)/common.sh"

g generate --set generate.preset=M --out "$tmp/M" > /dev/null
data="$tmp/M/stream.bin"
g bench --set data.path="$data" --set bench.repeats="$repeats" --json --out "$tmp/bench" > "$tmp/bench.json"
: > "$tmp/ingest.jsonl"
: > "$tmp/sample.jsonl"
for ((r = 0; r < runs; r++)); do
  for hp in false true; do
    g ingest --set data.path="$data" --set store.huge_pages="$hp" --json --out "$tmp/ing" |
      python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({'huge_pages': '$hp', 'eps': d['events_per_second'], 'seconds': d['seconds']}))" >> "$tmp/ingest.jsonl"
  done
  for pf in true false; do
    g sample --set data.path="$data" --set sample.max_events=500000 --set sample.prefetch="$pf" --json --out "$tmp/sample" |
      python3 -c "import json,sys; d=json.load(sys.stdin); r={x['strategy']: x['roots_per_second'] for x in d['results']}; r['prefetch']='$pf'; print(json.dumps(r))" >> "$tmp/sample.jsonl"
  done
done

python3 - "$tmp" "$here/results-M.json" <<'PY'
import json, statistics, sys
tmp, out = sys.argv[1], sys.argv[2]
bench = json.load(open(f"{tmp}/bench.json"))
ingest = [json.loads(l) for l in open(f"{tmp}/ingest.jsonl")]
sample = [json.loads(l) for l in open(f"{tmp}/sample.jsonl")]
json.dump({"bench": bench, "ingest": ingest, "sample": sample}, open(out, "w"), indent=1)
def s3(d, scale=1e6, p=2):
    return f"{d['median'] / scale:.{p}f} [{d['min'] / scale:.{p}f}, {d['max'] / scale:.{p}f}]"
st, tc = bench["store"], bench["tcsr_rebuild"]
print(f"### M: store vs T-CSR rebuilt per increment ({bench['events']} events, {bench['repeats']} alternating repeats, "
      f"identical samples: {bench['identical_samples']})\n")
print("| | update M events/s | recent M roots/s | uniform M roots/s | update seconds per repeat |")
print("|---|---|---|---|---|")
print(f"| block store | {s3(st['update_events_per_second'])} | {s3(st['recent_roots_per_second'])} | {s3(st['uniform_roots_per_second'])} | {', '.join(f'{x:.2f}' for x in st['update_seconds'])} |")
print(f"| T-CSR rebuilt per increment | {s3(tc['update_events_per_second'])} | {s3(tc['recent_roots_per_second'])} | {s3(tc['uniform_roots_per_second'])} | {', '.join(f'{x:.2f}' for x in tc['update_seconds'])} |")
sp = bench["update_speedup"]
m = st["memory"]
print(f"\nupdate speedup {sp['median']:.1f} [{sp['min']:.1f}, {sp['max']:.1f}]; store {(m['edge_bytes'] + m['metadata_bytes']) / 2**20:.0f} MiB "
      f"(capacity use {100 * m['capacity_use']:.1f} %), T-CSR {tc['bytes'] / 2**20:.0f} MiB\n")
print("### M: whole-stream ingest by store.huge_pages (M events/s, seconds)\n")
print("| huge_pages | runs |")
print("|---|---|")
for hp in ("false", "true"):
    xs = [r for r in ingest if r["huge_pages"] == hp]
    print(f"| {hp} | " + ", ".join(f"{r['eps'] / 1e6:.2f} ({r['seconds']:.1f} s)" for r in xs) + " |")
print("\n### M: sampling by sample.prefetch (M roots/s per run)\n")
print("| prefetch | recent | uniform |")
print("|---|---|---|")
for pf in ("true", "false"):
    xs = [r for r in sample if r["prefetch"] == pf]
    print(f"| {pf} | " + ", ".join(f"{r['recent'] / 1e6:.2f}" for r in xs) + " | " + ", ".join(f"{r['uniform'] / 1e6:.2f}" for r in xs) + " |")
PY
