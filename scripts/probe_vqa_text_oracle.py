"""Probe: can the MLLM's Transformer size answer the corpus questions from the *true* scene description?

A text-only causal Transformer of the MLLM's width and depth (D = 256, 4
layers, 4 heads) reads ``question <sep> description <sep>`` (or the other
order) and predicts the answer at the last position; the description is the
scene graph's ``captions.describe`` text, so perception is perfect and only
the reasoning is left to learn. It tells whether "describe the scene first,
then answer from that text" would make VQA easier to learn than answering
straight from image tokens.

    ./unitocom python scripts/probe_vqa_text_oracle.py --cache runs/mllm-cache --minutes 14 --threads 1

Prints validation accuracy (first ``--val`` val questions) every
``--every`` steps as JSON lines; the question-only baseline of [2/10] is
45.6%.
"""
import argparse
import json
import pathlib
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from gnuradio.unitocom.data import vocab  # noqa: E402
from onnx_export.mllm.data import Cache  # noqa: E402


def sequences(cache, order):
    """(ids (N, T) padded, lengths (N,), answers (N,)) tensors of a cache split."""
    seqs, answers = [], []
    for q in range(cache.n_questions):
        said = [int(i) for i in cache.descriptions[cache.question_scene[q]]]
        asked = [int(i) for i in cache.seq("questions", 0, q) if i not in (vocab.BOS, vocab.EOS)]
        first, second = (asked, said) if order == "qd" else (said, asked)
        seqs.append(first + [vocab.SEP] + second + [vocab.SEP])
        answers.append(int(cache.answer[q]))
    x = np.full((len(seqs), max(map(len, seqs))), vocab.PAD, np.int64)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = s
    return torch.from_numpy(x), torch.tensor([len(s) for s in seqs]), torch.tensor(answers)


class TextModel(nn.Module):
    """Embedding + learned positions, causal pre-norm Transformer, answer logits at each row's last token."""

    def __init__(self, dim, depth, heads, max_len=128):
        super().__init__()
        self.emb, self.pos = nn.Embedding(len(vocab.TOKENS), dim), nn.Embedding(max_len, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, 0.0, batch_first=True, norm_first=True,
                                           activation="gelu")
        self.body = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, len(vocab.TOKENS))

    def forward(self, x, lengths):
        t = x.shape[1]
        h = self.emb(x) + self.pos(torch.arange(t))
        h = self.norm(self.body(h, mask=nn.Transformer.generate_square_subsequent_mask(t)))
        return self.head(h[torch.arange(len(x)), lengths - 1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default="runs/mllm-cache", help="MLLM cache root with train/ and val/")
    ap.add_argument("--order", default="qd", choices=("qd", "dq"), help="question first (qd) or description first")
    ap.add_argument("--minutes", type=float, default=14.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--val", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    root = pathlib.Path(args.cache)
    xt, lt, yt = sequences(Cache(root / "train"), args.order)
    xv, lv, yv = (a[:args.val] for a in sequences(Cache(root / "val"), args.order))
    model = TextModel(256, 4, 4)
    opt = torch.optim.AdamW(model.parameters(), args.lr, weight_decay=0.01)

    @torch.no_grad()
    def accuracy():
        model.eval()
        hits = sum(int((model(xv[i:i + 500], lv[i:i + 500]).argmax(1) == yv[i:i + 500]).sum())
                   for i in range(0, len(xv), 500))
        model.train()
        return round(hits / len(xv), 4)

    t0, step = time.time(), 0
    while time.time() - t0 < args.minutes * 60:
        idx = torch.randint(0, len(xt), (args.batch,))
        t = int(lt[idx].max())
        loss = nn.functional.cross_entropy(model(xt[idx, :t], lt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % args.every == 0:
            print(json.dumps({"step": step, "minutes": round((time.time() - t0) / 60, 1),
                              "loss": round(float(loss), 3), "val_acc": accuracy()}), flush=True)
    print(json.dumps({"final_step": step, "val_acc": accuracy()}), flush=True)


if __name__ == "__main__":
    main()
