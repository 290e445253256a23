#!/usr/bin/env python3
"""Golden fixtures for the LLaMA path of lora-finetune, computed once with Python torch +
transformers + peft (never needed by the tests or CI, which read the committed files).

  scripts/llama-fixtures.py golden [--bin FILE.bin] [--out tests/nn/fixtures/llama_golden]
      converts the llama2.c checkpoint itself (numpy, independently of the C++ code),
      loads it as transformers' LlamaForCausalLM, attaches a seeded PEFT LoRA (q_proj,
      v_proj, r=4, random B) and writes adapter_config.json + adapter_model.safetensors
      and inputs.safetensors (right-padded input_ids, attention_mask, fp32 logits)
  scripts/llama-fixtures.py check-convert DIR [--bin FILE.bin]
      loads DIR (written by `lora-finetune convert`, i.e. nn::convert_llama2c) with
      transformers and compares its tensors and logits with this script's own conversion
  scripts/llama-fixtures.py check-export ADAPTER_DIR --model DIR
      loads an adapter exported by `lora-finetune export` (lora::export_peft) onto the HF
      model DIR with PEFT and prints the logits of the golden inputs; with --expect
      GOLDEN_DIR, compares them with GOLDEN_DIR/inputs.safetensors (exit 1 above 1e-4)

Setup (CPU only): as scripts/lora-fixtures.py (torch, transformers, peft, safetensors).
"""
import argparse
import json
import os
import struct

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "tests", "nn", "fixtures", "stories260K", "stories260K.bin")
OUT = os.path.join(ROOT, "tests", "nn", "fixtures", "llama_golden")

# token rows (ids < 512; 1 = <s>), right-padded with 0 to the longest
ROWS = [
    [1, 403, 407, 261, 378, 429, 274, 350, 259, 489, 291, 268, 46, 13, 400, 271, 310, 320],
    [1, 5, 77, 300, 511, 2, 9, 33],
    [1, 284, 99, 99, 262, 400, 271, 310, 320, 330, 340, 13],
]


