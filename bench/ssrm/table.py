#!/usr/bin/env python3
"""The bench/ssrm tables from the sweeps' JSON (bench/ssrm/run.sh).

Table 1: one row per backbone, lambda_x and framework, without SSRM and with SSRM at
weight 1 side by side (mean +- sample std over seeds). Table 2: AP and AF at every SSRM
weight swept, the best weight by mean AP ("none" when no weight beats no SSRM), and its
AP change over no SSRM with the paired spread (the same seeds and graph with and without SSRM). Files with a prefix
(e.g. mb-gcn-shift3.json, the mini-batch runs) get their own tables under a heading."""
import json
import pathlib
import re
import statistics
import sys

out = pathlib.Path(sys.argv[1])


def key(p):
    m = re.match(r"(.*?)(gcn|sage|gat)-shift([\d.]+)\.json", p.name)
    return (m.group(1), m.group(2), float(m.group(3)))


def ms(row, k):
    return f'{row[k + "_mean"]:.2f} ± {row[k + "_std"]:.2f}'


def paired(runs, fw, w):
    """Mean and sample std over seeds of AP(weight w) - AP(weight 0)."""
    by = {}
    for r in runs:
        if r["framework"] == fw:
            by.setdefault(r["seed"], {})[r["ssrm_weight"]] = r["ap"]
    d = [v[w] - v[0.0] for v in by.values() if w in v and 0.0 in v]
    if not d:
        return float("nan"), float("nan")
    return statistics.mean(d), (statistics.stdev(d) if len(d) > 1 else 0.0)


groups = {}
for path in sorted(out.glob("*-shift*.json"), key=key):
    groups.setdefault(key(path)[0], []).append(path)

for prefix, paths in groups.items():
    if prefix:
        print(f"\n### Runs `{prefix}*`\n")
    print("| backbone | lambda_x | framework | AP off | AP SSRM | AF off | AF SSRM | shift gap off | shift gap SSRM | SSRM term off | SSRM term SSRM | seeds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    sweeps = []
    for path in paths:
        _, backbone, shift = key(path)
        data = json.loads(path.read_text())
        seeds = len({r["seed"] for r in data["runs"]})
        rows = {}
        for row in data["table"]:
            rows.setdefault(row["framework"], {})[row["ssrm_weight"]] = row
        sweeps.append((backbone, shift, data, rows))
        for fw, r in rows.items():
            off = r[0.0]
            on = r.get(1.0) or r[max(r)]
            print(f'| {backbone} | {shift:g} | {fw} | {ms(off, "ap")} | {ms(on, "ap")} | {ms(off, "af")} | {ms(on, "af")} | '
                  f'{off["shift_gap_mean"]:.2f} | {on["shift_gap_mean"]:.2f} | {off["ssrm_term_mean"]:.4f} | {on["ssrm_term_mean"]:.4f} | {seeds} |')
    weights = sorted({w for _, _, _, rows in sweeps for r in rows.values() for w in r})
    if len(weights) <= 2:
        continue
    print()
    head = " | ".join(f"AP β={w:g}" for w in weights)
    print(f"| backbone | lambda_x | framework | {head} | best β | AP(best) − AP(off), paired |")
    print("|---|---|---|" + "---|" * len(weights) + "---|---|")
    for backbone, shift, data, rows in sweeps:
        for fw, r in rows.items():
            cells = " | ".join(ms(r[w], "ap") if w in r else "" for w in weights)
            best = max((w for w in r if w > 0), key=lambda w: r[w]["ap_mean"])
            d, s = paired(data["runs"], fw, best)
            label = f"{best:g}" if r[best]["ap_mean"] > r[0.0]["ap_mean"] else f"none ({best:g} ties or loses)"
            print(f"| {backbone} | {shift:g} | {fw} | {cells} | {label} | {d:+.2f} ± {s:.2f} |")
