#!/usr/bin/env python3
"""Golden fixtures for lora-finetune's tests, computed once with Python torch +
transformers + peft (never needed by the tests or CI, which read the committed files).

  scripts/lora-fixtures.py tokenizer [--model DIR] [--out tests/lora/fixtures/tokenizer.json]
      >= 200 real sentences (Debian fortunes + a few accented/CJK ones) and the ids of
      Hugging Face's BertTokenizerFast on them
  scripts/lora-fixtures.py golden [--model DIR] [--out tests/lora/fixtures/golden]
      a seeded PEFT LoRA adapter (rsLoRA, random B) on all-MiniLM-L6-v2 for sequence
      classification: adapter_config.json + adapter_model.safetensors, and inputs.safetensors
      holding input_ids, attention_mask and the fp32 logits
  scripts/lora-fixtures.py check-export ADAPTER_DIR [--model DIR] [--texts FILE.jsonl]
      loads an adapter exported by `lora-finetune export` in PEFT and prints its logits
      (and compares with ADAPTER_DIR/../predictions.jsonl logits when present)

Setup (CPU only): pip install --no-deps torch==2.11.0; pip install filelock typing-extensions
sympy networkx jinja2 fsspec mpmath MarkupSafe numpy transformers peft safetensors tokenizers
"""
import argparse
import json
import os
import sys

from fortunes import GOLDEN_TEXTS, fortunes  # scripts/fortunes.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, ".deps", "models", "all-MiniLM-L6-v2")
FIX = os.path.join(ROOT, "tests", "lora", "fixtures")


def fortunes_sentences(n, seed=1):
    def clean(chunk):
        t = " ".join(chunk.strip("%\n ").split())
        return t if 5 <= len(t) <= 300 else None
    return fortunes(clean, seed)[:n]


EXTRA = [
    "Café naïve résumé — déjà vu at the Ångström façade.",
    "Straße, Œuvre, ÉCOLE, Ünïcödé and Ελληνικά ΛΈΞΕΙΣ.",
    "中文测试：你好，世界！Mixed with English words.",
    "Tabs\tand\nnewlines\r\nand  double  spaces…",
    "Emoji 😀 and symbols © ® ™ ° ± × ÷ ½ and “quotes” ‘single’.",
    "Hyphen-ated words, e-mail@example.com, $12.50, 3.14159, C++ & C#.",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopic.",
    "Ｆｕｌｌｗｉｄｔｈ ｌｅｔｔｅｒｓ and ﬁ ligatures.",
]


def cmd_tokenizer(a):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(a.model)
    sents = fortunes_sentences(240) + EXTRA
    rows = []
    for s in sents:
        ids = tok(s, add_special_tokens=True, truncation=True, max_length=128)["input_ids"]
        rows.append({"text": s, "ids": ids})
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump({"tokenizer": type(tok).__name__, "max_length": 128, "rows": rows}, f, ensure_ascii=False)
    print(f"{len(rows)} sentences -> {a.out}")


def cmd_golden(a):
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(1234)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=3)
    cfg = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, use_rslora=True, lora_dropout=0.1,
                     target_modules=["query", "value", "output.dense"], init_lora_weights=False)
    pm = get_peft_model(model, cfg)
    with torch.no_grad():  # a trained-looking head and B (PEFT's False init draws B too)
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.05)
            elif "classifier" in n and n.endswith("weight"):
                p.normal_(0.0, 1.0)  # logits of order 1, so 1e-4 is a real tolerance
    pm.eval()
    enc = tok(GOLDEN_TEXTS, padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        logits = pm(**enc).logits.float()
    os.makedirs(a.out, exist_ok=True)
    pm.save_pretrained(a.out)
    save_file({"input_ids": enc["input_ids"].to(torch.int64).contiguous(),
               "attention_mask": enc["attention_mask"].to(torch.int64).contiguous(),
               "logits": logits.contiguous()}, os.path.join(a.out, "inputs.safetensors"))
    # the base model's logits with the adapter disabled (same head) for the B=0 style check
    with torch.no_grad(), pm.disable_adapter():
        base = pm(**enc).logits.float()
    print("logits", logits)
    print("adapter disabled", base)
    os.remove(os.path.join(a.out, "README.md"))  # PEFT's model-card template; not needed
    cfg_path = os.path.join(a.out, "adapter_config.json")
    cfg = json.load(open(cfg_path))
    cfg["base_model_name_or_path"] = "all-MiniLM-L6-v2"  # no absolute paths in a committed fixture
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)
    print("files", sorted(os.listdir(a.out)))


def cmd_check_export(a):
    """Loads the PEFT folder a.adapter on the base model a.model (any sequence classifier
    transformers knows: BERT, RoBERTa, ...), prints its logits on a few texts and, when
    --texts is given and predictions.jsonl lies beside the adapter (lora-finetune predict on
    the same texts), compares the probabilities (exit 1 above 1e-4)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    cfg = json.load(open(os.path.join(a.adapter, "adapter_config.json")))
    labels_file = os.path.join(a.adapter, "mlsys_labels.json")  # ours, beside PEFT's files
    if os.path.exists(labels_file):
        labels = json.load(open(labels_file))["labels"] or None
    else:  # exported before mlsys_labels.json
        labels = cfg.get("mlsys_labels") or None
    n = len(labels) if labels else 2
    if not labels:  # an adapter made elsewhere: the label count from its saved classifier
        from safetensors import safe_open
        with safe_open(os.path.join(a.adapter, "adapter_model.safetensors"), "pt") as f:
            for k in f.keys():
                if k.endswith("classifier.weight") or k.endswith("classifier.out_proj.weight"):
                    n = f.get_slice(k).get_shape()[0]
    tok = AutoTokenizer.from_pretrained(a.model)
    # the head comes from the adapter (modules_to_save): a base head of another size is dropped
    base = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=n, ignore_mismatched_sizes=True)
    pm = PeftModel.from_pretrained(base, a.adapter)
    pm.eval()
    texts = GOLDEN_TEXTS
    if a.texts:
        texts = [json.loads(l)["text"] for l in open(a.texts) if l.strip()][:8]
    enc = tok(texts, padding=True, truncation=True, max_length=a.max_length, return_tensors="pt")
    with torch.no_grad():
        logits = pm(**enc).logits
    print(json.dumps({"texts": texts, "logits": logits.tolist()}))
    pred = os.path.join(os.path.dirname(os.path.abspath(a.adapter)), "predictions.jsonl")
    if a.texts and os.path.exists(pred):
        ours = torch.tensor([json.loads(l)["probs"] for l in open(pred) if l.strip()][: len(texts)])
        diff = (logits.softmax(-1) - ours).abs().max().item()
        print(f"max |probability difference| vs {pred}: {diff:.3g}")
        sys.exit(0 if diff < 1e-4 else 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tokenizer")
    t.add_argument("--model", default=MODEL)
    t.add_argument("--out", default=os.path.join(FIX, "tokenizer.json"))
    g = sub.add_parser("golden")
    g.add_argument("--model", default=MODEL)
    g.add_argument("--out", default=os.path.join(FIX, "golden"))
    c = sub.add_parser("check-export")
    c.add_argument("adapter")
    c.add_argument("--model", default=MODEL)
    c.add_argument("--texts", default="")
    c.add_argument("--max-length", type=int, default=64)
    a = ap.parse_args()
    {"tokenizer": cmd_tokenizer, "golden": cmd_golden,
     "check-export": cmd_check_export}[a.cmd](a)


if __name__ == "__main__":
    main()
