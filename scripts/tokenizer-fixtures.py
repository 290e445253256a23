#!/usr/bin/env python3
"""Multi-script tokenizer fixtures: the ids of Hugging Face's fast tokenizers on text in many
scripts and on Unicode's edge cases, for every tokenizer lora-finetune supports, and the
per-code-point behaviour of BERT's normalizer. Computed once; the tests (tests/nn/test_unicode.cpp)
read the committed files and need no Python.

  scripts/tokenizer-fixtures.py ids [--out tests/nn/fixtures/unicode/ids.jsonl]
      the corpus below (CJK, kana with voiced/semi-voiced and half-width forms, Hangul,
      Arabic, Devanagari, Thai, ..., emoji and ZWJ sequences, combining marks, control,
      format and tag characters, full-width forms, U+3000, words longer than 100 characters,
      mixed case with accents) plus seeded random strings over every assigned code point, and
      for each text the ids of
        bert         BertTokenizerFast of all-MiniLM-L6-v2 (uncased: strip accents, lower case)
        bert_cased   the same with do_lower_case=False (no accent stripping either)
        roberta      RobertaTokenizerFast of tests/nn/fixtures/roberta (<s> ... </s>)
        gpt2         GPT2TokenizerFast of tests/nn/fixtures/bpe/gpt2 (GPT-2's real vocabulary)
        llama        LlamaTokenizerFast of tests/nn/fixtures/spm (the stories260K-style
                     512-piece SentencePiece model; BOS, no EOS)
      and the WordPiece pieces of "bert" (without [CLS]/[SEP]).
  scripts/tokenizer-fixtures.py codepoints [--out tests/nn/fixtures/unicode/bert_codepoints.jsonl]
      BertNormalizer + BertPreTokenizer (MiniLM's settings, and cased) on "a" + c + "b" for
      every code point c (surrogates excepted): the words, stored only where they are not
      the text itself; runs of code points with the same outcome kind are one row.
  scripts/tokenizer-fixtures.py hf-compat
      prints the rows of kUnicode8 in lib/nn/wordpiece.cpp: where the categories tokenizers
      uses (unicode_categories 0.1.1, Unicode 8.0) differ from utf8proc's for BERT's purposes
      (Cf, P*, Mn), found by probing tokenizers on every code point (needs libutf8proc.so.2).

Setup (no torch needed):
  python3 -m venv V && V/bin/pip install transformers tokenizers sentencepiece protobuf
  V/bin/python scripts/tokenizer-fixtures.py ids && V/bin/python scripts/tokenizer-fixtures.py codepoints
The committed fixtures were made with transformers 5.25.0 and tokenizers 0.23.3.
"""
import argparse
import json
import os
import random
import sys
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINILM = os.path.join(ROOT, ".deps", "models", "all-MiniLM-L6-v2")
NN = os.path.join(ROOT, "tests", "nn", "fixtures")
OUT = os.path.join(NN, "unicode")
SEED = 13

