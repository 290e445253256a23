#!/usr/bin/env python3
"""SentencePiece fixtures for nn::SentencePieceTokenizer's tests (tests/nn/test_spm.cpp),
computed once with pip's sentencepiece + transformers (never needed by the tests or CI,
which read the committed files).

  scripts/spm-fixtures.py train [--out tests/nn/fixtures/spm]
      a 512-piece BPE SentencePiece model like llama2c's tok512 and Meta's Llama tokenizer
      (byte_fallback, split_digits, whitespace-only pieces, identity normalizer, dummy prefix,
      no whitespace collapsing; unk=0 bos=1 eos=2, no pad), trained single-threaded on the
      Debian fortunes (/usr/share/games/fortunes) minus the held-out ones -> tokenizer.model
  scripts/spm-fixtures.py ids [--out tests/nn/fixtures/spm]
      >= 200 sentences (held-out fortunes, GSM8K test questions, edge cases) and the ids of
      Hugging Face's LlamaTokenizerFast on that model -> ids.jsonl; also the ids of the slow
      (sentencepiece-backed) LlamaTokenizer with legacy=False and legacy=True when
      transformers < 5 provides it (--slow-python), and of sentencepiece itself
  scripts/spm-fixtures.py all    train, check that a second training gives the same bytes, ids

The committed fixture was made with sentencepiece 0.2.3, transformers 5.24.0 (tokenizers
0.23.3) and, for the slow tokenizer, transformers 4.57.6:

  python3 -m venv V && V/bin/pip install sentencepiece protobuf transformers tokenizers
  python3 -m venv V4 && V4/bin/pip install "transformers<5" sentencepiece protobuf
  V/bin/python scripts/spm-fixtures.py all --slow-python V4/bin/python

(transformers 5 has no slow LlamaTokenizer: LlamaTokenizerFast is LlamaTokenizer, backed by
tokenizers; without --slow-python the slow columns are left out.) The C++ tokenizer, built on
Debian's libsentencepiece 0.1.97, must give the "ids" column: LlamaTokenizerFast's.
"""
import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile

from fortunes import fortunes  # scripts/fortunes.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "nn", "fixtures", "spm")
FORTUNES = "/usr/share/games/fortunes"
GSM8K = "/work/shared/data/gsm8k/test.jsonl"
SEED = 7
HELD_OUT = 150  # whole fortunes kept out of training, for the ids fixture


def read_fortunes(src=FORTUNES):
    """Every fortune of the category files (as data/lora/make-fortunes.py reads them), layout kept,
    unique and sorted, then shuffled with SEED: the first HELD_OUT are held out."""
    texts = fortunes(lambda chunk: chunk.strip("%\n ") or None, SEED, src)
    return texts[:HELD_OUT], texts[HELD_OUT:]


# Meta's Llama 2 tokenizer.model trainer/normalizer settings (read from its proto), at llama2c's
# tok512 size and character coverage. remove_extra_whitespaces=False as Llama (llama2c leaves the
# default True, which Hugging Face's converted fast tokenizer does not reproduce).
TRAIN_ARGS = dict(
    model_type="bpe",
    vocab_size=512,
    character_coverage=1.0,
    byte_fallback=True,
    split_digits=True,
    allow_whitespace_only_pieces=True,
    normalization_rule_name="identity",
    remove_extra_whitespaces=False,
    add_dummy_prefix=True,
    unk_surface=" \u2047 ",
    unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
    max_sentence_length=4192,
    input_sentence_size=0,
    shuffle_input_sentence=False,
    num_threads=1,
    self_test_sample_size=0,
    minloglevel=2,
)


def train(model_path):
    import sentencepiece as spm
    _, train_texts = read_fortunes()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        # relative names: the trainer spec stored in the model records input and model_prefix
        os.chdir(d)
        with open("fortunes.txt", "w", encoding="utf-8") as f:
            for t in train_texts:  # one sentence a line, as sentencepiece reads text files
                for line in t.split("\n"):
                    if line.strip():
                        f.write(line + "\n")
        try:
            spm.SentencePieceTrainer.train(input="fortunes.txt", model_prefix="tokenizer", **TRAIN_ARGS)
            with open("tokenizer.model", "rb") as f:
                data = f.read()
        finally:
            os.chdir(cwd)
    with open(model_path, "wb") as f:
        f.write(data)
    return data


