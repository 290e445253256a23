#!/usr/bin/env python3
"""Reference TGN in PyTorch Geometric (torch_geometric.nn.models.tgn), for the speed
comparison of bench/tgnn/compare.sh. Written after the structure of PyG's examples/tgn.py:
TGNMemory with IdentityMessage + LastAggregator, LastNeighborLoader (10 most recent
neighbours), one TransformerConv layer (2 heads) over [time encoding || edge features],
a two-layer link predictor, Adam, BCE on one random destination negative per event.

Reads the TGL files that `tgnn-train generate` writes (edges.csv with ext_roll 0/1/2 for
train/val/test, edge_features.npy). With `--negatives FILE` (the CSV that tgnn-train writes
with `--set eval.negatives_out=FILE`: split,event,src,dst,time,neg) it takes the train, val
and test events, in that order, and the val/test negative destinations from that file
instead, so both implementations train on the same events and score the same val/test
events against the same negatives (training negatives stay this script's own). Trains `--epochs` epochs (memory and neighbour loader
reset per epoch), then scores val and test with memory carried from train into val into
test, and prints one JSON object: train seconds per epoch, training events/s, and
per-batch-averaged AP/AUC on val and test; also the process CPU seconds per epoch (as TGN and PyG's example report them).

Needs: torch, torch_geometric (pure Python; no torch_scatter/torch_sparse for TGN).
"""
import argparse
import json
import time

import numpy as np
import torch
from torch.nn import Linear
from torch_geometric.nn import TGNMemory, TransformerConv
from torch_geometric.nn.models.tgn import IdentityMessage, LastAggregator, LastNeighborLoader


def average_precision(y, s):
    order = np.argsort(-s, kind="mergesort")
    y = y[order]
    tp = np.cumsum(y)
    prec = tp / np.arange(1, len(y) + 1)
    return float((prec * y).sum() / max(y.sum(), 1))


def auc(y, s):
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    npos, nneg = y.sum(), len(y) - y.sum()
    return float((ranks[y == 1].sum() - npos * (npos + 1) / 2) / (npos * nneg))


class AttentionEmbedding(torch.nn.Module):
    def __init__(self, in_dim, out_dim, msg_dim, time_enc, heads, dropout):
        super().__init__()
        self.time_enc = time_enc
        self.conv = TransformerConv(in_dim, out_dim // heads, heads=heads, dropout=dropout,
                                    edge_dim=msg_dim + time_enc.out_channels)

    def forward(self, x, last_update, edge_index, t, msg):
        rel = last_update[edge_index[0]] - t
        edge_attr = torch.cat([self.time_enc(rel.to(x.dtype)), msg], dim=-1)
        return self.conv(x, edge_index, edge_attr)