CORPUS = [
    # CJK ideographs and CJK punctuation
    "中文测试：你好，世界！", "我爱北京天安门。", "「引用」と【括弧】・中点、読点。", "〔〕〈〉《》『』〖〗〘〙〚〛",
    "繁體中文與简体中文混合", "𠀀𠀁 CJK Extension B 𪜀 and 𫝀 and 𫠠 and 𬺰", "豈 更 車 compatibility ideographs 丽 丸",
    "漢字かな交じり文です。", "〇一二三 〡〢〣 〆〻",
    # kana: voiced and semi-voiced, decomposed, half-width
    "ひらがな カタカナ がぎぐげご ぱぴぷぺぽ", "ガギグゲゴ パピプペポ ヴ", "か\u3099 は\u309a カ\u3099 ハ\u309a",
    "ｶﾀｶﾅ ｶﾞｷﾞｸﾞ ﾊﾟﾋﾟﾌﾟ ｰ ｡｢｣､･", "ゝゞヽヾ ー〜", "東京タワーへ行きましょう！", "ﾃﾞｰﾀﾍﾞｰｽ",
    # Hangul: syllables, jamo, compatibility jamo, half-width
    "한국어 텍스트입니다.", "안녕하세요, 세계!", "한 조합형 자모", "ㄱㄴㄷ ㅏㅑㅓ 호환 자모", "ﾡﾢﾣ 반각", "대한민국 서울특별시",
    # Arabic, Hebrew, Persian, Urdu
    "مرحبا بالعالم", "اَلْعَرَبِيَّةُ مع التشكيل", "١٢٣٤٥٦٧٨٩٠ ۱۲۳", "ﻻ ﷲ ﷺ presentation forms", "שָׁלוֹם עוֹלָם",
    "فارسی: سلام دنیا؟", "اردو، پاکستان۔", "\u061c\u200e\u200f bidi marks",
    # Indic, Southeast Asian
    "नमस्ते दुनिया", "हिन्दी में क़ ख़ ग़ ज़", "ক্ষ বাংলা ভাষা", "தமிழ் மொழி", "తెలుగు", "ಕನ್ನಡ", "മലയാളം", "ਪੰਜਾਬੀ", "ગુજરાતી", "ଓଡ଼ିଆ", "සිංහල",
    "สวัสดีชาวโลก", "ภาษาไทยไม่มีช่องว่าง", "ພາສາລາວ", "ភាសាខ្មែរ", "မြန်မာဘာသာ", "བོད་ཡིག", "ᠮᠣᠩᠭᠣᠯ",
    # other scripts
    "Привет, мир! Ёлка ЁЛКА", "Ελληνικά ΛΈΞΕΙΣ ΐΰ ς σ Σ", "Հայերեն", "ქართული", "አማርኛ", "ᏣᎳᎩ", "ᚠᚢᚦ ᛟ", "ⴰⵎⴰⵣⵉⵖ",
    # emoji, ZWJ sequences, flags, skin tones, keycaps, variation selectors
    "Emoji 😀 and 👍🏽 and 🇩🇪", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "👩🏽‍💻 coder", "1️⃣ #️⃣ keycaps", "❤️ vs ❤︎",
    "🥰🤩🫠🫶 newer emoji", "😀😃😄😁", "🏴󠁧󠁢󠁳󠁣󠁴󠁿 Scotland (tag sequence)",
    # combining marks
    "e\u0301 a\u0300 o\u0308 n\u0303 c\u0327", "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319alg\u0315o", "a\u20dd enclosing \u20e3",
    "\u0301 leading combining mark", "ǅ ǈ ǋ titlecase digraphs", "\u1e9b\u0323 long s with dots",
    # control, format, tag characters
    "bell \x07 and backspace \x08 and \x1b[31mansi\x1b[0m", "vt\x0bff\x0cfs\x1cgs\x1d", "nel\x85 c1 \x80\x9f",
    "zero\u200bwidth\u200cnon\u200djoiner\u200eLRM\u200fRLM", "word\u2060joiner", "\ufeffBOM at start", "soft\u00adhyphen",
    "tags\U000e0001\U000e0041\U000e007fend", "\U000e0100 variation selector supplement", "\ufffd replacement char",
    "nul\x00byte", "\u2028line sep\u2029para sep", "\u202aembedding\u202c \u2066isolate\u2069", "\U0001d173 musical format",
    "\u0600\u0601 arabic number signs \u06dd", "\u180e mongolian vowel sep", "private \ue000\uf8ff \U000f0000 use",
    # white space
    "ideographic\u3000space", "\u3000\u3000leading", "nbsp\u00a0narrow\u202fthin\u2009hair\u200aem\u2003",
    "ogham\u1680space", "math\u205fspace", "tabs\tand\nnewlines\r\nand  double  spaces",
    # full-width and compatibility forms
    "Ｆｕｌｌｗｉｄｔｈ ｌｅｔｔｅｒｓ ＡＢＣ １２３！？", "ﬁ ﬂ ﬀ ligatures", "㈱ ㍿ ㎏ ㎡ ℡ ™", "① ⑽ ⒜ ⅷ Ⅻ", "x² H₂O ½ ¼",
    "ｐｕｎｃｔｕａｔｉｏｎ：（）［］｛｝，．", "〜～ wave dashes",
    # mixed case with accents
    "ÜBER Über über", "Straße STRASSE ß ẞ", "İstanbul ISTANBUL ıi İI", "Ǆemal ǅemal ǆemal", "ÅNGSTRÖM Ångström",
    "ÉCOLE ÇA VA ÀÉÎÕÜ", "ΣΊΣΥΦΟΣ σίσυφος", "Ŀl ŉ ſ ﬅ", "DŽ Ǳ ǲ ǳ",
    # punctuation of many kinds
    "“quotes” ‘single’ — dash – en … ellipsis", "¿Qué? ¡Hola! «guillemets» ‹›", "§ ¶ † ‡ • ‣ ※ ‼ ⁉", "Arabic ، ؛ ؟ ۔",
    "Devanagari । ॥", "Thai ฯ ๏ ๚ ๛", "Armenian ՝ ՞ ։", "Ethiopic ። ፣ ፤", "Tibetan ། ༄", "⸘⸮ ⸺ ⸻ ⹂ ⹃ ⹏ ⹝",
    "ASCII !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "$ € £ ¥ ₹ ₿ ¢ currency", "∑ ∫ √ ∞ ≠ ≤ math",
    # long words (over max_input_chars_per_word = 100 code points)
    "a" * 100, "b" * 101, "Supercalifragilisticexpialidocious" * 4, "é" * 101, "中" * 120, "ｶﾞ" * 60,
    "pneumonoultramicroscopicsilicovolcanoconiosis" + "x" * 60 + " short",
    # everything at once
    "Mixed: English, 日本語, 한국어, العربية, हिन्दी, ไทย, 😀‍🔥, Ü, ß, İ, ｆｕｌｌ, \u3000 and \u200b!",
    "", " ", "\u3000", "\u200b", "\U000e0041", "\x07",
]


