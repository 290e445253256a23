#!/usr/bin/env python3
"""Markdown table of bench/prolora/quality.sh's runs (OUT/<regime>/<adapter>-s<seed>/summary.json):
per regime and adapter, the trainable adapter parameters (LoRA: r(d_in+d_out) summed over
the modules; PRoLoRA: the count prolora-finetune reports), mean ± sample std over seeds of
the best and final validation accuracy and the final train accuracy, the mean difference
to LoRA r=8 within each seed (paired) and the seconds per run."""
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]
runs = {}
for f in glob.glob(os.path.join(out, "*", "*", "summary.json")):
    regime = os.path.basename(os.path.dirname(os.path.dirname(f)))
    m = re.match(r"(.+)-s(\d+)$", os.path.basename(os.path.dirname(f)))
    runs.setdefault((regime, m.group(1)), {})[int(m.group(2))] = json.load(open(f))
order = ["lora-r8", "prolora-r8-u1-m2", "rolora-r16-m2", "rolora-r8-m2", "clora-r8-m2"]
LORA_R8_QV = 8 * (384 + 384) * 12  # LoRA r=8 on query,value of all-MiniLM-L6-v2


def ms(xs):
    if len(xs) == 1:
        return f"{xs[0]:.3f}"
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}"


def params(d, label):
    r = d.get("adapter_report", d.get("adapter"))  # (builds before 2026-12-08 02:30 wrote it as "adapter")
    if isinstance(r, dict):
        return r["parameters"]
    return LORA_R8_QV if label == "lora-r8" else None


print("| regime | adapter | adapter params | vs LoRA r=8 | seeds | best val acc | final val acc | final train acc "
      "| best − LoRA (paired) | s/run |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for (g, a) in sorted(runs, key=lambda k: (k[0], order.index(k[1]) if k[1] in order else 99)):
    ds = runs[(g, a)]
    seeds = sorted(ds)
    best = [ds[s]["best_accuracy"] for s in seeds]
    fin = [ds[s]["final_accuracy"] for s in seeds]
    tr = [ds[s]["final_train_accuracy"] for s in seeds]
    base = runs.get((g, "lora-r8"), {})
    paired = [ds[s]["best_accuracy"] - base[s]["best_accuracy"] for s in seeds if s in base]
    p = params(ds[seeds[0]], a)
    print(f"| {g} | {a} | {p:,} | {p / LORA_R8_QV:.3f} | {len(seeds)} | {ms(best)} | {ms(fin)} | {ms(tr)} | "
          f"{ms(paired) if a != 'lora-r8' and paired else '–'} | "
          f"{statistics.mean(ds[s]['seconds'] for s in seeds):.0f} |")
