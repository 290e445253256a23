#!/usr/bin/env bash
# gnnflow-stream on the notes' 1M-edge preset S (10k nodes, seed 1), pinned to one core:
#  1. bench: the block store against a T-CSR rebuilt after each of 10 increments (update
#     events/s, recent and uniform roots/s), BENCH_REPEATS alternating repeats in one run;
#  2. ingest with and without MADV_HUGEPAGE on the pool, alternating runs;
#  3. ingest of the same preset with 0.1% late events under the insert and reject policies;
#  4. sample: recent and uniform k = 10 over the endpoints of all 1M events;
#  5. cache: edge-feature cache hit rates by policy, ratio and restoration.
# Writes bench/gnnflow/results.json and prints Markdown tables.
# Usage: bench/gnnflow/run.sh [BUILD_DIR]   (BENCH_REPEATS=5, RUNS=5 by default)
set -euo pipefail
repeats="${BENCH_REPEATS:-5}"
runs="${RUNS:-5}"
script=run.sh
# shellcheck source=bench/gnnflow/common.sh
source "$(cd "$(dirname "$0")" && pwd)/common.sh"

g generate --out "$tmp/S" > /dev/null
g generate --set generate.late_fraction=0.001 --out "$tmp/late" > /dev/null
data="$tmp/S/stream.bin"

g bench --set data.path="$data" --set bench.repeats="$repeats" --json --out "$tmp/bench" > "$tmp/bench.json"

: > "$tmp/ingest.jsonl"
for ((r = 0; r < runs; r++)); do
  order=(true false)
  ((r % 2 == 1)) && order=(false true)
  for hp in "${order[@]}"; do
    g ingest --set data.path="$data" --set store.huge_pages="$hp" --json --out "$tmp/ing" |
      python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({'huge_pages': $([[ $hp == true ]] && echo True || echo False), 'eps': d['events_per_second'], 'hp_chunks': d['memory']['pool']['huge_page_chunks']}))" >> "$tmp/ingest.jsonl"
  done
done

: > "$tmp/late.jsonl"
for ((r = 0; r < 3; r++)); do
  for pol in insert reject; do
    g ingest --set data.path="$tmp/late/stream.bin" --set ingest.batch_size=1000 --set store.late_policy="$pol" --json --out "$tmp/late-ing" |
      python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({'policy': '$pol', 'eps': d['events_per_second'], 'late_inserted': d['late_inserted'], 'late_rejected': d['late_rejected'], 'blocks_split': d['blocks_split'], 'entries': d['entries']}))" >> "$tmp/late.jsonl"
  done
done

: > "$tmp/sample.jsonl"
for ((r = 0; r < 3; r++)); do
  g sample --set data.path="$data" --set sample.max_events=0 --json --out "$tmp/sample" |
    python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps({x['strategy']: x['roots_per_second'] for x in d['results']}))" >> "$tmp/sample.jsonl"
done

g cache --set data.path="$data" --json --out "$tmp/cache" > "$tmp/cache.json"

python3 - "$tmp" "$here/results.json" <<'PY'
import json, statistics, sys, os
tmp, out = sys.argv[1], sys.argv[2]
bench = json.load(open(f"{tmp}/bench.json"))
ingest = [json.loads(l) for l in open(f"{tmp}/ingest.jsonl")]
late = [json.loads(l) for l in open(f"{tmp}/late.jsonl")]
sample = [json.loads(l) for l in open(f"{tmp}/sample.jsonl")]
cache = json.load(open(f"{tmp}/cache.json"))
json.dump({"bench": bench, "ingest": ingest, "late": late, "sample": sample, "cache": cache}, open(out, "w"), indent=1)

def spread(xs, scale=1e6, p=2):
    xs = sorted(xs)
    return f"{statistics.median(xs) / scale:.{p}f} [{xs[0] / scale:.{p}f}, {xs[-1] / scale:.{p}f}]"
def s3(d, scale=1e6, p=2):
    return f"{d['median'] / scale:.{p}f} [{d['min'] / scale:.{p}f}, {d['max'] / scale:.{p}f}]"

st, tc = bench["store"], bench["tcsr_rebuild"]
print(f"### Store vs T-CSR rebuilt per increment ({bench['events']} events, {bench['initial_events']} first, "
      f"{bench['increments']} increments, {bench['repeats']} alternating repeats, k = {bench['fanout']}, "
      f"{bench['roots_sampled']} roots per repeat; identical samples: {bench['identical_samples']})\n")
print("| | update M events/s | recent M roots/s | uniform M roots/s |")
print("|---|---|---|---|")
print(f"| block store | {s3(st['update_events_per_second'])} | {s3(st['recent_roots_per_second'])} | {s3(st['uniform_roots_per_second'])} |")
print(f"| T-CSR rebuilt per increment | {s3(tc['update_events_per_second'])} | {s3(tc['recent_roots_per_second'])} | {s3(tc['uniform_roots_per_second'])} |")
sp = bench["update_speedup"]
print(f"\nupdate speedup (rebuild time / insert time): {sp['median']:.1f} [{sp['min']:.1f}, {sp['max']:.1f}]; "
      f"store initial insert {s3(st['initial_events_per_second'])} M events/s; "
      f"store memory {(st['memory']['edge_bytes'] + st['memory']['metadata_bytes']) / 2**20:.1f} MiB "
      f"(capacity use {100 * st['memory']['capacity_use']:.1f} %), T-CSR {tc['bytes'] / 2**20:.1f} MiB\n")
print("### Ingest of the whole stream (10 batches of 100k events), M events/s, alternating runs\n")
print("| pool | runs | M events/s median [min, max] | mappings with MADV_HUGEPAGE accepted |")
print("|---|---|---|---|")
for hp in (True, False):
    xs = [r for r in ingest if r["huge_pages"] == hp]
    print(f"| {'MADV_HUGEPAGE' if hp else 'plain 4 KiB pages'} | {len(xs)} | {spread([r['eps'] for r in xs])} | {xs[0]['hp_chunks']} |")
print("\n### Late edges (0.1% of events moved back up to 1 h; 1000-event batches)\n")
print("| policy | runs | M events/s median [min, max] | late inserted | late rejected | blocks split | entries stored |")
print("|---|---|---|---|---|---|---|")
for pol in ("insert", "reject"):
    xs = [r for r in late if r["policy"] == pol]
    x = xs[0]
    print(f"| {pol} | {len(xs)} | {spread([r['eps'] for r in xs])} | {x['late_inserted']} | {x['late_rejected']} | {x['blocks_split']} | {x['entries']} |")
print("\n### Sampling all 2M event endpoints at their event times (k = 10, full store), M roots/s\n")
print("| sampler | runs | median [min, max] |")
print("|---|---|---|")
for k in ("recent", "uniform"):
    print(f"| {k} | {len(sample)} | {spread([r[k] for r in sample])} |")
print(f"\n### Edge-feature cache hit rates ({cache['lookups']} lookups over {cache['increments']} increments)\n")
ratios = sorted({r["ratio"] for r in cache["results"]})
print("| policy | restoration | " + " | ".join(f"{100 * r:g} %" for r in ratios) + " |")
print("|---|---|" + "---|" * len(ratios))
for pol in ("lru", "lfu", "fifo"):
    for rr in (False, True):
        xs = {r["ratio"]: r["hit_rate"] for r in cache["results"] if r["policy"] == pol and r["restoration"] == rr}
        if xs:
            print(f"| {pol} | {'yes' if rr else 'no'} | " + " | ".join(f"{100 * xs[r]:.1f}" for r in ratios) + " |")
PY
