#!/usr/bin/env python3
"""Builds a seeded copy task in token ids for causal-LM LoRA on llama2.c's stories260K.

stories260K ships without its tokenizer, so no real text can be turned into its ids; this
task needs none. Each example is BOS (id 1), n random ids from [3, vocab), then the same n
ids again as the completion: {"prompt_ids": [1, a, b, ...], "completion_ids": [a, b, ...]}.
The completion is fully determined by the prompt, so the best achievable loss is 0 and
the best next-token accuracy 1; uniform guessing scores ln(vocab − 3) ≈ 6.23 nats and
1/509. The base model, trained on stories, knows no such copying. Standard library only.

  data/lora/make-copy-task.py [--out data/lora/copy] [--seed 0] [--train 8192]
                              [--valid 128] [--test 128] [--length 6] [--vocab 512]
"""
import argparse
import json
import os
import random


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/lora/copy")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=8192)
    ap.add_argument("--valid", type=int, default=128)
    ap.add_argument("--test", type=int, default=128)
    ap.add_argument("--length", type=int, default=6)
    ap.add_argument("--vocab", type=int, default=512)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    for name, n in (("train", a.train), ("valid", a.valid), ("test", a.test)):
        path = os.path.join(a.out, name + ".jsonl")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for _ in range(n):
                ids = [rng.randrange(3, a.vocab) for _ in range(a.length)]
                f.write(json.dumps({"prompt_ids": [1] + ids, "completion_ids": ids}) + "\n")
        os.replace(tmp, path)
        print(f"wrote {path} ({n} examples)")


if __name__ == "__main__":
    main()
