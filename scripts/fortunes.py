"""Debian's fortunes (/usr/share/games/fortunes, `apt-get install fortunes`) as the fixture
scripts read them: every fortune of the category files (names without a dot), in file
order, each mapped by the caller's `clean` (None drops it), then unique, sorted, and
shuffled with `seed`. Standard library only."""
import os
import random

SRC = "/usr/share/games/fortunes"

# The fixed sentences of the classifier golden fixtures (scripts/lora-fixtures.py,
# scripts/roberta-fixtures.py): the inputs whose logits the committed fixtures hold.
GOLDEN_TEXTS = [
    "The computer is down again; please reboot it before lunch.",
    "Love means never having to say you're sorry.",
    "A lawyer with a briefcase can steal more than a thousand men with guns.",
    "Eat, drink and be merry, for tomorrow we diet.",
    "Short.",
    "Baseball is ninety percent mental; the other half is physical.",
]


def fortunes(clean, seed, src=SRC):
    texts = set()
    for cat in sorted(os.listdir(src)):
        p = os.path.join(src, cat)
        if "." in cat or not os.path.isfile(p):
            continue
        with open(p, encoding="utf-8", errors="replace") as f:
            for chunk in f.read().split("\n%\n"):
                t = clean(chunk)
                if t is not None:
                    texts.add(t)
    texts = sorted(texts)
    random.Random(seed).shuffle(texts)
    return texts
