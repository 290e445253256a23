#!/usr/bin/env python3
"""The PyTorch-eager + PEFT side of bench/lora/step.sh: times LoRA training steps of
all-MiniLM-L6-v2 (BertForSequenceClassification) on the same fixed batch that
`lora-finetune bench` builds, and prints one JSON line with the same keys.

Batch: the WordPiece pieces of data.train (file order, no special tokens) cut into rows of
[CLS] + (length-2) pieces + [SEP]; all-ones attention mask; labels = row index mod the
number of labels (sorted label set of data.train).

Step: forward, loss, backward, clip_grad_norm_(1.0), AdamW(lr, weight_decay 0), zero_grad.
LoRA: PEFT LoraConfig(task_type SEQ_CLS, r, lora_alpha, target_modules, lora_dropout=0),
so the classifier is trained too (modules_to_save), as in lora-finetune.
Presets:
  none       every BERT dropout off (hidden_dropout_prob = attention_probs_dropout_prob = 0)
  hiddenkey  as lora-finetune's preset: column DropKey on the attention logits (rate p, one
             decision per (batch, head, key), the [CLS] key never dropped, -inf before the
             softmax) through a registered attention function; element dropout (rate p,
             rescaled) of each BertOutput.dense output (before residual + LayerNorm) through a
             forward hook; the batch doubled in one forward pass and
             L = 0.5 (CE1 + CE2) + w * 0.5 [KL(p1||p2) + KL(p2||p1)].
Needs Python torch + transformers + peft (benchmarks only; never the tests or CI).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def max_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--model", default=os.path.join(root, ".deps/models/all-MiniLM-L6-v2"))
    ap.add_argument("--train", default=os.path.join(root, "data/lora/fortunes/train.jsonl"))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--r", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--targets", default="query,value")
    ap.add_argument("--preset", choices=["none", "hiddenkey"], default="none")
    ap.add_argument("--rate", type=float, default=0.1)
    ap.add_argument("--kl-weight", type=float, default=1.0)
    ap.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa",
                    help="attention for preset none (hiddenkey always uses its own eager function)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    from peft import LoraConfig, get_peft_model
    from transformers import AttentionInterface, AutoConfig, BertForSequenceClassification, BertTokenizerFast

    rows = [json.loads(line) for line in open(a.train, encoding="utf-8") if line.strip()]
    labels = sorted({str(r["label"]) for r in rows})
    tok = BertTokenizerFast.from_pretrained(a.model)
    inner = a.length - 2
    stream = []
    for r in rows:
        if len(stream) >= a.batch * inner:
            break
        stream += tok(r["text"], add_special_tokens=False)["input_ids"]
    if len(stream) < a.batch * inner:
        sys.exit("too few tokens")
    ids = torch.tensor([[tok.cls_token_id] + stream[i * inner:(i + 1) * inner] + [tok.sep_token_id]
                        for i in range(a.batch)], dtype=torch.long)
    mask = torch.ones_like(ids)
    lab = torch.arange(a.batch) % len(labels)

    p = a.rate

    def dropkey_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kw):
        s = torch.matmul(query, key.transpose(2, 3)) * scaling
        if attention_mask is not None:
            s = s + attention_mask
        if module.training:
            b, h, _, lk = s.shape
            drop = torch.rand(b, h, 1, lk, device=s.device) < p
            drop[..., 0] = False  # never drop the [CLS] key
            s = s.masked_fill(drop, float("-inf"))
        w = F.softmax(s, dim=-1)
        return torch.matmul(w, value).transpose(1, 2).contiguous(), w

    cfg = AutoConfig.from_pretrained(a.model, num_labels=len(labels))
    cfg.hidden_dropout_prob = 0.0
    cfg.attention_probs_dropout_prob = 0.0
    if a.preset == "hiddenkey":
        AttentionInterface.register("dropkey_column", dropkey_attention)
        attn = "dropkey_column"
    else:
        attn = a.attn
    model = BertForSequenceClassification.from_pretrained(a.model, config=cfg, attn_implementation=attn)
    if a.preset == "hiddenkey":
        for layer in model.bert.encoder.layer:
            layer.output.dense.register_forward_hook(lambda m, i, o: F.dropout(o, p, m.training))
    model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=a.r, lora_alpha=a.alpha,
                                             target_modules=a.targets.split(","), lora_dropout=0.0))
    model.train()
    params = [q for q in model.parameters() if q.requires_grad]
    n_trainable = sum(q.numel() for q in params)
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    rss_loaded = max_rss_mib()

    def loss_fn():
        if a.preset == "hiddenkey":
            logits = model(input_ids=torch.cat([ids, ids]), attention_mask=torch.cat([mask, mask])).logits
            l1, l2 = logits[: a.batch], logits[a.batch:]
            ce = 0.5 * (F.cross_entropy(l1, lab) + F.cross_entropy(l2, lab))
            lp1, lp2 = F.log_softmax(l1, -1), F.log_softmax(l2, -1)
            kl = 0.5 * (F.kl_div(lp2, lp1, log_target=True, reduction="batchmean")
                        + F.kl_div(lp1, lp2, log_target=True, reduction="batchmean"))
            return ce + a.kl_weight * kl
        return F.cross_entropy(model(input_ids=ids, attention_mask=mask).logits, lab)

    secs = []
    loss = 0.0
    for i in range(a.warmup + a.steps):
        t = time.perf_counter()
        l = loss_fn()
        l.backward()
        loss = l.item()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= a.warmup:
            secs.append(time.perf_counter() - t)
    med = statistics.median(secs)
    print(json.dumps({
        "impl": "pytorch+peft", "preset": a.preset, "attn": attn, "threads": torch.get_num_threads(),
        "batch": a.batch, "length": a.length, "r": a.r, "targets": a.targets.split(","),
        "trainable_parameters": n_trainable, "warmup": a.warmup, "steps": a.steps,
        "step_seconds": secs, "median_step_s": med, "mean_step_s": statistics.mean(secs),
        "min_step_s": min(secs), "tokens_per_s": a.batch * a.length / med, "steps_per_s": 1.0 / med,
        "final_loss": loss, "max_rss_mib_after_load": rss_loaded, "max_rss_mib": max_rss_mib(),
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "peft": __import__("peft").__version__},
    }))


if __name__ == "__main__":
    main()
