"""Training throughput of the MLLM on this machine: samples/s and FLOPs per sample of one mixed-task step.

    python -m onnx_export.mllm.bench --dim 256 --depth 4 --batch 64 --steps 5 --threads 2

A batch holds the three tasks in equal shares with random tokens and ids of
the corpus's lengths (questions 8–16 ids, captions 10–18, transcripts 8–15
words, audio 80–120 tokens, 32 image tokens), packed per task. One step is
``objective.loss`` + backward + AdamW, as ``loop.TrainLoop`` runs it. FLOPs
are counted by ``torch.utils.flop_counter`` (matmuls and attention, forward
and backward; element-wise work is not counted).
"""
import argparse
import json
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from gnuradio.unitocom.data import vocab
from gnuradio.unitocom.mllm import layout

from . import model as mllm_model
from . import objective

LENGTHS = {"question": (8, 16), "caption": (10, 18), "transcript": (8, 15), "audio": (80, 120),
           "description": (13, 25)}


def random_items(n, rng, token_dim=layout.TOKEN_DIM, image_tokens=layout.IMAGE_TOKENS, tasks=layout.TASKS):
    """``n`` items cycling over ``tasks`` with random tokens and ids of corpus-like lengths."""
    def words(lo_hi):
        return rng.integers(vocab.SEP + 1, layout.VOCAB, size=rng.integers(*lo_hi, endpoint=True))

    def sentence(lo_hi):
        return np.concatenate([[vocab.BOS], words(lo_hi), [vocab.EOS]])

    items = []
    for i in range(n):
        task = tasks[i % len(tasks)]
        if task == "vqa":
            items.append(layout.vqa(rng.normal(size=(image_tokens, token_dim)), sentence(LENGTHS["question"]),
                                    words((1, 1)), token_dim))
        elif task == "t2i":
            items.append(layout.t2i(sentence(LENGTHS["caption"]), rng.normal(size=(image_tokens, token_dim)),
                                    token_dim))
        elif task == "dsc":
            items.append(layout.describe(rng.normal(size=(image_tokens, token_dim)), words(LENGTHS["description"]),
                                         token_dim))
        else:
            m = rng.integers(*LENGTHS["audio"], endpoint=True)
            items.append(layout.asr(rng.normal(size=(m, token_dim)), words(LENGTHS["transcript"]), token_dim))
    return items


def packs_by_task(items):
    """One right-padded pack per task present (less padding than one pack for all)."""
    groups = [[it for it in items if it.task == t] for t in layout.TASKS]
    return [layout.pack(g) for g in groups if g]


def measure(config, batch=64, steps=5, seed=0, per_task=True):
    """{'samples_per_s', 'seconds_per_step', 'gflop_per_sample', 'positions_per_sample', 'parameters', …}."""
    torch.manual_seed(seed)
    model = mllm_model.MLLM(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(seed)
    batches = [random_items(batch, rng) for _ in range(steps + 1)]
    prepared = [packs_by_task(b) if per_task else layout.pack(b) for b in batches]

    def step(packs):
        loss, _ = objective.loss(model, packs)
        opt.zero_grad()
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        step(prepared[0])                                   # also the warm-up
    times = []
    for packs in prepared[1:]:
        t0 = time.perf_counter()
        step(packs)
        times.append(time.perf_counter() - t0)
    sec = float(np.median(times))
    positions = sum(len(it) for it in batches[0]) / batch
    padded = sum(p["ids"].size for p in (prepared[0] if per_task else [prepared[0]])) / batch
    return {"config": json.loads(config.to_json()), "parameters": model.parameter_counts(), "batch": batch,
            "threads": torch.get_num_threads(), "per_task_packs": per_task, "seconds_per_step": round(sec, 3),
            "samples_per_s": round(batch / sec, 1),
            "gflop_per_sample": round(counter.get_total_flops() / batch / 1e9, 3),
            "achieved_gflop_s": round(counter.get_total_flops() / sec / 1e9, 1),
            "positions_per_sample": round(positions, 1), "padded_positions_per_sample": round(padded, 1)}


def main(argv=None):
    """Command line: measure one configuration and print the result as one JSON line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dim", type=int, default=mllm_model.Config.dim)
    p.add_argument("--depth", type=int, default=mllm_model.Config.depth)
    p.add_argument("--heads", type=int, default=mllm_model.Config.heads)
    p.add_argument("--head-width", type=int, default=mllm_model.Config.head_width)
    p.add_argument("--head-depth", type=int, default=mllm_model.Config.head_depth)
    p.add_argument("--noise-draws", type=int, default=mllm_model.Config.noise_draws)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--one-pack", action="store_true", help="pad all tasks into one pack instead of one per task")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = mllm_model.Config(dim=args.dim, depth=args.depth, heads=args.heads, head_width=args.head_width,
                            head_depth=args.head_depth, noise_draws=args.noise_draws)
    print(json.dumps(measure(cfg, args.batch, args.steps, per_task=not args.one_pack)), flush=True)


if __name__ == "__main__":
    main()