def read_llama2c(path):
    """The legacy llama2.c .bin as HF LLaMA tensors (numpy) and a config dict."""
    with open(path, "rb") as f:
        dim, hidden, nl, nh, nkv, vocab, seq_len = struct.unpack("<7i", f.read(28))
        data = np.frombuffer(f.read(), dtype="<f4")
    shared = vocab > 0
    vocab = abs(vocab)
    hs = dim // nh
    kv = hs * nkv
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        t = data[off:off + n].reshape(shape)
        off += n
        return t

    emb = take(vocab, dim)
    rms_att = take(nl, dim)
    wq = take(nl, dim, dim)
    wk = take(nl, kv, dim)
    wv = take(nl, kv, dim)
    wo = take(nl, dim, dim)
    rms_ffn = take(nl, dim)
    w1 = take(nl, hidden, dim)
    w2 = take(nl, dim, hidden)
    w3 = take(nl, hidden, dim)
    rms_final = take(dim)
    off += seq_len * hs  # the two RoPE tables
    wcls = emb if shared else take(vocab, dim)
    assert off == data.size, "size mismatch"

    def permute(w, heads):  # transformers' convert_llama_weights_to_hf
        rows, cols = w.shape
        return w.reshape(heads, rows // heads // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)

    sd = {"model.embed_tokens.weight": emb, "model.norm.weight": rms_final}
    for i in range(nl):
        p = f"model.layers.{i}."
        sd[p + "input_layernorm.weight"] = rms_att[i]
        sd[p + "self_attn.q_proj.weight"] = permute(wq[i], nh)
        sd[p + "self_attn.k_proj.weight"] = permute(wk[i], nkv)
        sd[p + "self_attn.v_proj.weight"] = wv[i]
        sd[p + "self_attn.o_proj.weight"] = wo[i]
        sd[p + "post_attention_layernorm.weight"] = rms_ffn[i]
        sd[p + "mlp.gate_proj.weight"] = w1[i]
        sd[p + "mlp.down_proj.weight"] = w2[i]
        sd[p + "mlp.up_proj.weight"] = w3[i]
    sd["lm_head.weight"] = wcls
    cfg = dict(vocab_size=vocab, hidden_size=dim, intermediate_size=hidden, num_hidden_layers=nl,
               num_attention_heads=nh, num_key_value_heads=nkv, max_position_embeddings=seq_len,
               rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=shared, hidden_act="silu")
    raw = dict(dim=dim, nh=nh, nkv=nkv, wq=wq, wk=wk, wv=wv, wo=wo, w1=w1, w2=w2, w3=w3, emb=emb,
               rms_att=rms_att, rms_ffn=rms_ffn, rms_final=rms_final, wcls=wcls)
    return cfg, sd, raw


def hf_model(cfg, sd):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    model = LlamaForCausalLM(LlamaConfig(**cfg, attn_implementation="eager"))
    state = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert all("lm_head" in m for m in missing), missing
    model.eval()
    return model


def ref_logits(raw, tokens):
    """llama2.c's forward (adjacent-pair RoPE, unpermuted weights) in float64."""
    d, nh, nkv = raw["dim"], raw["nh"], raw["nkv"]
    hs = d // nh
    L = len(tokens)
    f = {k: np.asarray(v, dtype=np.float64) for k, v in raw.items() if isinstance(v, np.ndarray)}

    def rms(x, w):
        return w * x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5)

    def rope(x, heads):  # x [L, heads*hs], pairs (2i, 2i+1)
        x = x.reshape(L, heads, hs // 2, 2)
        freq = 1.0 / 10000.0 ** (np.arange(0, hs, 2) / hs)
        ang = np.arange(L)[:, None, None] * freq[None, None, :]
        c, s = np.cos(ang), np.sin(ang)
        x0, x1 = x[..., 0], x[..., 1]
        return np.stack([x0 * c - x1 * s, x0 * s + x1 * c], -1).reshape(L, heads * hs)

    x = f["emb"][tokens]
    for i in range(f["wq"].shape[0]):
        h = rms(x, f["rms_att"][i])
        q = rope(h @ f["wq"][i].T, nh).reshape(L, nh, hs)
        k = rope(h @ f["wk"][i].T, nkv).reshape(L, nkv, hs)
        v = (h @ f["wv"][i].T).reshape(L, nkv, hs)
        rep = nh // nkv
        out = np.zeros((L, nh, hs))
        for hd in range(nh):
            s = q[:, hd] @ k[:, hd // rep].T / np.sqrt(hs)
            s = np.where(np.tril(np.ones((L, L))) > 0, s, -np.inf)
            a = np.exp(s - s.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            out[:, hd] = a @ v[:, hd // rep]
        x = x + out.reshape(L, d) @ f["wo"][i].T
        h = rms(x, f["rms_ffn"][i])
        g = h @ f["w1"][i].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ f["w3"][i].T)) @ f["w2"][i].T
    return rms(x, f["rms_final"]) @ f["wcls"].T


def batch():
    import torch
    L = max(len(r) for r in ROWS)
    ids = torch.zeros(len(ROWS), L, dtype=torch.int64)
    mask = torch.zeros_like(ids)
    for b, r in enumerate(ROWS):
        ids[b, :len(r)] = torch.tensor(r)
        mask[b, :len(r)] = 1
    return ids, mask


def cmd_golden(a):
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file

    torch.manual_seed(4321)
    cfg, sd, raw = read_llama2c(a.bin)
    model = hf_model(cfg, sd)
    ids, mask = batch()
    with torch.no_grad():
        base = model(input_ids=ids, attention_mask=mask).logits.float()
    # the HF model against llama2.c's own forward, in float64, on the real positions
    worst = 0.0
    for b, r in enumerate(ROWS):
        want = ref_logits(raw, r)
        worst = max(worst, float(np.abs(base[b, :len(r)].double().numpy() - want).max()))
    print(f"HF float32 vs llama2.c float64 reference: max |logit difference| {worst:.3g}")
    pcfg = LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                      target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    pm = get_peft_model(model, pcfg)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.1)
    pm.eval()
    with torch.no_grad():
        logits = pm(input_ids=ids, attention_mask=mask).logits.float()
    real = mask.bool()
    print("max |adapter - base| on real positions", (logits - base).abs()[real].max().item())
    os.makedirs(a.out, exist_ok=True)
    pm.save_pretrained(a.out)
    save_file({"input_ids": ids.contiguous(), "attention_mask": mask.contiguous(),
               "logits": logits.contiguous()}, os.path.join(a.out, "inputs.safetensors"))
    readme = os.path.join(a.out, "README.md")
    if os.path.exists(readme):
        os.remove(readme)  # PEFT's model-card template; not needed
    cfg_path = os.path.join(a.out, "adapter_config.json")
    c = json.load(open(cfg_path))
    c["base_model_name_or_path"] = "stories260K"  # no absolute paths in a committed fixture
    with open(cfg_path, "w") as f:
        json.dump(c, f, indent=2)
    print("files", {n: os.path.getsize(os.path.join(a.out, n)) for n in sorted(os.listdir(a.out))})


def cmd_check_convert(a):
    import torch
    from safetensors.torch import load_file
    from transformers import LlamaForCausalLM
    cfg, sd, _ = read_llama2c(a.bin)
    ours = load_file(os.path.join(a.dir, "model.safetensors"))
    for k, v in sd.items():
        if k == "lm_head.weight" and cfg["tie_word_embeddings"]:
            assert k not in ours
            continue
        assert torch.equal(ours[k], torch.from_numpy(np.array(v))), k
    theirs = hf_model(cfg, sd)
    loaded = LlamaForCausalLM.from_pretrained(a.dir, attn_implementation="eager")
    loaded.eval()
    ids, mask = batch()
    with torch.no_grad():
        d = (loaded(input_ids=ids, attention_mask=mask).logits
             - theirs(input_ids=ids, attention_mask=mask).logits).abs()[mask.bool()].max().item()
    print(f"{a.dir}: tensors equal; max |logit difference| vs this script's conversion {d:.3g}")
    assert d < 1e-5


def cmd_check_export(a):
    import torch
    from peft import PeftModel
    from transformers import LlamaForCausalLM
    base = LlamaForCausalLM.from_pretrained(a.model, attn_implementation="eager")
    pm = PeftModel.from_pretrained(base, a.adapter)
    pm.eval()
    ids, mask = batch()
    with torch.no_grad():
        logits = pm(input_ids=ids, attention_mask=mask).logits
    print(json.dumps({"rows": ROWS, "last_logits": [logits[b, len(r) - 1, :8].tolist() for b, r in enumerate(ROWS)]}))
    if a.expect:
        from safetensors.torch import load_file
        want = load_file(os.path.join(a.expect, "inputs.safetensors"))["logits"]
        d = (logits - want).abs()[mask.bool()].max().item()
        print(f"max |logit difference| vs {a.expect}: {d:.3g}")
        raise SystemExit(0 if d < 1e-4 else 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("golden")
    g.add_argument("--bin", default=BIN)
    g.add_argument("--out", default=OUT)
    c = sub.add_parser("check-convert")
    c.add_argument("dir")
    c.add_argument("--bin", default=BIN)
    e = sub.add_parser("check-export")
    e.add_argument("adapter")
    e.add_argument("--model", required=True)
    e.add_argument("--expect", default="")
    a = ap.parse_args()
    {"golden": cmd_golden, "check-convert": cmd_check_convert, "check-export": cmd_check_export}[a.cmd](a)


if __name__ == "__main__":
    main()
