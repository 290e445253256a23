#!/usr/bin/env python3
"""Builds the fortunes category-classification set for lora-finetune.

Reads Debian's `fortunes` package (/usr/share/games/fortunes, `apt-get install fortunes`),
keeps the fortunes of a few category files, and writes seeded, stratified JSONL splits
{"text": ..., "label": "<category>"} to OUT/{train,valid,test}.jsonl. Standard library only.

  data/lora/make-fortunes.py [--src DIR] [--out data/lora/fortunes] [--seed 0]
                             [--categories computers,food,...] [--per-class 200]
                             [--valid-per-class N --test-per-class N] [--drop-shared]
                             [--k-shot 16,64,256 --k-seeds 1,2,3,4,5]

Low-resource regime (the notes' lora.md 6.3: a small training set, many epochs, where LoRA
overfits): --k-shot also writes OUT/train-k{K}-s{S}.jsonl, K examples per category drawn
with seed S from OUT/train.jsonl, for every K and S given. valid.jsonl and test.jsonl are
the same whatever K and S (they depend on --seed, the categories and the split sizes only),
and for one S the sets are nested (the 16 of each category are among its 64, those among
its 256). The recipe (8 categories with at least 456 fortunes each, so 256 per class fit
beside 50 validation and 150 test fortunes per class):

  data/lora/make-fortunes.py --out data/lora/fortunes-low --per-class 0 --drop-shared \\
      --categories computers,definitions,men-women,people,politics,science,songs-poems,work \\
      --valid-per-class 50 --test-per-class 150 --k-shot 16,64,256 --k-seeds 1,2,3,4,5
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
    ap.add_argument("--valid-per-class", type=int, default=0, help="validation fortunes per category (0: --valid fraction)")
    ap.add_argument("--test-per-class", type=int, default=0, help="test fortunes per category (0: --test fraction)")
    ap.add_argument("--drop-shared", action="store_true",
                    help="leave out fortunes found in more than one of the categories (one text, two labels, "
                         "and a test text that is also a training one)")
    ap.add_argument("--k-shot", default="", help="comma-separated K: also write train-k{K}-s{S}.jsonl")
    ap.add_argument("--k-seeds", default="1,2,3,4,5", help="comma-separated seeds S of the K-shot draws")
    a = ap.parse_args()
    k_shots = [int(k) for k in a.k_shot.split(",") if k.strip()]
    k_seeds = [int(x) for x in a.k_seeds.split(",") if x.strip()]
    if any(k <= 0 for k in k_shots) or (k_shots and not k_seeds):
        sys.exit("make-fortunes: --k-shot needs positive counts and at least one --k-seeds seed")

    rng = random.Random(a.seed)
    splits = {"train": [], "valid": [], "test": []}
    texts = {}
    for cat in a.categories.split(","):
        path = os.path.join(a.src, cat)
        if not os.path.exists(path):
            sys.exit(f"make-fortunes: {path} not found (apt-get install fortunes)")
        texts[cat] = set(read_fortunes(path))
    categories_of = {}
    for ts in texts.values():
        for t in ts:
            categories_of[t] = categories_of.get(t, 0) + 1
    for cat in a.categories.split(","):
        items = sorted(t for t in texts[cat] if not (a.drop_shared and categories_of[t] > 1))
        rng.shuffle(items)
        if a.per_class > 0:
            items = items[: a.per_class]
        n_valid = a.valid_per_class or round(len(items) * a.valid)
        n_test = a.test_per_class or round(len(items) * a.test)
        if n_valid + n_test + max(k_shots, default=0) > len(items):
            sys.exit(f"make-fortunes: category {cat} has {len(items)} fortunes, fewer than {n_valid} validation + "
                     f"{n_test} test + {max(k_shots, default=0)} training ones")
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
    # K-shot training sets from the training split: per category a permutation seeded by
    # (S, category), its first K; so one S gives nested sets across K
    for s in k_seeds if k_shots else []:
        perm = {}
        for cat in a.categories.split(","):
            pool = [r for r in splits["train"] if r[1] == cat]
            random.Random(f"k-shot {s} {cat}").shuffle(pool)
            perm[cat] = pool
        for k in k_shots:
            rows = [r for cat in a.categories.split(",") for r in perm[cat][:k]]
            random.Random(f"k-shot order {s} {k}").shuffle(rows)
            path = os.path.join(a.out, f"train-k{k}-s{s}.jsonl")
            with open(path, "w", encoding="utf-8") as f:
                for t, c in rows:
                    f.write(json.dumps({"text": t, "label": c}, ensure_ascii=False) + "\n")
            print(f"train k={k} seed={s}: {len(rows)} examples -> {path}")


if __name__ == "__main__":
    main()
