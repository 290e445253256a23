#!/usr/bin/env python3
"""Builds the fortunes category-classification set for lora-finetune.

Reads Debian's `fortunes` package (/usr/share/games/fortunes, `apt-get install fortunes`),
keeps the fortunes of a few category files, and writes seeded, stratified JSONL splits
{"text": ..., "label": "<category>"} to OUT/{train,valid,test}.jsonl. Standard library only.

  data/lora/make-fortunes.py [--src DIR] [--out data/lora/fortunes] [--seed 0]
                             [--categories computers,food,...] [--per-class 200]
"""
import argparse
import json
import os
import random
import sys

DEFAULT_CATEGORIES = "computers,food,law,love,sports,education,science,politics"


def read_fortunes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    out = []
    for chunk in text.split("\n%\n"):
        chunk = chunk.strip("%\n ")
        # one line of text: the classifier sees words, not the layout
        line = " ".join(chunk.split())
        if 10 <= len(line) <= 600:
            out.append(line)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="/usr/share/games/fortunes")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "fortunes"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--categories", default=DEFAULT_CATEGORIES)
    ap.add_argument("--per-class", type=int, default=200, help="cap per category (0 = all)")
    ap.add_argument("--valid", type=float, default=0.15)
    ap.add_argument("--test", type=float, default=0.15)
    a = ap.parse_args()

    rng = random.Random(a.seed)
    splits = {"train": [], "valid": [], "test": []}
    for cat in a.categories.split(","):
        path = os.path.join(a.src, cat)
        if not os.path.exists(path):
            sys.exit(f"make-fortunes: {path} not found (apt-get install fortunes)")
        items = sorted(set(read_fortunes(path)))
        rng.shuffle(items)
        if a.per_class > 0:
            items = items[: a.per_class]
        n_valid = round(len(items) * a.valid)
        n_test = round(len(items) * a.test)
        splits["valid"] += [(t, cat) for t in items[:n_valid]]
        splits["test"] += [(t, cat) for t in items[n_valid:n_valid + n_test]]
        splits["train"] += [(t, cat) for t in items[n_valid + n_test:]]
    os.makedirs(a.out, exist_ok=True)
    for name, rows in splits.items():
        rng.shuffle(rows)
        with open(os.path.join(a.out, name + ".jsonl"), "w", encoding="utf-8") as f:
            for t, c in rows:
                f.write(json.dumps({"text": t, "label": c}, ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} examples -> {os.path.join(a.out, name + '.jsonl')}")


if __name__ == "__main__":
    main()