def random_strings(n, seed=SEED):
    """Seeded strings of 3..12 characters drawn from every code point that Python's unicodedata
    (Unicode 14) assigns, surrogates and private use aside, with spaces between some."""
    pool = [cp for cp in range(0x110000)
            if unicodedata.category(chr(cp)) not in ("Cn", "Cs", "Co")]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        chars = [chr(rng.choice(pool)) for _ in range(rng.randint(3, 12))]
        for i in range(1, len(chars), 4):
            chars[i] = " "
        out.append("".join(chars))
    return out


def script_strings(seed=SEED):
    """One seeded 6..20-character string per block of letters/marks, so every script shows up."""
    rng = random.Random(seed)
    blocks = {}
    for cp in range(0x110000):
        cat = unicodedata.category(chr(cp))
        if cat[0] in "LM" or cat in ("Nd", "Po"):
            blocks.setdefault(cp >> 7, []).append(chr(cp))
    out = []
    for key in sorted(blocks):
        chars = blocks[key]
        out.append("".join(rng.choice(chars) for _ in range(rng.randint(6, 20))))
    return out


def tokenizers():
    from transformers import (BertTokenizerFast, GPT2TokenizerFast, LlamaTokenizerFast,
                              RobertaTokenizerFast)
    # from_pretrained on the folders: transformers 5's constructors take in-memory vocabularies
    return {
        "bert": BertTokenizerFast.from_pretrained(MINILM),
        "bert_cased": BertTokenizerFast.from_pretrained(MINILM, do_lower_case=False),
        "roberta": RobertaTokenizerFast.from_pretrained(os.path.join(NN, "roberta")),
        "gpt2": GPT2TokenizerFast.from_pretrained(os.path.join(NN, "bpe", "gpt2")),
        "llama": LlamaTokenizerFast.from_pretrained(os.path.join(NN, "spm")),
    }


def cmd_ids(a):
    import tokenizers as hf_tokenizers
    import transformers
    toks = tokenizers()
    texts = [("corpus", t) for t in CORPUS]
    texts += [("script", t) for t in script_strings()]
    texts += [("random", t) for t in random_strings(300)]
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        meta = {"recipe": "scripts/tokenizer-fixtures.py ids",
                "transformers": transformers.__version__, "tokenizers": hf_tokenizers.__version__,
                "unicode (python)": unicodedata.unidata_version,
                "columns": {k: type(v).__name__ for k, v in toks.items()}}
        f.write(json.dumps({"meta": meta}, ensure_ascii=False) + "\n")
        for kind, t in texts:
            row = {"kind": kind, "text": t}
            for name, tok in toks.items():
                row[name] = tok(t)["input_ids"]
            row["bert_pieces"] = toks["bert"].convert_ids_to_tokens(row["bert"][1:-1])
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(texts)} texts -> {a.out}")


