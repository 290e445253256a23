#!/usr/bin/env python3
"""The bench/ssrm table from the sweeps' JSON (bench/ssrm/run.sh): one row per backbone,
lambda_x and framework, without and with SSRM side by side (mean +- std over seeds)."""
import json
import pathlib
import re
import sys

out = pathlib.Path(sys.argv[1])
print("| backbone | lambda_x | framework | AP off | AP SSRM | AF off | AF SSRM | shift gap off | shift gap SSRM | SSRM term off | SSRM term SSRM | seeds |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
def key(p):
    m = re.match(r"(\w+)-shift([\d.]+)\.json", p.name)
    return (m.group(1), float(m.group(2)))
for path in sorted(out.glob("*-shift*.json"), key=key):
    backbone, shift = key(path)
    data = json.loads(path.read_text())
    seeds = len({r["seed"] for r in data["runs"]})
    rows = {}
    for row in data["table"]:
        rows.setdefault(row["framework"], {})["on" if row["ssrm_weight"] > 0 else "off"] = row
    for fw, r in rows.items():
        off, on = r["off"], r["on"]
        def ms(row, k):
            return f'{row[k + "_mean"]:.2f} ± {row[k + "_std"]:.2f}'
        print(f'| {backbone} | {shift:g} | {fw} | {ms(off, "ap")} | {ms(on, "ap")} | {ms(off, "af")} | {ms(on, "af")} | '
              f'{off["shift_gap_mean"]:.2f} | {on["shift_gap_mean"]:.2f} | {off["ssrm_term_mean"]:.4f} | {on["ssrm_term_mean"]:.4f} | {seeds} |')
