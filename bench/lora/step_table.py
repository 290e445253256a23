#!/usr/bin/env python3
"""Markdown table of bench/lora/step.sh's results.jsonl: per thread count and preset,
lora-finetune against each PyTorch + PEFT variant (ratio = lora-finetune tokens/s over
PEFT tokens/s, > 1 means lora-finetune is faster; memory ratio = lora-finetune max RSS over
PEFT max RSS, < 1 means it uses less)."""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| threads | preset | implementation | median step (s) | tokens/s | max RSS (MiB) | speed ratio (lora-finetune / this) | RSS ratio (lora-finetune / this) |")
print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |")
for t in sorted({r["threads"] for r in rows}):
    for preset in ("none", "hiddenkey"):
        cpp = [r for r in rows if r["threads"] == t and r["label"] == f"cpp-{preset}"]
        for r in [r for r in rows if r["threads"] == t and r["preset"] == preset]:
            name = "lora-finetune bench" if r["label"].startswith("cpp") else f"PyTorch eager + PEFT ({r.get('attn', '')} attention)"
            ratio = rss = "–"
            if cpp and not r["label"].startswith("cpp"):
                ratio = f"{cpp[0]['tokens_per_s'] / r['tokens_per_s']:.2f}"
                rss = f"{cpp[0]['time_maxrss_mib'] / r['time_maxrss_mib']:.2f}"
            print(f"| {t} | {preset} | {name} | {r['median_step_s']:.3f} | {r['tokens_per_s']:.0f} | "
                  f"{r['time_maxrss_mib']:.0f} | {ratio} | {rss} |")