def cmd_codepoints(a):
    from tokenizers import normalizers, pre_tokenizers
    pre = pre_tokenizers.BertPreTokenizer()
    norms = {"uncased": normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                   strip_accents=None, lowercase=True),
             "cased": normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                 strip_accents=False, lowercase=False)}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    rows = []
    for mode, norm in norms.items():
        run = None  # [lo, hi, kind] for the outcomes that need no words
        for cp in range(0x110000):
            if 0xD800 <= cp <= 0xDFFF:
                continue
            c = chr(cp)
            words = [w for w, _ in pre.pre_tokenize_str(norm.normalize_str("a" + c + "b"))]
            if words == ["a" + c + "b"]:
                kind = "kept"
            elif words == ["ab"]:
                kind = "dropped"
            elif words == ["a", "b"]:
                kind = "space"
            elif words == ["a", c, "b"]:
                kind = "split"
            else:
                kind = None
            if run and kind == run["kind"] and run["hi"] == cp - 1:
                run["hi"] = cp
                continue
            if run:
                rows.append(run)
                run = None
            if kind is None:
                rows.append({"mode": mode, "lo": cp, "hi": cp, "kind": "words", "words": words})
            else:
                run = {"mode": mode, "lo": cp, "hi": cp, "kind": kind}
        if run:
            rows.append(run)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(json.dumps({"meta": {"recipe": "scripts/tokenizer-fixtures.py codepoints",
                                     "text": "a + code point + b", "surrogates": "skipped"}}) + "\n")
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} rows -> {a.out}")


def cmd_hf_compat(_a):
    import ctypes
    from tokenizers import normalizers, pre_tokenizers
    u = ctypes.CDLL("libutf8proc.so.2")
    u.utf8proc_category_string.restype = ctypes.c_char_p
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False,
                                       lowercase=False)
    strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True,
                                       lowercase=False)
    pre = pre_tokenizers.BertPreTokenizer()
    old = {}  # code point -> its category for tokenizers, where that changes BERT's outcome
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c, cat = chr(cp), u.utf8proc_category_string(cp).decode()
        hf_control = clean.normalize_str("a" + c + "b") == "ab" and c not in "\t\n\r"
        hf_punct = len(pre.pre_tokenize_str("a" + c + "b")) == 3 and not c.isspace()
        hf_mn = strip.normalize_str(c) == ""
        ours_punct = cat[0] == "P" or (cp < 0x80 and c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
        ours_control = (cat in ("Cc", "Cf", "Co") and c not in "\t\n\r") or cp in (0, 0xFFFD)
        if (hf_control, hf_punct, hf_mn) == (ours_control, ours_punct, cat == "Mn"):
            continue
        old[cp] = "Po" if hf_punct else "Mn" if hf_mn else "Cf" if hf_control else "Cn"
    rows = []
    for cp in sorted(old):
        if rows and rows[-1][1] == cp - 1 and rows[-1][2] == old[cp]:
            rows[-1][1] = cp
        else:
            rows.append([cp, cp, old[cp]])
    line = ""
    for lo, hi, c in rows:
        item = "{0x%X,0x%X,C::%s}," % (lo, hi, c)
        if len(line) + len(item) > 108:
            print(line)
            line = ""
        line += item
    print(line)
    print(f"{len(old)} code points in {len(rows)} rows", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("ids")
    i.add_argument("--out", default=os.path.join(OUT, "ids.jsonl"))
    c = sub.add_parser("codepoints")
    c.add_argument("--out", default=os.path.join(OUT, "bert_codepoints.jsonl"))
    sub.add_parser("hf-compat")
    a = ap.parse_args()
    {"ids": cmd_ids, "codepoints": cmd_codepoints, "hf-compat": cmd_hf_compat}[a.cmd](a)


if __name__ == "__main__":
    main()