class EdgePredictor(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.src, self.dst, self.out = Linear(dim, dim), Linear(dim, dim), Linear(dim, 1)

    def forward(self, zs, zd):
        return self.out((self.src(zs) + self.dst(zd)).relu())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--dim", type=int, default=100)  # memory = time = embedding dim
    ap.add_argument("--neighbors", type=int, default=10)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--negatives", help="tgnn-train's eval.negatives_out CSV: split, train events, val/test negatives")
    ap.add_argument("--bf16", action="store_true",
                    help="run the forward passes under torch.autocast('cpu', dtype=torch.bfloat16)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    e = np.loadtxt(f"{a.data}/edges.csv", delimiter=",", skiprows=1, usecols=(1, 2, 3, 5))
    src = torch.from_numpy(e[:, 0].astype(np.int64))
    dst = torch.from_numpy(e[:, 1].astype(np.int64))
    t = torch.from_numpy(np.floor(e[:, 2]).astype(np.int64))  # TGNMemory keeps int64 times
    roll = e[:, 3].astype(np.int64)
    msg = torch.from_numpy(np.load(f"{a.data}/edge_features.npy").astype(np.float32))
    N = int(max(src.max(), dst.max())) + 1
    lo, hi = int(dst.min()), int(dst.max())
    splits = {k: np.nonzero(roll == i)[0] for i, k in enumerate(("train", "val", "test"))}
    fixed_neg = {}
    if a.negatives:
        f = np.genfromtxt(a.negatives, delimiter=",", names=True, dtype=None, encoding="ascii")
        for k in ("train", "val", "test"):
            rows = f[f["split"] == k]
            ev = rows["event"].astype(np.int64)
            if len(ev) == 0 or ev.max() >= len(e):
                raise SystemExit(f"pyg_tgn.py: {a.negatives}: no {k} events, or event ids beyond edges.csv")
            # the file must describe this data: same src/dst per event row
            if not (np.array_equal(rows["src"], e[ev, 0].astype(np.int64))
                    and np.array_equal(rows["dst"], e[ev, 1].astype(np.int64))):
                raise SystemExit(f"pyg_tgn.py: {a.negatives}: src/dst differ from {a.data}/edges.csv")
            splits[k] = ev
            if k != "train":
                fixed_neg[k] = torch.from_numpy(rows["neg"].astype(np.int64))

    memory = TGNMemory(N, msg.size(1), a.dim, a.dim, message_module=IdentityMessage(msg.size(1), a.dim, a.dim),
                       aggregator_module=LastAggregator())
    gnn = AttentionEmbedding(a.dim, a.dim, msg.size(1), memory.time_enc, a.heads, 0.1)
    pred = EdgePredictor(a.dim)
    opt = torch.optim.Adam(set(memory.parameters()) | set(gnn.parameters()) | set(pred.parameters()), lr=a.lr)
    bce = torch.nn.BCEWithLogitsLoss()
    loader = LastNeighborLoader(N, size=a.neighbors)
    assoc = torch.empty(N, dtype=torch.long)

    def step(idx, neg, train):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            pos, ng = forward(idx, neg)
            if train:
                loss = bce(pos.float(), torch.ones_like(pos, dtype=torch.float)) + \
                    bce(ng.float(), torch.zeros_like(ng, dtype=torch.float))
        if train:
            loss.backward()
            opt.step()
            memory.detach()
        return pos.float(), ng.float()

    def forward(idx, neg):
        s, d, ts, m = src[idx], dst[idx], t[idx], msg[idx]
        n_id = torch.cat([s, d, neg]).unique()
        n_id, edge_index, e_id = loader(n_id)
        assoc[n_id] = torch.arange(n_id.size(0))
        z, last_update = memory(n_id)
        z = gnn(z, last_update, edge_index, t[e_id], msg[e_id])
        pos = pred(z[assoc[s]], z[assoc[d]])
        ng = pred(z[assoc[s]], z[assoc[neg]])
        memory.update_state(s, d, ts, m)
        loader.insert(s, d)
        return pos, ng

    gen = torch.Generator().manual_seed(a.seed)
    epoch_s, epoch_cpu = [], []
    for _ in range(a.epochs):
        memory.train(); gnn.train(); pred.train()
        memory.reset_state(); loader.reset_state()
        t0, c0 = time.perf_counter(), time.process_time()
        tr = splits["train"]
        for b in range(0, len(tr), a.batch):
            idx = torch.from_numpy(tr[b:b + a.batch])
            opt.zero_grad()
            step(idx, torch.randint(lo, hi + 1, (len(idx),), generator=gen), True)
        epoch_s.append(time.perf_counter() - t0)
        epoch_cpu.append(time.process_time() - c0)  # process CPU time: steadier on a shared machine

    memory.eval(); gnn.eval(); pred.eval()
    out = {"model": "PyG TGN", "torch": torch.__version__, "threads": a.threads, "epochs": a.epochs,
           "precision": "bf16 (autocast)" if a.bf16 else "fp32",
           "eval_negatives": a.negatives or "own (seed 2, uniform over the destination id range)",
           "train_events": int(len(splits["train"])), "epoch_seconds": float(np.mean(epoch_s)),
           "events_per_s": len(splits["train"]) / float(np.mean(epoch_s)),
           "epoch_cpu_seconds": float(np.mean(epoch_cpu)),
           "events_per_cpu_s": len(splits["train"]) / float(np.mean(epoch_cpu))}
    neg_gen = torch.Generator().manual_seed(2)  # fixed eval negatives
    with torch.no_grad():
        for k in ("val", "test"):
            aps, aucs = [], []
            t0 = time.perf_counter()
            ev = splits[k]
            for b in range(0, len(ev), a.batch):
                idx = torch.from_numpy(ev[b:b + a.batch])
                neg = (fixed_neg[k][b:b + a.batch] if k in fixed_neg
                       else torch.randint(lo, hi + 1, (len(idx),), generator=neg_gen))
                pos, ng = step(idx, neg, False)
                y = np.concatenate([np.ones(len(idx)), np.zeros(len(idx))])
                sc = torch.cat([pos, ng]).sigmoid().squeeze(1).numpy()
                aps.append(average_precision(y, sc))
                aucs.append(auc(y, sc))
            out[k] = {"events": int(len(ev)), "ap_batch": float(np.mean(aps)), "auc_batch": float(np.mean(aucs)),
                      "seconds": time.perf_counter() - t0}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
