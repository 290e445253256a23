#!/usr/bin/env python3
"""Markdown table of bench/lora/quality.sh's runs (OUT/<preset>-r<r>-s<seed>/summary.json):
mean ± std over seeds of best and final validation accuracy, final train accuracy and the
train-validation gap, and the seconds per run."""
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]
runs = {}
for f in glob.glob(os.path.join(out, "*", "summary.json")):
    m = re.match(r"(.+)-r(\d+)-s(\d+)$", os.path.basename(os.path.dirname(f)))
    d = json.load(open(f))
    runs.setdefault((m.group(1), int(m.group(2))), []).append(d)
order = ["none", "lora-dropout", "dropkey", "dropattention", "hiddencut", "hiddenkey-minus", "hiddenkey"]


def ms(xs):
    if len(xs) == 1:
        return f"{xs[0]:.3f}"
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}"


print("| preset | r | seeds | best val acc | final val acc | final train acc | gap (train − final val) | s/run |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for (p, r) in sorted(runs, key=lambda k: (k[1], order.index(k[0]) if k[0] in order else 99)):
    ds = runs[(p, r)]
    best = [d["best_accuracy"] for d in ds]
    fin = [d["final_accuracy"] for d in ds]
    tr = [d["final_train_accuracy"] for d in ds]
    gap = [t - v for t, v in zip(tr, fin)]
    print(f"| {p} | {r} | {len(ds)} | {ms(best)} | {ms(fin)} | {ms(tr)} | {ms(gap)} | "
          f"{statistics.mean(d['seconds'] for d in ds):.0f} |")