def cmd_train(a):
    os.makedirs(a.out, exist_ok=True)
    data = train(os.path.join(a.out, "tokenizer.model"))
    print(f"tokenizer.model: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


def cmd_all(a):
    cmd_train(a)
    with tempfile.TemporaryDirectory() as d:
        again = train(os.path.join(d, "tokenizer.model"))
    with open(os.path.join(a.out, "tokenizer.model"), "rb") as f:
        first = f.read()
    if first != again:
        sys.exit("spm-fixtures: two trainings gave different tokenizer.model bytes")
    print("a second training gave the same bytes")
    cmd_ids(a)


EDGE = [
    "", " ", "  ", "   ", "Hello", " Hello", "  Hello", "Hello ", "Hello  ", "Hello   world",
    " leading and trailing ", "multiple    spaces   inside  ", "\n", "\n\n", "line one\nline two\n",
    "\tindented with a tab", "tab\tinside\tand trailing\t", "a\r\nb", "  \t \n mixed whitespace \n\t  ",
    "12345", "3.14159", "1,000,000 and 2024-06-01", "x=42; y=-7.5e3", "007 agents 0 1 2",
    "café naïve résumé", "Ångström façade, déjà vu", "Straße, Œuvre, ÉCOLE, Ünïcödé", "Ελληνικά λέξεις",
    "中文测试：你好，世界！", "日本語のテキスト", "Emoji 😀 and 👍🏽 and 🇩🇪", "👨‍👩‍👧 family", "😀",
    "“quotes” ‘single’ — dash … ellipsis", "\u00a0non-breaking\u00a0space", "zero\u200bwidth", "bell \x07 and backspace \x08",
    "ﬁ ligature", "Ｆｕｌｌｗｉｄｔｈ", "e-mail@example.com, $12.50, C++ & C#.",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism", "ALL CAPS SHOUTING!!!",
    "\u2581already escaped", "a \u2581 b", "\u2581", " \u2581x",
    "<s>", "</s>", "<unk>", "Hello</s>world", "<s> Hello", "hi <unk> there", "text with <s> inside</s>",
    "<s><s>", "a</s>", "<s", "< s >", "<s>Hello world", "Hello<unk>world", "</s> x", "<</s>>",
]


def sentences():
    held_out, _ = read_fortunes()
    rows = [("fortune", t) for t in held_out]
    rows += [("fortune-line", " ".join(t.split())) for t in held_out[:50]]
    with open(GSM8K, encoding="utf-8") as f:
        qs = [json.loads(l)["question"] for l in f if l.strip()]
    rows += [("gsm8k", q) for q in random.Random(SEED).sample(qs, 50)]
    rows += [("edge", t) for t in EDGE]
    return rows


LLAMA_CONFIG = {  # what a Llama 2 Hugging Face folder says about its tokenizer
    "tokenizer_class": "LlamaTokenizer",
    "add_bos_token": True,
    "add_eos_token": False,
    "legacy": False,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "pad_token": None,
    "clean_up_tokenization_spaces": False,
    "model_max_length": 4096,
}


def cmd_slow(a):
    """Runs under transformers < 5: the slow (sentencepiece) LlamaTokenizer, legacy False and True,
    and that version's LlamaTokenizerFast; one JSON line per input text."""
    import transformers
    from transformers import LlamaTokenizer, LlamaTokenizerFast
    texts = json.load(open(a.texts, encoding="utf-8"))
    toks = {}
    for legacy in (False, True):
        sfx = "_legacy" if legacy else ""
        toks["slow" + sfx] = LlamaTokenizer.from_pretrained(a.model_dir, legacy=legacy)
        toks["fast4" + sfx] = LlamaTokenizerFast.from_pretrained(a.model_dir, legacy=legacy, from_slow=True)
    out = {"transformers": transformers.__version__, "rows": []}
    for t in texts:
        out["rows"].append({k: tok(t)["input_ids"] for k, tok in toks.items()})
    json.dump(out, sys.stdout, ensure_ascii=False)


def cmd_ids(a):
    import sentencepiece as spm
    import tokenizers
    import transformers
    from transformers import LlamaTokenizerFast

    model = os.path.join(a.out, "tokenizer.model")
    with open(os.path.join(a.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(LLAMA_CONFIG, f, indent=2)
        f.write("\n")
    fast = LlamaTokenizerFast.from_pretrained(a.out)  # the default: legacy=False, add_bos_token=True
    assert type(fast).__name__ in ("LlamaTokenizer", "LlamaTokenizerFast") and not fast.legacy
    fast_legacy = LlamaTokenizerFast.from_pretrained(a.out, legacy=True)
    fast_eos = LlamaTokenizerFast.from_pretrained(a.out, add_bos_token=False, add_eos_token=True)
    sp = spm.SentencePieceProcessor(model_file=model)
    rows = sentences()
    texts = [t for _, t in rows]

    slow = None
    if a.slow_python:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
            json.dump(texts, f, ensure_ascii=False)
        res = subprocess.run([a.slow_python, os.path.abspath(__file__), "slow", "--model-dir", a.out,
                              "--texts", f.name], check=True, capture_output=True, text=True)
        os.unlink(f.name)
        slow = json.loads(res.stdout)

    with open(model, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    meta = {
        "model": "tokenizer.model", "sha256": sha, "recipe": "scripts/spm-fixtures.py all --slow-python V4/bin/python",
        "ids": f"transformers {transformers.__version__} LlamaTokenizerFast (tokenizers {tokenizers.__version__}),"
               " legacy=False, add_bos_token=True, add_eos_token=False; decoded = decode(ids, skip_special_tokens=True)",
        "other": {
            "fast_legacy": "the same with legacy=True",
            "sentencepiece": f"sentencepiece {spm.__version__} encode() with BOS prepended",
        },
    }
    if slow:
        meta["other"].update({
            "slow": f"transformers {slow['transformers']} slow LlamaTokenizer, legacy=False",
            "slow_legacy": f"transformers {slow['transformers']} slow LlamaTokenizer, legacy=True",
            "fast4": f"transformers {slow['transformers']} LlamaTokenizerFast (from_slow), legacy=False",
            "fast4_legacy": f"transformers {slow['transformers']} LlamaTokenizerFast (from_slow), legacy=True",
        })
    differ = {k: 0 for k in meta["other"]}
    out_rows = []
    for i, (kind, t) in enumerate(rows):
        ids = fast(t)["input_ids"]
        assert ids[0] == fast.bos_token_id
        assert fast_eos(t)["input_ids"] == ids[1:] + [fast.eos_token_id], t  # the add_eos_token option
        row = {"kind": kind, "text": t, "ids": ids, "decoded": fast.decode(ids, skip_special_tokens=True)}
        other = {"fast_legacy": fast_legacy(t)["input_ids"], "sentencepiece": [sp.bos_id()] + sp.encode(t)}
        if slow:
            other.update(slow["rows"][i])
        other = {k: v for k, v in other.items() if v != ids}
        for k in other:
            differ[k] += 1
        if other:
            row["other"] = other  # only the tokenizers whose ids differ from "ids"
        out_rows.append(row)
    meta["rows_differing"] = differ
    with open(os.path.join(a.out, "ids.jsonl"), "w", encoding="utf-8") as f:
        f.write(json.dumps({"meta": meta}, ensure_ascii=False) + "\n")
        for r in out_rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    roundtrip = sum(r["decoded"] == r["text"] for r in out_rows)
    print(f"{len(out_rows)} sentences -> {os.path.join(a.out, 'ids.jsonl')}; decode gives the text back "
          f"for {roundtrip}; rows whose ids differ from LlamaTokenizerFast's: {differ}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("train", "ids", "all"):
        p = sub.add_parser(name)
        p.add_argument("--out", default=FIX)
        p.add_argument("--slow-python", default="", help="a python with transformers<5 for the slow tokenizer")
    p = sub.add_parser("slow", help="(internal) run by ids under --slow-python")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--texts", required=True)
    a = ap.parse_args()
    {"train": cmd_train, "ids": cmd_ids, "all": cmd_all, "slow": cmd_slow}[a.cmd](a)


if __name__ == "__main__":
    main()
